"""A call's final status is never overwritten: Twilio's callbacks can arrive out of order, and an
answering-machine result that comes after `completed` neither reopens the call record nor acts
on a call that has ended."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.campaign_pod import Pod, campaign_pod
from tests.support.settings import AGENT_NUMBER
from tests.support.twilio_requests import post_signed
from tests.support.waiting import until

pytestmark = pytest.mark.mongodb


async def _record(pod: Pod, sid: str) -> dict:
    return (await pod.api.get(f"/api/calls/{sid}")).json()


async def test_a_late_amd_callback_after_completed_changes_nothing() -> None:
    async with campaign_pod({"call_seconds": 0.05, "amd_seconds": 5.0}) as pod:
        response = await pod.api.post(
            "/api/calls",
            json={
                "to": "+15550005555",
                "from_number": AGENT_NUMBER,
                "agent_id": "echo",
                "voicemail": {"policy": "leave_message", "message": "Call us back."},
            },
        )
        assert response.status_code == 201, response.text
        sid = response.json()["call_sid"]
        call = pod.fake.calls[sid]
        await until(lambda: call.ended_at is not None and len(pod.fake.callbacks) >= 1, timeout=30)
        for _ in range(100):
            if (await _record(pod, sid)).get("status") == "completed":
                break
            await asyncio.sleep(0.05)
        assert (await _record(pod, sid))["status"] == "completed"
        amd = call.params["AsyncAmdStatusCallback"]
        path = amd[len(pod.url) :]
        late = await asyncio.to_thread(
            post_signed,
            pod.url,
            path,
            {"CallSid": sid, "AccountSid": pod.fake.account_sid, "AnsweredBy": "machine_end_beep"},
        )
        assert late.status_code == 204
        record = await _record(pod, sid)
        assert record["status"] == "completed"  # final: not reopened as in-progress
        assert record["answered_by"] == "machine_end_beep"  # what Twilio reported is still kept
        assert call.updates == []  # no voicemail played into, nor hang-up sent to, an ended call
        late_progress = await asyncio.to_thread(
            post_signed,
            pod.url,
            call.params["StatusCallback"][len(pod.url) :],
            {"CallSid": sid, "AccountSid": pod.fake.account_sid, "CallStatus": "in-progress"},
        )
        assert late_progress.status_code == 204
        assert (await _record(pod, sid))["status"] == "completed"
