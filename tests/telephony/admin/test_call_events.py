"""The event stream's text, from a record that grows under it: positions, barge-ins, tool calls merged in
time order, the end once everything before it is sent, heartbeats, the time limit, database blips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db import DatabaseError
from telephony.admin.call_events import Position, StreamSlots, call_events, new_entries, parse_position

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class GrowingRecord:
    """A record whose entries appear one poll at a time (as a pod's writer adds them)."""

    def __init__(self, polls: list[dict[str, Any]], *, fail_first: bool = False) -> None:
        self.polls = polls
        self.reads: list[tuple[int, int]] = []
        self.fail_first = fail_first

    async def __call__(self, transcript: int, tool_audit: int) -> dict[str, Any] | None:
        self.reads.append((transcript, tool_audit))
        if self.fail_first and len(self.reads) == 1:
            raise DatabaseError("down")
        full = self.polls[min(len(self.reads) - 1, len(self.polls) - 1)]
        return {
            **full,
            "transcript": full.get("transcript", [])[transcript:],
            "tool_audit": full.get("tool_audit", [])[tool_audit:],
            "counts": {"transcript": len(full.get("transcript", [])), "tool_audit": len(full.get("tool_audit", []))},
        }


async def collect(progress: Any, start: Position | None = None, **options: Any) -> str:
    events = call_events(progress, start or Position(), poll_seconds=0, **options)
    return "".join([chunk async for chunk in events])


def test_positions_parse_and_bad_ones_are_refused() -> None:
    assert parse_position("3.1") == Position(3, 1) and str(Position(3, 1)) == "3.1"
    for bad in ("", "3", "a.b", "-1.0", "1.2.3", "99999999.0"):
        with pytest.raises(ValueError):
            parse_position(bad)


def test_entries_merge_in_time_order_and_barge_ins_are_named() -> None:
    record = {
        "transcript": [
            {"role": "caller", "text": "hi", "at": at(1)},
            {"role": "system", "text": "barge-in (speech)", "at": at(3)},
        ],
        "tool_audit": [{"name": "lookup", "ok": True, "at": at(2), "call_sid": "CA1", "agent_id": "a"}],
    }
    events, after = new_entries(record, Position(4, 0))
    assert [(kind, data["index"], str(pos)) for kind, data, pos in events] == [
        ("transcript", 4, "5.0"),
        ("tool", 0, "5.1"),
        ("barge_in", 5, "6.1"),
    ]
    assert after == Position(6, 1) and "call_sid" not in events[1][1]


async def test_lines_as_they_come_then_the_end_once_all_is_sent() -> None:
    line = {"role": "agent", "text": "Hello", "at": at(0)}
    bye = {**line, "text": "Bye", "at": at(4)}
    progress = GrowingRecord(
        [
            {"ended_at": None},
            {"ended_at": None, "transcript": [line]},
            {"ended_at": at(5), "outcome": "caller hung up", "transcript": [line, bye]},
        ]
    )
    text = await collect(progress, max_seconds=30)
    assert text.index('"text":"Hello"') < text.index('"text":"Bye"') < text.index("event: end")
    assert "id: 2.0\nevent: end" in text and '"outcome":"caller hung up"' in text
    assert progress.reads == [(0, 0), (0, 0), (1, 0)]


async def test_a_database_blip_is_a_comment_and_a_deleted_record_ends_the_stream() -> None:
    progress = GrowingRecord([{"ended_at": None}], fail_first=True)
    progress.polls = [{"ended_at": None}]
    text = await collect(progress, max_seconds=0.05)
    assert ": database unavailable" in text and "time limit" in text and "event: end" not in text

    async def gone(transcript: int, tool_audit: int) -> None:
        return None

    assert '"status":"gone"' in await collect(gone, max_seconds=30)


async def test_an_idle_stream_sends_heartbeats() -> None:
    text = await collect(GrowingRecord([{"ended_at": None}]), max_seconds=0.05, heartbeat_seconds=0)
    assert ": heartbeat" in text


def test_slots_are_bounded() -> None:
    slots = StreamSlots(2)
    assert slots.take() and slots.take() and not slots.take()
    slots.release()
    assert slots.take() and slots.open == 2


async def test_a_draining_pod_closes_its_streams() -> None:
    polls = 0

    def draining() -> bool:
        nonlocal polls
        polls += 1
        return polls > 2

    text = await collect(GrowingRecord([{"ended_at": None}]), max_seconds=30, stop=draining)
    assert "going away" in text and "event: end" not in text
