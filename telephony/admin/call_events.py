"""A live call's record as server-sent events: transcript lines, tool calls, barge-ins, then its end.

The pod carrying the call writes its record in batches every half second (`telephony/call_records.py`),
so following the record in the database works for a call on any pod: poll it every `POLL_SECONDS`,
send what is past the client's position, and send `end` (then close) once the record is ended and
everything before the end has been sent (the writer stores the end last, after every line).

Each event's `id` is the position after it, `<transcript lines>.<tool audit entries>`; a client that
reconnects with `Last-Event-ID` goes on from there. Bounded: a per-pod number of open streams
(`StreamSlots`), a maximum duration per stream, a comment every `HEARTBEAT_SECONDS` so proxies keep
an idle stream open, and the stream stops as soon as the client goes (Starlette cancels it).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from db import DatabaseError
from db.calls import FINAL_CALL_STATUSES

POLL_SECONDS = 0.5
"""How often a stream reads the record (the pods' record writers flush every 0.5 s)."""
HEARTBEAT_SECONDS = 15.0
"""A comment line after this long without an event, so proxies and browsers keep the stream open."""
RETRY_MS = 2000
"""How long a browser's EventSource waits before it reconnects (the `retry:` field)."""
MAX_POSITION = 1_000_000
"""Bound on either number of a `Last-Event-ID` (far above any call's stored entries)."""
BARGE_IN_PREFIX = "barge-in"
"""A system transcript line starting so is a barge-in (`agents/conversation/barge_in.py` says it)."""
_POSITION = re.compile(r"^(\d{1,7})\.(\d{1,7})$")

Progress = Callable[[int, int], Awaitable[dict[str, Any] | None]]
"""(transcript position, tool audit position) -> the record with its entries from there, or None."""


@dataclass(frozen=True)
class Position:
    """Entries of the transcript and of the tool audit the client has had."""

    transcript: int = 0
    tool_audit: int = 0

    def __str__(self) -> str:
        return f"{self.transcript}.{self.tool_audit}"


def parse_position(text: str) -> Position:
    """`<transcript>.<tool audit>` as an event id carries it; ValueError otherwise."""
    match = _POSITION.match(text.strip())
    if match is None or max(int(match[1]), int(match[2])) > MAX_POSITION:
        raise ValueError("expected <transcript lines>.<tool audit entries>, as this stream's event ids are")
    return Position(int(match[1]), int(match[2]))


class StreamSlots:
    """The pod's open event streams, bounded: a stream past `limit` is refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open = max(0, self.open - 1)


class SlotStream(StreamingResponse):
    """An event stream holding one of the pod's slots until the response is over, however it ends
    (finished, client gone, cancelled), and closing its generator then."""

    def __init__(self, events: AsyncIterator[str], slots: StreamSlots) -> None:
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self._events = events
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.release()
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()


def event(kind: str, data: dict[str, Any], event_id: Position | None = None) -> str:
    """One server-sent event (data as one JSON line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, default=_plain, separators=(',', ':'))}\n\n"


def _plain(value: object) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def ended(record: dict[str, Any]) -> bool:
    return record.get("ended_at") is not None or record.get("status") in FINAL_CALL_STATUSES


def all_sent(record: dict[str, Any], position: Position) -> bool:
    """The call has ended and a client at `position` has had every entry: nothing more will come."""
    counts = record.get("counts") or {}
    return (
        ended(record)
        and position.transcript >= int(counts.get("transcript", 0))
        and position.tool_audit >= int(counts.get("tool_audit", 0))
    )


def _timestamp(data: dict[str, Any]) -> float:
    at = data.get("at")
    if isinstance(at, datetime):
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    return float("inf")


def new_entries(
    record: dict[str, Any], position: Position
) -> tuple[list[tuple[str, dict[str, Any], Position]], Position]:
    """The events for the entries read past `position`, and the position after them. The two lists
    are merged by time, each kept in its own order (so every event id is a true position)."""
    lines: list[tuple[int, str, dict[str, Any]]] = []
    for offset, line in enumerate(record.get("transcript") or []):
        text, role = str(line.get("text", "")), str(line.get("role", ""))
        kind = "barge_in" if role == "system" and text.startswith(BARGE_IN_PREFIX) else "transcript"
        data = {"index": position.transcript + offset, "role": role, "text": text, "at": line.get("at")}
        lines.append((0, kind, data))
    audits: list[tuple[int, str, dict[str, Any]]] = []
    for offset, entry in enumerate(record.get("tool_audit") or []):
        data = {k: v for k, v in entry.items() if k not in ("call_sid", "agent_id")}
        audits.append((1, "tool", {"index": position.tool_audit + offset, **data}))
    events: list[tuple[str, dict[str, Any], Position]] = []
    transcript, tool_audit = position.transcript, position.tool_audit
    for which, kind, data in heapq.merge(lines, audits, key=lambda item: _timestamp(item[2])):
        if which == 0:
            transcript += 1
        else:
            tool_audit += 1
        events.append((kind, data, Position(transcript, tool_audit)))
    return events, Position(transcript, tool_audit)


async def call_events(
    progress: Progress,
    start: Position,
    *,
    max_seconds: float,
    poll_seconds: float = POLL_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    stop: Callable[[], bool] = lambda: False,
) -> AsyncIterator[str]:
    """The stream's text: new entries as the record gains them, `end` once it has ended, a
    heartbeat comment when idle; it stops after `max_seconds`, or once `stop()` holds (the pod is
    draining: an open stream would hold its shutdown), and the client may reconnect."""
    position = start
    deadline = clock() + max_seconds
    quiet_since = clock()
    yield f"retry: {RETRY_MS}\n: following the call\n\n"
    while clock() < deadline:
        if stop():
            yield ": this pod is going away; reconnect with Last-Event-ID to go on\n\n"
            return
        try:
            record = await progress(position.transcript, position.tool_audit)
        except DatabaseError:
            record = {}  # a blip: say so, and try again on the next poll
            yield ": database unavailable; retrying\n\n"
        if record is None:  # deleted under us (retention): nothing more will come
            yield event("end", {"outcome": None, "ended_at": None, "status": "gone"}, position)
            return
        if record:
            entries, position = new_entries(record, position)
            for kind, data, after in entries:
                yield event(kind, data, after)
            if entries:
                quiet_since = clock()
            counts = record.get("counts") or {}
            behind = (
                int(counts.get("transcript", 0)) > position.transcript
                or int(counts.get("tool_audit", 0)) > position.tool_audit
            )
            if behind and entries:
                continue  # more than one read's worth was waiting: read on at once
            if ended(record):
                outcome = {k: record.get(k) for k in ("outcome", "ended_at", "status", "duration_s", "operator")}
                yield event("end", outcome, position)
                return
        if clock() - quiet_since >= heartbeat_seconds:
            quiet_since = clock()
            yield ": heartbeat\n\n"
        await asyncio.sleep(poll_seconds)
    yield ": stream time limit reached; reconnect with Last-Event-ID to go on\n\n"
