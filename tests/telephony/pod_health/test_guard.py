"""The memory guard: its states, the sampler, admission by memory and draining, and `/readyz`,
against a fake cgroup tree whose usage the tests move (the real server reads it)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from telephony.app import create_app
from telephony.pod import Pod
from telephony.pod_health.active_calls import ActiveCalls
from telephony.pod_health.admission import PodAdmission
from telephony.pod_health.drain import Drain
from telephony.pod_health.guard import GuardState, MemorySampler
from telephony.server import BackgroundServer
from telephony.settings import Settings
from tests.support.cgroups import LIMIT, FakeCgroup
from tests.support.clock import FakeClock
from tests.support.metrics import counter
from tests.support.settings import make_settings
from tests.support.twilio_requests import post_signed, voice_params


@pytest.fixture
def cgroup(tmp_path: Path) -> FakeCgroup:
    return FakeCgroup(tmp_path)


class TestStates:
    def test_thresholds_and_recovery_margin(self, cgroup: FakeCgroup) -> None:
        sampler = MemorySampler(cgroup.reader, soft=0.8, hard=0.9)
        steps = [
            (30, GuardState.OK),
            (80, GuardState.SOFT),
            (89, GuardState.SOFT),
            (90, GuardState.HARD),
            (87, GuardState.HARD),  # within 5 points of the hard line: still hard
            (84, GuardState.SOFT),
            (77, GuardState.SOFT),  # within 5 points of the soft line: still soft
            (74, GuardState.OK),
            (79, GuardState.OK),
            (95, GuardState.HARD),
            (50, GuardState.OK),
        ]
        for percent, expected in steps:
            cgroup.use(percent)
            assert sampler.sample() is expected, percent

    def test_starts_in_the_state_of_its_first_reading(self, cgroup: FakeCgroup) -> None:
        cgroup.use(85)
        assert MemorySampler(cgroup.reader).state is GuardState.SOFT

    def test_on_demand_sample_reuses_a_recent_reading(self, cgroup: FakeCgroup, clock: FakeClock) -> None:
        sampler = MemorySampler(cgroup.reader, clock=clock)
        cgroup.use(85)
        assert sampler.sample(max_age_s=1.0) is GuardState.OK  # read at construction, still fresh
        clock.now += 1.5
        assert sampler.sample(max_age_s=1.0) is GuardState.SOFT

    @pytest.mark.parametrize(("soft", "hard"), [(0.9, 0.8), (0.0, 0.5), (0.8, 1.1)])
    def test_invalid_thresholds_are_refused(self, cgroup: FakeCgroup, soft: float, hard: float) -> None:
        with pytest.raises(ValueError):
            MemorySampler(cgroup.reader, soft=soft, hard=hard)

    def test_settings_refuse_hard_at_or_below_soft(self) -> None:
        with pytest.raises(ValueError, match="memory_soft_percent"):
            make_settings(memory_soft_percent=85, memory_hard_percent=85)

    async def test_background_task_samples_on_its_interval(self, cgroup: FakeCgroup) -> None:
        sampler = MemorySampler(cgroup.reader, interval_s=0.05)
        sampler.start()
        try:
            cgroup.use(92)
            for _ in range(100):  # up to 5 s; one interval is enough
                if sampler.state is GuardState.HARD:
                    break
                await asyncio.sleep(0.05)
            assert sampler.state is GuardState.HARD
            assert sampler.reading.used_bytes == int(LIMIT * 0.92)
        finally:
            await sampler.stop()
        await sampler.stop()  # idempotent


class TestPodAdmission:
    def test_refuses_at_soft_while_draining_and_past_the_call_limit(self, cgroup: FakeCgroup) -> None:
        calls = ActiveCalls(2, reservation_ttl=60)
        drain = Drain()
        admission = PodAdmission(calls, MemorySampler(cgroup.reader), drain)
        assert admission.admit("CA1").admitted
        cgroup.use(81)
        assert admission.admit("CA2").reason == "memory"
        assert calls.count == 1  # a refused call holds no place
        cgroup.use(30)
        assert admission.admit("CA2").admitted
        assert admission.admit("CA3").reason == "max_concurrent_calls"
        drain.begin()
        calls.release("CA1")
        assert admission.admit("CA4").reason == "draining"


# -- against the real server -----------------------------------------------------------------


@pytest.fixture
def guarded(cgroup: FakeCgroup, settings: Settings) -> Iterator[tuple[str, Pod]]:
    app: Starlette = create_app(settings, memory_reader=cgroup.reader)
    with BackgroundServer(app, settings) as url:
        yield url, app.state.pod


def tags(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [verb.tag for verb in ET.fromstring(response.text)]


class TestWebhookAdmission:
    def test_memory_at_soft_threshold_refuses_with_busy_message(
        self, guarded: tuple[str, Pod], cgroup: FakeCgroup, settings: Settings
    ) -> None:
        url, edge = guarded
        assert tags(post_signed(url, "/twilio/voice", voice_params())) == ["Connect"]
        cgroup.use(settings.memory_soft_percent)
        response = post_signed(url, "/twilio/voice", voice_params())
        assert tags(response) == ["Say", "Hangup"]
        assert ET.fromstring(response.text).findtext("Say") == settings.busy_message
        assert counter(edge.metrics, "switchboard_calls_refused_total", reason="memory") == 1
        cgroup.use(40)
        assert tags(post_signed(url, "/twilio/voice", voice_params())) == ["Connect"]

    def test_memory_refusal_can_be_a_reject(self, tmp_path: Path) -> None:
        settings = make_settings(busy_response="reject")
        cgroup = FakeCgroup(tmp_path, percent=95)
        app = create_app(settings, memory_reader=cgroup.reader)
        with BackgroundServer(app, settings) as url:
            document = ET.fromstring(post_signed(url, "/twilio/voice", voice_params()).text)
        reject = document.find("Reject")
        assert reject is not None and reject.get("reason") == "busy"

    def test_draining_pod_refuses_new_calls(self, guarded: tuple[str, Pod]) -> None:
        url, edge = guarded
        edge.drain.begin()
        assert tags(post_signed(url, "/twilio/voice", voice_params())) == ["Say", "Hangup"]
        assert counter(edge.metrics, "switchboard_calls_refused_total", reason="draining") == 1


class TestReadiness:
    def test_transitions(self, guarded: tuple[str, Pod], cgroup: FakeCgroup) -> None:
        url, edge = guarded
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.json()["memory"]["state"] == "ok"

        cgroup.use(85)
        soft = httpx.get(url + "/readyz")
        assert soft.status_code == 503
        assert soft.json()["reason"] == "memory" and soft.json()["memory"]["state"] == "soft"

        cgroup.use(30)
        assert httpx.get(url + "/readyz").status_code == 200

        edge.drain.begin()
        cgroup.use(92)
        both = httpx.get(url + "/readyz")
        assert both.status_code == 503
        assert both.json()["reasons"] == ["draining", "memory"]
        assert both.json()["memory"]["state"] == "hard"
        assert httpx.get(url + "/healthz").status_code == 200  # liveness never fails for load

    def test_full_pod_is_not_ready(self, tmp_path: Path) -> None:
        settings = make_settings(max_concurrent_calls=1)
        cgroup = FakeCgroup(tmp_path)
        app = create_app(settings, memory_reader=cgroup.reader)
        with BackgroundServer(app, settings) as url:
            assert httpx.get(url + "/readyz").status_code == 200
            tags(post_signed(url, "/twilio/voice", voice_params()))  # holds the only place
            full = httpx.get(url + "/readyz")
        assert full.status_code == 503 and full.json()["reason"] == "max_concurrent_calls"

    def test_failing_and_slow_dependency_checks(self, tmp_path: Path) -> None:
        settings = make_settings(readiness_check_timeout_seconds=0.2)
        cgroup = FakeCgroup(tmp_path)
        database_up = True

        async def ping() -> None:
            if not database_up:
                raise ConnectionError("no primary")

        async def hangs() -> None:
            await asyncio.sleep(30)

        app = create_app(settings, memory_reader=cgroup.reader)
        with BackgroundServer(app, settings) as url:
            edge = app.state.pod
            edge.readiness_checks["database"] = ping
            assert httpx.get(url + "/readyz").status_code == 200
            database_up = False
            down = httpx.get(url + "/readyz")
            assert down.status_code == 503 and down.json()["reasons"] == ["database"]
            database_up = True
            edge.readiness_checks["cache"] = hangs
            slow = httpx.get(url + "/readyz", timeout=10)
        assert slow.status_code == 503 and slow.json()["reasons"] == ["cache"]


class TestOutboundHold:
    """The outbound dialer asks `hold_reason()` before each dial: the same reasons as admission."""

    def test_hold_reasons_in_order(self, cgroup: FakeCgroup) -> None:
        calls = ActiveCalls(1, reservation_ttl=60)
        drain = Drain()
        admission = PodAdmission(calls, MemorySampler(cgroup.reader), drain)
        assert admission.hold_reason() is None
        calls.start("CA-1")
        assert admission.hold_reason() == "max_concurrent_calls"
        cgroup.use(85)
        assert admission.hold_reason() == "memory"
        drain.begin()
        assert admission.hold_reason() == "draining"
        calls.release("CA-1")
        cgroup.use(30)
        assert admission.hold_reason() == "draining"  # a draining pod never dials again
