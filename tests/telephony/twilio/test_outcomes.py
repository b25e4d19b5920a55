"""CallOutcomes: what a finished stream asked for, waiting for Twilio's <Connect action> request."""

from __future__ import annotations

from agents.port import Hangup, Transfer
from telephony.twilio.outcomes import CallOutcomes
from tests.support.clock import FakeClock


def test_put_then_take(clock: FakeClock) -> None:
    outcomes = CallOutcomes(max_entries=10, ttl_seconds=300, clock=clock)
    outcomes.put("CA1", Hangup())
    outcomes.put("CA2", Transfer("+15550199"))
    assert len(outcomes) == 2
    assert outcomes.take("CA2") == Transfer("+15550199")
    assert outcomes.take("CA1") == Hangup("completed")
    assert len(outcomes) == 0


def test_take_removes_the_entry(clock: FakeClock) -> None:
    outcomes = CallOutcomes(max_entries=10, ttl_seconds=300, clock=clock)
    outcomes.put("CA1", Hangup())
    assert outcomes.take("CA1") is not None
    assert outcomes.take("CA1") is None


def test_take_unknown(clock: FakeClock) -> None:
    outcomes = CallOutcomes(max_entries=10, ttl_seconds=300, clock=clock)
    assert outcomes.take("CA-nobody") is None


def test_put_again_replaces(clock: FakeClock) -> None:
    outcomes = CallOutcomes(max_entries=10, ttl_seconds=300, clock=clock)
    outcomes.put("CA1", Hangup())
    outcomes.put("CA1", Transfer("sip:desk@example.com"))
    assert len(outcomes) == 1
    assert outcomes.take("CA1") == Transfer("sip:desk@example.com")


def test_expiry(clock: FakeClock) -> None:
    outcomes = CallOutcomes(max_entries=10, ttl_seconds=300, clock=clock)
    outcomes.put("CA1", Hangup())
    outcomes.put("CA2", Hangup())
    clock.now += 300
    assert outcomes.take("CA1") == Hangup()  # still valid at the deadline
    clock.now += 0.001
    assert outcomes.take("CA2") is None
    assert len(outcomes) == 0  # the expired entry was removed, not left behind


def test_put_again_renews_the_deadline(clock: FakeClock) -> None:
    outcomes = CallOutcomes(max_entries=10, ttl_seconds=300, clock=clock)
    outcomes.put("CA1", Hangup())
    clock.now += 200
    outcomes.put("CA1", Hangup("agent ended"))
    clock.now += 200
    assert outcomes.take("CA1") == Hangup("agent ended")


def test_oldest_entries_are_evicted(clock: FakeClock) -> None:
    outcomes = CallOutcomes(max_entries=3, ttl_seconds=300, clock=clock)
    for i in range(5):
        outcomes.put(f"CA{i}", Hangup(f"r{i}"))
    assert len(outcomes) == 3
    assert outcomes.take("CA0") is None
    assert outcomes.take("CA1") is None
    assert [outcomes.take(f"CA{i}") for i in (2, 3, 4)] == [Hangup("r2"), Hangup("r3"), Hangup("r4")]


def test_re_put_counts_as_newest_for_eviction(clock: FakeClock) -> None:
    outcomes = CallOutcomes(max_entries=2, ttl_seconds=300, clock=clock)
    outcomes.put("CA1", Hangup())
    outcomes.put("CA2", Hangup())
    outcomes.put("CA1", Transfer("+15550199"))  # CA1 is now the newest
    outcomes.put("CA3", Hangup())  # evicts CA2, the oldest
    assert outcomes.take("CA2") is None
    assert outcomes.take("CA1") == Transfer("+15550199")
    assert outcomes.take("CA3") == Hangup()
