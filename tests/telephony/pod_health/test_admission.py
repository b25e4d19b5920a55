"""One admission answer per pod: the voice webhook, `/readyz` and the campaign dialer ask the same
`PodAdmission`, so they refuse together (draining, memory, the call limit) and admit together again.

The pod is the real app under uvicorn on a loopback port with the in-memory database, Twilio's REST
API faked, memory read from a fake cgroup the test moves, and the dialer the pod itself would run.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from telephony.campaigns.dialer import Dialer
from tests.support.campaign_pod import Pod, campaign_pod
from tests.support.campaigns import start_campaign
from tests.support.cgroups import FakeCgroup
from tests.support.fake_twilio import ACCOUNT_SID
from tests.support.twilio_requests import post_signed, voice_params
from tests.support.waiting import until

pytestmark = pytest.mark.mongodb


async def answer(pod: Pod, call_sid: str | None = None) -> list[str]:
    """The verbs of the voice webhook's TwiML for a new inbound call."""
    response = await asyncio.to_thread(
        post_signed, pod.url, "/twilio/voice", voice_params(call_sid=call_sid, AccountSid=ACCOUNT_SID)
    )
    assert response.status_code == 200, response.text
    return [verb.tag for verb in ET.fromstring(response.text)]


async def refuse(pod: Pod, cgroup: FakeCgroup, reason: str) -> None:
    """Put the pod in the state that gives `reason`."""
    if reason == "draining":
        pod.edge.drain.begin()
    elif reason == "memory":
        cgroup.use(85)
    else:  # the pod's only place is taken by an admitted call
        assert await answer(pod, "CAfirst") == ["Connect"]


def relieve(pod: Pod, cgroup: FakeCgroup, reason: str) -> None:
    if reason == "memory":
        cgroup.use(30)
    else:
        pod.edge.calls.release("CAfirst")  # the first call ended


@pytest.mark.parametrize("reason", ["draining", "memory", "max_concurrent_calls"])
async def test_webhook_readiness_and_dialer_flip_together(reason: str, tmp_path: Path) -> None:
    cgroup = FakeCgroup(tmp_path, percent=30)
    async with campaign_pod({"call_seconds": 0.05}, memory_reader=cgroup.reader, max_concurrent_calls=1) as pod:
        dialer = Dialer(pod.edge, owner="pod")  # as the pod's lifespan builds it
        assert dialer.admission is pod.edge.admission
        await start_campaign(pod, [f"+1555600{i:04d}" for i in range(3)])
        await refuse(pod, cgroup, reason)
        task = asyncio.create_task(dialer.run())
        try:
            assert await answer(pod) == ["Say", "Hangup"]  # the busy message
            ready = await pod.api.get("/readyz")
            assert ready.status_code == 503 and ready.json()["reasons"] == [reason]
            await until(lambda: dialer.holding == reason)
            assert pod.fake.creates() == []
            if reason == "draining":  # a pod never stops draining: all three keep refusing
                assert dialer.admission.hold_reason() == "draining"
                return

            relieve(pod, cgroup, reason)
            ready = await pod.api.get("/readyz")
            assert ready.status_code == 200, ready.json()
            await until(lambda: len(pod.fake.creates()) == 3)  # the dialer dials the campaign
            assert dialer.holding is None
            assert await answer(pod) == ["Connect"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
