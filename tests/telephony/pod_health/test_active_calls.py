"""ActiveCalls: reservations at the webhook, activation at stream start, release at the end."""

from __future__ import annotations

from telephony.pod_health.active_calls import ActiveCalls
from tests.support.clock import FakeClock


def test_limit_is_enforced(clock: FakeClock) -> None:
    calls = ActiveCalls(limit=2, reservation_ttl=60, clock=clock)
    assert calls.try_reserve("CA1") is True
    assert calls.try_reserve("CA2") is True
    assert calls.try_reserve("CA3") is False
    assert calls.count == 2
    assert calls.active == 0


def test_active_calls_count_against_the_limit(clock: FakeClock) -> None:
    calls = ActiveCalls(limit=2, reservation_ttl=60, clock=clock)
    calls.start("CA1")
    assert calls.try_reserve("CA2") is True
    assert calls.try_reserve("CA3") is False


def test_retried_webhook_does_not_double_count(clock: FakeClock) -> None:
    calls = ActiveCalls(limit=2, reservation_ttl=60, clock=clock)
    assert calls.try_reserve("CA1") is True
    assert calls.try_reserve("CA1") is True
    assert calls.count == 1
    assert calls.try_reserve("CA2") is True
    assert calls.try_reserve("CA1") is True  # a retry is still answered when the pod is full
    assert calls.count == 2


def test_retried_webhook_for_an_active_call(clock: FakeClock) -> None:
    calls = ActiveCalls(limit=1, reservation_ttl=60, clock=clock)
    calls.start("CA1")
    assert calls.try_reserve("CA1") is True
    assert calls.count == 1
    assert calls.active == 1


def test_reservation_expires(clock: FakeClock) -> None:
    calls = ActiveCalls(limit=1, reservation_ttl=60, clock=clock)
    assert calls.try_reserve("CA1") is True
    clock.now += 60
    assert calls.count == 1  # still held at the deadline itself
    assert calls.try_reserve("CA2") is False
    clock.now += 0.001
    assert calls.count == 0
    assert calls.try_reserve("CA2") is True
    assert calls.count == 1


def test_started_call_does_not_expire(clock: FakeClock) -> None:
    calls = ActiveCalls(limit=1, reservation_ttl=60, clock=clock)
    calls.try_reserve("CA1")
    calls.start("CA1")
    clock.now += 3600
    assert calls.count == 1
    assert calls.active == 1
    assert calls.try_reserve("CA2") is False


def test_start_moves_a_reservation_to_active(clock: FakeClock) -> None:
    calls = ActiveCalls(limit=5, reservation_ttl=60, clock=clock)
    calls.try_reserve("CA1")
    calls.start("CA1")
    assert calls.count == 1
    assert calls.active == 1


def test_start_without_reservation(clock: FakeClock) -> None:
    """A stream may start on a pod other than the one that answered the webhook."""
    calls = ActiveCalls(limit=1, reservation_ttl=60, clock=clock)
    calls.start("CA1")
    assert calls.active == 1
    assert calls.count == 1
    assert calls.start("CA1") is False  # already live: refused, nothing changes
    assert calls.count == 1
    calls.start("CA2")  # not refused here: the call is already connected
    assert calls.active == 2


def test_release(clock: FakeClock) -> None:
    calls = ActiveCalls(limit=2, reservation_ttl=60, clock=clock)
    calls.try_reserve("CA1")
    calls.try_reserve("CA2")
    calls.start("CA2")
    calls.release("CA1")  # reserved, never started
    assert calls.count == 1
    calls.release("CA2")  # active
    assert calls.count == 0
    assert calls.active == 0
    calls.release("CA2")  # twice: harmless
    calls.release("CA-unknown")
    assert calls.count == 0
    assert calls.try_reserve("CA3") is True


def test_retry_after_reservation_expired_holds_a_place(clock: FakeClock) -> None:
    calls = ActiveCalls(limit=1, reservation_ttl=60, clock=clock)
    assert calls.try_reserve("CA1") is True
    clock.now += 61
    assert calls.try_reserve("CA1") is True  # admitted again...
    assert calls.count == 1  # ...so it must hold the place
    assert calls.try_reserve("CA2") is False


def test_a_repeated_call_sid_neither_takes_over_nor_double_counts_a_live_call(clock: FakeClock) -> None:
    """A replayed token's second stream must not replace the live call's entry: when it ended, its
    release would drop the live call from the count, and drain could finish with the call still up."""
    calls = ActiveCalls(limit=4, reservation_ttl=60, clock=clock)
    end_live: list[str] = []
    end_replay: list[str] = []
    assert calls.start("CA1", end_live.append) is True
    assert calls.start("CA1", end_replay.append) is False
    assert calls.count == 1 and calls.active == 1
    newest = calls.newest()
    assert newest is not None and newest[0] == "CA1"
    newest[1]("shed")  # type: ignore[misc]
    assert end_live == ["shed"] and end_replay == []


class _Control:
    async def end(self, reason: str) -> None: ...

    async def transfer(self, to: str, reason: str) -> None: ...


def test_a_live_call_keeps_its_operator_control_until_released(clock: FakeClock) -> None:
    calls, control = ActiveCalls(limit=2, reservation_ttl=60, clock=clock), _Control()
    assert calls.start("CA1", None, control) is True
    assert calls.start("CA1", None, _Control()) is False  # a twin stream does not replace it
    assert calls.control("CA1") is control and calls.control("CA2") is None
    calls.release("CA1")
    assert calls.control("CA1") is None
