"""Load shedding at the hard threshold: relief first, then the newest call, one per cooldown, never
the last; and through the real server, the newest of two calls is ended while the older goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from telephony.app import create_app
from telephony.pod_health.active_calls import ActiveCalls
from telephony.pod_health.guard import MemorySampler
from telephony.pod_health.shedding import LoadShedder, release_free_memory
from telephony.server import BackgroundServer
from telephony.simulator import Pause, SimulatedCall
from tests.support.cgroups import FakeCgroup
from tests.support.clock import FakeClock
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN, make_settings


class Pod:
    """A shedder over a fake cgroup and three running calls that record being asked to end."""

    def __init__(self, tmp_path: Path, clock: FakeClock, percent: float = 95) -> None:
        self.cgroup = FakeCgroup(tmp_path, percent)
        self.clock = clock
        self.memory = MemorySampler(self.cgroup.reader, soft=0.8, hard=0.9)
        self.calls = ActiveCalls(10, reservation_ttl=60)
        self.ended: list[tuple[str, str]] = []
        self.relief_frees_to: float | None = None
        for sid in ("CA-oldest", "CA-middle", "CA-newest"):
            self.calls.start(sid, self.ender(sid))
        self.shedder = LoadShedder(self.memory, self.calls, cooldown_s=5.0, relieve=self.relieve, clock=clock)

    def ender(self, sid: str) -> Callable[[str], None]:
        return lambda reason: self.ended.append((sid, reason))

    def relieve(self) -> None:
        if self.relief_frees_to is not None:
            self.cgroup.use(self.relief_frees_to)


def test_below_the_hard_threshold_nothing_is_done(tmp_path: Path, clock: FakeClock) -> None:
    pod = Pod(tmp_path, clock, percent=85)  # soft: no new calls, but nothing is shed
    assert pod.shedder.check() is None
    assert pod.shedder.reliefs == 0 and pod.ended == []


def test_relief_that_brings_memory_down_spares_every_call(tmp_path: Path, clock: FakeClock) -> None:
    pod = Pod(tmp_path, clock)
    pod.relief_frees_to = 70
    assert pod.shedder.check() is None
    assert pod.shedder.reliefs == 1 and pod.ended == []


def test_the_newest_call_is_ended_one_per_cooldown_and_never_the_last(tmp_path: Path, clock: FakeClock) -> None:
    pod = Pod(tmp_path, clock)
    assert pod.shedder.check() == "CA-newest"  # relief did not help: the newest call goes
    assert pod.ended == [("CA-newest", "memory")] and pod.shedder.reliefs == 1
    pod.calls.release("CA-newest")  # its goodbye ended it

    clock.now += 1.0
    assert pod.shedder.check() is None  # within the cooldown: wait for the freed memory to show
    clock.now += 5.0
    assert pod.shedder.check() == "CA-middle"
    pod.calls.release("CA-middle")

    clock.now += 10.0
    assert pod.shedder.check() is None  # one call left: never end all calls
    assert [sid for sid, _ in pod.ended] == ["CA-newest", "CA-middle"]
    assert pod.shedder.shed == ["CA-newest", "CA-middle"]


def test_a_failing_relief_does_not_stop_shedding(tmp_path: Path, clock: FakeClock) -> None:
    pod = Pod(tmp_path, clock)

    def broken() -> None:
        raise OSError("no")

    shedder = LoadShedder(pod.memory, pod.calls, relieve=broken, clock=clock)
    assert shedder.check() == "CA-newest"


def test_release_free_memory_runs() -> None:
    release_free_memory()  # gc and malloc_trim (where the C library has it) must not raise


def test_newest_follows_start_order() -> None:
    calls = ActiveCalls(5, reservation_ttl=60)
    assert calls.newest() is None
    calls.start("CA-1")
    calls.start("CA-2")
    calls.release("CA-2")
    calls.start("CA-3")
    newest = calls.newest()
    assert newest is not None and newest[0] == "CA-3"


async def test_the_server_ends_the_newest_call_and_the_older_one_goes_on(tmp_path: Path) -> None:
    settings = make_settings(memory_sample_interval_seconds=0.1, shed_cooldown_seconds=1.0)
    cgroup = FakeCgroup(tmp_path, percent=30)
    app = create_app(settings, memory_reader=cgroup.reader)
    with BackgroundServer(app, settings) as url:
        edge = app.state.pod

        def call() -> SimulatedCall:
            return SimulatedCall(url, AUTH_TOKEN, to=AGENT_NUMBER, script=[Pause(4.0)], tail_s=0.5)

        older = asyncio.create_task(call().run())
        for _ in range(200):
            if edge.calls.active == 1:
                break
            await asyncio.sleep(0.02)
        newer = asyncio.create_task(call().run())
        for _ in range(200):
            if edge.calls.active == 2:
                break
            await asyncio.sleep(0.02)
        assert edge.calls.active == 2

        cgroup.use(95)  # past the hard threshold; the fake's usage does not fall with relief
        newer_report = await asyncio.wait_for(newer, 10)
        cgroup.use(30)
        older_report = await asyncio.wait_for(older, 20)

    assert newer_report.outcome.startswith("agent hung up")
    assert newer_report.close_reason == "ended by the pod (memory)"
    assert older_report.outcome == "caller hung up"  # the older call ran to its own end
    assert edge.metrics.registry.get_sample_value("switchboard_calls_shed_total") == 1
    assert edge.shedder.reliefs >= 1
