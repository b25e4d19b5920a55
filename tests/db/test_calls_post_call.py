"""A call record's post-call result: stored alone (nothing else on the record touched), and filterable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from db import CallRecords, Database

pytestmark = pytest.mark.mongodb


async def started(calls: CallRecords, sid: str, minute: int) -> None:
    at = datetime(2026, 1, 1, 12, minute, tzinfo=UTC)
    await calls.start(sid, agent_id="support", from_number="+15550001", to_number="+15550002", started_at=at)
    await calls.append_batch(sid, "transcript", [{"role": "caller", "text": f"hello {sid}"}], first=0)
    await calls.finish(sid, outcome="caller hung up", summary={"barge_ins": 1})


async def test_the_result_is_stored_without_touching_the_rest(database: Database) -> None:
    calls = CallRecords(database)
    await started(calls, "CA-p1", 1)
    before = await calls.get("CA-p1")
    assert await calls.set_post_call("CA-p1", "pending")
    fields = {"reason": "r" * 5000, "resolved": True, "total": 12.5, "mood": None}
    assert await calls.set_post_call("CA-p1", "done", summary="Refunded.", fields=fields, only_if="pending")
    after = await calls.get("CA-p1")
    assert before is not None and after is not None
    post_call = after.pop("post_call")
    assert after == before  # transcript, summary counters, outcome: all as they were
    assert post_call["status"] == "done" and post_call["summary"] == "Refunded." and post_call["error"] is None
    assert post_call["fields"]["resolved"] is True and post_call["fields"]["total"] == 12.5
    assert len(post_call["fields"]["reason"]) == 2000 and isinstance(post_call["updated_at"], datetime)
    assert not await calls.set_post_call("CA-p1", "failed", error="late", only_if="pending")  # done stays done
    assert not await calls.set_post_call("CA-none", "pending")


@pytest.mark.parametrize(
    ("status", "fields", "message"),
    [
        ("running", {}, "status"),
        ("done", {"a.b": 1}, "not allowed"),
        ("done", {"$where": 1}, "not allowed"),
        ("done", {"x": {"nested": 1}}, "text, yes/no or a number"),
        ("done", {"x": float("nan")}, "finite"),
        ("done", {f"f{i}": 1 for i in range(33)}, "at most"),
    ],
)
async def test_a_bad_result_is_refused(
    database: Database, status: str, fields: dict[str, object], message: str
) -> None:
    calls = CallRecords(database)
    await started(calls, "CA-p2", 2)
    with pytest.raises(ValueError, match=message):
        await calls.set_post_call("CA-p2", status, fields=fields)
    record = await calls.get("CA-p2")
    assert record is not None and "post_call" not in record


async def test_the_listing_filters_on_status_and_declared_values(database: Database) -> None:
    calls = CallRecords(database)
    for minute, (sid, resolved, reason) in enumerate(
        [("CA-f1", True, "billing"), ("CA-f2", False, "billing"), ("CA-f3", True, "delivery")]
    ):
        await started(calls, sid, minute)
        await calls.set_post_call(sid, "done", fields={"resolved": resolved, "reason": reason, "score": minute})
    await started(calls, "CA-f4", 9)
    await calls.set_post_call("CA-f4", "failed", error="queue full")

    async def sids(**filters: object) -> list[str]:
        return [r["call_sid"] for r in await calls.page(**filters)]  # type: ignore[arg-type]

    assert await sids(post_call_status="failed") == ["CA-f4"]
    assert await sids(post_call_fields={"resolved": ["yes", True]}) == ["CA-f3", "CA-f1"]
    assert await sids(post_call_fields={"resolved": [True], "reason": ["billing"]}) == ["CA-f1"]
    assert await sids(post_call_fields={"score": ["2", 2.0]}) == ["CA-f3"]
    listed = (await calls.page(post_call_status="done", limit=1))[0]
    assert listed["post_call"] == {"status": "done", "fields": {"resolved": True, "reason": "delivery", "score": 2}}
    assert "transcript" not in listed
    for bad in ({"a.b": ["x"]}, {"$or": ["x"]}, {"x": []}, {f"f{i}": ["x"] for i in range(9)}):
        with pytest.raises(ValueError):
            await calls.page(post_call_fields=bad)
    with pytest.raises(ValueError, match="status"):
        await calls.page(post_call_status="running")
