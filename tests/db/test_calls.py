"""Call records written in batches as the call goes: bounded, idempotent, and an end that counts what is missing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from db import CallRecords, Database

pytestmark = pytest.mark.mongodb


def lines(first: int, n: int) -> list[dict[str, object]]:
    return [{"role": "caller", "text": f"line {i}"} for i in range(first, first + n)]


async def test_a_batch_is_appended_once_even_when_retried(database: Database) -> None:
    calls = CallRecords(database)
    await calls.start("CA-b1", agent_id="support", from_number="+1", to_number="+2")
    assert await calls.append_batch("CA-b1", "transcript", lines(0, 3), first=0)
    assert await calls.append_batch("CA-b1", "transcript", lines(0, 3), first=0)  # the reply was lost: a retry
    assert await calls.append_batch("CA-b1", "transcript", lines(3, 2), first=3)
    record = await calls.get("CA-b1")
    assert record is not None
    assert [t["text"] for t in record["transcript"]] == [f"line {i}" for i in range(5)]
    assert record["counts"]["transcript"] == 5


async def test_a_batch_out_of_order_or_for_no_record_is_not_stored(database: Database) -> None:
    calls = CallRecords(database)
    assert not await calls.append_batch("CA-none", "transcript", lines(0, 1), first=0)
    await calls.start("CA-b2", agent_id="support", from_number="+1", to_number="+2")
    assert not await calls.append_batch("CA-b2", "transcript", lines(4, 1), first=4)  # 0..3 never arrived
    record = await calls.get("CA-b2")
    assert record is not None and record["transcript"] == []


async def test_a_batch_stays_within_the_bound(make_database: Callable[..., Awaitable[Database]]) -> None:
    calls = CallRecords(await make_database(max_turns_per_call=4, max_turn_chars=5))
    await calls.start("CA-b3", agent_id="support", from_number="+1", to_number="+2")
    assert await calls.append_batch("CA-b3", "transcript", lines(0, 4), first=0)
    with pytest.raises(ValueError, match="past the bound"):
        await calls.append_batch("CA-b3", "transcript", lines(4, 1), first=4)
    with pytest.raises(ValueError, match="plain value"):
        await calls.append_batch("CA-b3", "tool_audit", [{"arguments": {"$where": "1"}}], first=0)
    record = await calls.get("CA-b3")
    assert record is not None and [t["text"] for t in record["transcript"]] == ["line "] * 4  # cut to 5 chars


async def test_the_end_counts_what_the_writer_dropped_once(database: Database) -> None:
    calls = CallRecords(database)
    await calls.start("CA-b4", agent_id="support", from_number="+1", to_number="+2")
    for _ in range(2):  # a retried end
        await calls.finish("CA-b4", outcome="caller hung up", summary={"barge_ins": 3}, dropped={"transcript": 7})
    record = await calls.get("CA-b4")
    assert record is not None
    assert record["dropped"]["transcript"] == 7 and record["summary"] == {"barge_ins": 3}
