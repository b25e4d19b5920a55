"""Versioned agent configs, campaigns (slots, pacing), contacts with leases, do-not-call, call pages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from db import (
    AgentConfigs,
    AgentExists,
    CallRecords,
    Campaigns,
    Contacts,
    Database,
    DoNotCall,
    TransitionRefused,
    VersionConflict,
    ensure_indexes,
)

pytestmark = pytest.mark.mongodb


async def test_every_agent_write_is_a_new_version_and_old_ones_stay_readable(database: Database) -> None:
    configs = AgentConfigs(database)
    first = await configs.create("support", {"greeting": "Hello"})
    assert first.version == 1
    with pytest.raises(AgentExists):
        await configs.create("support", {"greeting": "again"})
    second = await configs.update("support", {"greeting": "Hi"})
    assert second is not None and second.version == 2
    with pytest.raises(VersionConflict) as conflict:
        await configs.update("support", {"greeting": "stale"}, expected_version=1)
    assert conflict.value.current == 2
    assert await configs.update("missing", {"greeting": "x"}) is None
    assert await configs.versions("support") == [2, 1]
    old = await configs.version("support", 1)
    assert old is not None and old.config == {"greeting": "Hello"}
    assert await configs.delete("support") and await configs.get("support") is None
    again = await configs.create("support", {"greeting": "Back"})
    assert again.version == 3  # numbering continues after a delete
    assert (await configs.version("support", 2)).config == {"greeting": "Hi"}  # type: ignore[union-attr]


async def test_agent_ids_are_lower_case_like_agent_configs(database: Database) -> None:
    with pytest.raises(ValueError, match="lower-case"):
        await AgentConfigs(database).create("Support", {})


async def test_campaign_transitions_are_atomic_and_refuse_the_wrong_status(database: Database) -> None:
    campaigns = Campaigns(database)
    campaign = await campaigns.create({"name": "x"}, max_concurrent_calls=2)
    cid = campaign["_id"]
    assert (await campaigns.transition(cid, "start"))["status"] == "running"  # type: ignore[index]
    with pytest.raises(TransitionRefused, match="cannot resume a campaign that is running"):
        await campaigns.transition(cid, "resume")
    assert (await campaigns.transition(cid, "pause"))["status"] == "paused"  # type: ignore[index]
    assert (await campaigns.transition(cid, "cancel"))["status"] == "cancelled"  # type: ignore[index]
    assert await campaigns.transition("cmp_missing", "start") is None


async def test_concurrency_slots_are_exclusive_and_expire(database: Database) -> None:
    campaigns = Campaigns(database)
    cid = (await campaigns.create({}, max_concurrent_calls=2))["_id"]
    a = await campaigns.acquire_slot(cid, "a", now=100.0, until=130.0)
    b = await campaigns.acquire_slot(cid, "b", now=100.0, until=130.0)
    assert a and b and a != b
    assert await campaigns.acquire_slot(cid, "c", now=101.0, until=131.0) is None
    assert await campaigns.busy_slots(cid, now=101.0) == 2
    assert not await campaigns.release_slot(a, "not-the-holder")
    assert await campaigns.release_slot(a, "a")
    assert await campaigns.acquire_slot(cid, "c", now=102.0, until=132.0) == a
    assert await campaigns.acquire_slot(cid, "d", now=131.0, until=140.0) == b  # b's hold expired


async def test_pacing_reservations_are_spaced_across_racing_pods(database: Database) -> None:
    campaigns = Campaigns(database)
    cid = (await campaigns.create({}, max_concurrent_calls=1))["_id"]
    times = await asyncio.gather(*(campaigns.reserve_dial_time(cid, now=50.0, interval=0.5) for _ in range(8)))
    assert sorted(times) == [50.0 + 0.5 * i for i in range(8)]


async def test_a_contact_is_leased_by_one_owner_until_its_lease_runs_out(database: Database) -> None:
    await ensure_indexes(database)
    contacts = Contacts(database)
    report = await contacts.insert("c1", [{"phone": f"+1555000{i:04d}", "row": i} for i in range(20)])
    assert report.inserted == 20
    dup = await contacts.insert("c1", [{"phone": "+15550000003"}, {"phone": "+15559999999"}])
    assert dup.inserted == 1 and dup.duplicates == [0]
    leases = await asyncio.gather(*(contacts.lease("c1", f"pod{i % 3}", now=10.0, lease_seconds=30) for i in range(30)))
    taken = [lease["_id"] for lease in leases if lease is not None]
    assert len(taken) == 21 and len(set(taken)) == 21
    assert await contacts.lease("c1", "pod9", now=20.0, lease_seconds=30) is None
    recovered = await contacts.lease("c1", "pod9", now=41.0, lease_seconds=30)  # the others' leases expired
    assert recovered is not None and recovered["lease_owner"] == "pod9"


async def test_attempts_settle_once_and_retry_up_to_the_limit(database: Database) -> None:
    contacts = Contacts(database)
    await contacts.insert("c2", [{"phone": "+15550001111"}])
    now = 0.0
    outcomes = []
    for status in ("busy", "no-answer", "busy"):
        lease = await contacts.lease("c2", "pod", now=now, lease_seconds=30)
        assert lease is not None
        attempt = await contacts.start_dialing(lease["_id"], "pod", slot="s", until=now + 60)
        assert await contacts.dialed(lease["_id"], attempt, call_sid=f"CA{attempt}", until=now + 600)  # type: ignore[arg-type]
        args = {"status": status, "call_sid": f"CA{attempt}", "now": now, "max_attempts": 3, "retry_delay": 60}
        assert await contacts.finish_attempt(lease["_id"], attempt, **args) is not None  # type: ignore[arg-type]
        assert await contacts.finish_attempt(lease["_id"], attempt, **args) is None  # a repeated callback  # type: ignore[arg-type]
        outcomes.append((await contacts.get(lease["_id"]))["state"])  # type: ignore[index]
        assert await contacts.lease("c2", "pod", now=now + 59, lease_seconds=30) is None  # the retry delay
        now += 60
    assert outcomes == ["pending", "pending", "failed"]
    counts = await contacts.counts("c2")
    assert counts["failed"] == 1 and counts["attempts"] == 3


async def test_do_not_call_list(database: Database) -> None:
    dnc = DoNotCall(database)
    assert await dnc.add(["+15550001111", "+15550002222", "+15550001111"]) == 2
    assert await dnc.add(["+15550001111"]) == 0
    assert await dnc.contains("+15550001111") and not await dnc.contains("+15550003333")
    assert not await dnc.contains("nonsense")
    with pytest.raises(ValueError):
        await dnc.add(["555"])
    assert await dnc.remove("+15550001111") and not await dnc.contains("+15550001111")


async def test_call_pages_walk_newest_first_without_gaps(database: Database) -> None:
    calls = CallRecords(database)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(7):
        at = start + timedelta(minutes=i // 2)  # pairs share a start time
        await calls.start(
            f"CA{i}", agent_id="support", from_number="+1", to_number="+2", started_at=at, agent_version=3
        )
    seen: list[str] = []
    before = None
    while page := await calls.page(before=before, limit=3):
        seen += [c["call_sid"] for c in page]
        before = (page[-1]["started_at"], page[-1]["call_sid"])
    assert seen == ["CA6", "CA5", "CA4", "CA3", "CA2", "CA1", "CA0"]
    assert (await calls.get("CA0"))["agent_version"] == 3  # type: ignore[index]
