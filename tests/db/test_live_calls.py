"""Live calls as the database sees them: started, not ended, recent; and a record read from a position on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db import CallRecords, Database
from db.live_calls import MAX_FOLLOWED_ENTRIES, LiveCallRecords

pytestmark = pytest.mark.mongodb


async def test_active_lists_recent_unfinished_calls_newest_first(database: Database) -> None:
    calls, live = CallRecords(database), LiveCallRecords(database)
    now = datetime.now(UTC)
    for n, agent in enumerate(["a", "b", "a", "a"]):
        await calls.start(f"CA{n}", agent_id=agent, from_number="+1", to_number="+2", started_at=now - timedelta(n))
    await calls.finish("CA0", outcome="caller hung up")
    await calls.start("CAq", agent_id="a", from_number="+1", to_number="+2", status="queued", started_at=now)
    await calls.set_status("CAq", "busy")
    since = now - timedelta(days=2, hours=1)
    assert [r["call_sid"] for r in await live.active(since=since, limit=10)] == ["CA1", "CA2"]
    assert [r["call_sid"] for r in await live.active(since=since, limit=10, agent_ids=["a"])] == ["CA2"]
    assert [r["call_sid"] for r in await live.active(since=since, limit=1)] == ["CA1"]
    assert await live.active(since=since, limit=10, agent_ids=[]) == []
    [row] = await live.active(since=since, limit=1)
    assert "transcript" not in row and row["counts"]["transcript"] == 0


async def test_progress_reads_each_list_from_its_position(database: Database) -> None:
    calls, live = CallRecords(database), LiveCallRecords(database)
    await calls.start("CAp", agent_id="a", from_number="+1", to_number="+2")
    lines = [{"role": "caller", "text": f"line {i}"} for i in range(5)]
    assert await calls.append_batch("CAp", "transcript", lines, first=0)
    assert await calls.add_tool_audit("CAp", {"name": "lookup", "ok": True})
    assert await calls.add_latency("CAp", {"turn": 1})
    record = await live.progress("CAp", transcript_from=3, tool_audit_from=1)
    assert record is not None
    assert [t["text"] for t in record["transcript"]] == ["line 3", "line 4"]
    assert record["tool_audit"] == [] and "latency" not in record
    assert record["counts"] == {"transcript": 5, "tool_audit": 1, "latency": 1}
    first = await live.progress("CAp", transcript_from=0, tool_audit_from=0, limit=2)
    assert first is not None and len(first["transcript"]) == 2 and first["tool_audit"][0]["name"] == "lookup"
    assert await live.progress("CAnone", transcript_from=0, tool_audit_from=0) is None
    assert MAX_FOLLOWED_ENTRIES >= 1
