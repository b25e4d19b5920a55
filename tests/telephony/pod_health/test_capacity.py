"""Admission by capacity: a call the pod's engines or CPU could not serve in real time is refused
politely (reason `capacity`) by the webhook, `/readyz` and the dialer together, and admitted again
once the engines have caught up."""

from __future__ import annotations

import asyncio
import threading
import xml.etree.ElementTree as ET

import httpx
import pytest

from agents.engines.local.pool import InferencePool
from agents.engines.protocols import SpeechEngineUnavailable
from agents.engines.remote.speech_client import SpeechClient
from telephony.campaigns.dialer import Dialer
from telephony.pod_health.active_calls import ActiveCalls
from telephony.pod_health.capacity import CAPACITY, Capacity, CapacityLimits, CpuLoad, available_cores
from tests.support.campaign_pod import Pod, campaign_pod
from tests.support.campaigns import start_campaign
from tests.support.fake_twilio import ACCOUNT_SID
from tests.support.twilio_requests import post_signed, voice_params
from tests.support.waiting import until


class FakeCpu:
    """A process clock the test moves: CPU seconds and wall seconds."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 0.0


def test_cpu_load_is_cpu_seconds_per_wall_second_per_core_over_the_window() -> None:
    fake = FakeCpu()
    load = CpuLoad(2.0, cores=2.0, clock=lambda: fake.wall, cpu_seconds=lambda: fake.cpu)
    for _ in range(10):  # 1.5 cores busy for 5 s
        fake.wall += 0.5
        fake.cpu += 0.75
        reading = load.sample()
    assert reading == pytest.approx(0.75, abs=0.01)
    for _ in range(6):  # idle for 3 s: the busy past falls out of the 2 s window
        fake.wall += 0.5
        reading = load.sample()
    assert reading == pytest.approx(0.0, abs=0.01)
    assert available_cores() >= 0.1


class Busy:
    """An inference pool whose only worker is held until `release`."""

    def __init__(self, name: str = "busy") -> None:
        self.pool = InferencePool(name, max_workers=1, max_pending=8)
        self.gate = threading.Event()
        self.jobs: list[asyncio.Task[object]] = []

    def hold(self, jobs: int = 1) -> None:
        self.jobs += [asyncio.create_task(self.pool.run(self.gate.wait)) for _ in range(jobs)]

    async def release(self) -> None:
        self.gate.set()
        await asyncio.gather(*self.jobs)
        self.pool.close()


async def test_a_saturated_engine_or_a_queue_refuses_and_one_more_call_is_predicted() -> None:
    calls = ActiveCalls(limit=10, reservation_ttl=60)
    busy = Busy()
    limits = CapacityLimits(max_engine_load=0.9, max_queued_jobs=2, max_cpu_load=0, window_s=0.3)
    capacity = Capacity(limits, calls, pools=lambda: [busy.pool])
    try:
        assert capacity.reason() is None  # idle
        busy.hold()
        await asyncio.sleep(0.4)
        assert capacity.reason() is None  # a pod with no call always takes one
        assert calls.try_reserve("CA1")
        assert capacity.reason() == CAPACITY and "load" in (capacity.why or "")
        await busy.release()
        await asyncio.sleep(0.4)
        assert capacity.reason() is None and capacity.why is None

        queued = Busy("queued")
        capacity = Capacity(
            CapacityLimits(max_engine_load=0, max_queued_jobs=2, max_cpu_load=0), calls, pools=lambda: [queued.pool]
        )
        queued.hold(4)  # one runs, three wait: more than 2 per worker
        await asyncio.sleep(0.1)
        assert capacity.reason() == CAPACITY and "3 jobs waiting" in (capacity.why or "")
        await queued.release()
        assert capacity.reason() is None
    finally:
        busy.gate.set()


def test_cpu_with_one_more_call_is_predicted_from_the_calls_running() -> None:
    fake = FakeCpu()
    cpu = CpuLoad(2.0, cores=1.0, clock=lambda: fake.wall, cpu_seconds=lambda: fake.cpu)
    calls = ActiveCalls(limit=10, reservation_ttl=60)
    capacity = Capacity(CapacityLimits(max_engine_load=0, max_cpu_load=0.9), calls, pools=list, cpu=cpu)
    fake.wall += 1.0
    fake.cpu += 0.62  # 62 % of the core
    assert capacity.reason() is None  # no call: a pod always takes one
    assert calls.try_reserve("CA1")
    assert capacity.reason() is None  # reserved, not running: nothing to share out
    calls.start("CA1")
    assert capacity.reason() is None  # one call: the reading as it is (0.62)
    calls.start("CA2")
    assert capacity.reason() == CAPACITY  # two calls at 0.62: a third would need 0.93
    calls.release("CA2")
    assert capacity.reason() is None


async def answer(pod: Pod) -> list[str]:
    response = await asyncio.to_thread(post_signed, pod.url, "/twilio/voice", voice_params(AccountSid=ACCOUNT_SID))
    assert response.status_code == 200, response.text
    return [verb.tag for verb in ET.fromstring(response.text)]


@pytest.mark.mongodb
async def test_webhook_readiness_and_dialer_refuse_for_capacity_together() -> None:
    capacity_on = {"admission_max_engine_load": 0.9, "admission_max_queued_jobs": 4, "admission_max_cpu_load": 0}
    async with campaign_pod({"call_seconds": 0.05}, admission_load_window_seconds=0.5, **capacity_on) as pod:
        await start_campaign(pod, [f"+1555610{i:04d}" for i in range(2)])
        pod.edge.calls.start("CA-live")  # the pod carries a call (one is always admitted)
        busy = Busy("whisper-like")
        busy.hold()
        await asyncio.sleep(0.6)  # the engine has been busy the whole window
        dialer = Dialer(pod.edge, owner="pod")
        task = asyncio.create_task(dialer.run())
        try:
            assert await answer(pod) == ["Say", "Hangup"]  # the polite busy message
            ready = await pod.api.get("/readyz")
            assert ready.status_code == 503 and ready.json()["reasons"] == ["capacity"]
            await until(lambda: dialer.holding == "capacity")
            assert pod.fake.creates() == []
            metrics = (await pod.api.get("/metrics")).text
            assert 'switchboard_calls_refused_total{reason="capacity"} 1.0' in metrics

            await busy.release()
            await asyncio.sleep(0.6)  # the window has moved past the busy spell
            assert (await pod.api.get("/readyz")).status_code == 200
            await until(lambda: len(pod.fake.creates()) == 2)
            assert await answer(pod) == ["Connect"]
        finally:
            busy.gate.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_a_remote_speech_service_that_fails_or_answers_slowly_refuses() -> None:
    calls = ActiveCalls(limit=10, reservation_ttl=60)
    state = {"status": 503, "delay": 0.0}

    async def service(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(state["delay"])
        return httpx.Response(int(state["status"]), json={"error": {"message": "busy"}})

    client = SpeechClient("http://speech", retries=0, timeout_s=2.0, transport=httpx.MockTransport(service))
    limits = CapacityLimits(
        max_engine_load=0, max_cpu_load=0, max_speech_latency_s=0.2, max_speech_failure_share=0.5, window_s=30
    )
    capacity = Capacity(limits, calls, pools=list, speech=lambda: [client])
    calls.start("CA1")
    try:
        assert capacity.reason() is None  # no requests yet
        for _ in range(3):
            with pytest.raises(SpeechEngineUnavailable):
                async with client.request("GET", "/health"):
                    pass
        assert capacity.reason() == CAPACITY and "3 of 3 requests unanswered" in (capacity.why or "")

        client = SpeechClient("http://speech", retries=0, timeout_s=2.0, transport=httpx.MockTransport(service))
        state.update(status=200, delay=0.0)
        async with client.request("GET", "/health"):
            pass
        assert capacity.reason() is None  # answered at once
        state["delay"] = 0.3
        for _ in range(2):
            async with client.request("GET", "/health"):
                pass
        assert capacity.reason() == CAPACITY and "to answer" in (capacity.why or "")
    finally:
        await client.aclose()


async def test_no_more_calls_than_an_engine_has_places_for_pending_jobs() -> None:
    calls = ActiveCalls(limit=100, reservation_ttl=60)
    pool = InferencePool("stt-like", max_workers=1, max_pending=3)
    capacity = Capacity(CapacityLimits(max_cpu_load=0), calls, pools=lambda: [pool])
    try:
        for sid in ("CA1", "CA2"):
            assert capacity.reason() is None
            calls.start(sid)
        assert capacity.reason() is None  # a third call still has a place if all three speak at once
        calls.start("CA3")
        assert capacity.reason() == CAPACITY and "4 calls for 3 pending jobs" in (capacity.why or "")
    finally:
        pool.close()
