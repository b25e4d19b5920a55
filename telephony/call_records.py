"""The pod's call-record writer: records written as calls go, so a killed pod loses at most the last flush.

One background task per pod. A call's start, transcript lines, tool audit and per-turn latency are
queued here without waiting (the greeting never waits on the database) and written every
`flush_seconds`, or sooner when a batch fills or a call ends: the start first, then each list in
batches of at most `MAX_BATCH_ENTRIES` (one `$push`/`$each` update per batch, idempotent: see
`CallRecords.append_batch`), the end last, once everything before it is stored.

When the database fails, nothing is lost while the queue has room: writes stay queued (bounded in
entries and bytes) and are retried with backoff. What cannot be queued (the queue is full) or
written (refused, or still failing after `GIVE_UP_SECONDS`, or left at shutdown) is counted
(`on_dropped`, `on_failed`: the pod's metrics), included in the record's `dropped` counts when its end
is written, and logged by call and count, never with its content. `close()` flushes what is queued
within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar, get_args

from db import CallRecords, DatabaseError
from db.calls import ListName

log = logging.getLogger("switchboard.call_records")

T = TypeVar("T")

MAX_BATCH_ENTRIES = 20
"""Entries of one list written in one update; a fuller queue wakes the writer before its interval."""
WRITE_TIMEOUT_SECONDS = 5.0
"""One write that takes longer counts as failed (and is retried): a dead database fails fast."""
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 5.0
"""Retries after a failed write wait from the first to the max backoff, doubling."""
GIVE_UP_SECONDS = 600.0
"""A call whose writes have failed this long without a success is given up (counted, logged)."""
LOG_DROPS_EVERY = 1000
"""A full queue logs its first dropped entry, then one line per this many."""
ENTRY_OVERHEAD_BYTES = 64
"""Bytes counted per queued entry on top of its strings (the queue's byte bound is an estimate)."""

LISTS: tuple[ListName, ...] = get_args(ListName)


class _Refused(enum.Enum):
    REFUSED = "refused"


REFUSED = _Refused.REFUSED
"""What a write refused for good returns (its own result may be None)."""
TRANSIENT = (DatabaseError, TimeoutError, OSError)
"""Failures worth retrying: the database is unreachable, slow or refusing for now."""


def entry_bytes(values: Mapping[str, Any]) -> int:
    """An estimate of an entry's size: its keys and strings, a word for anything else."""
    return ENTRY_OVERHEAD_BYTES + sum(len(k) + (len(v) if isinstance(v, str) else 8) for k, v in values.items())


@dataclass
class _List:
    items: deque[tuple[dict[str, Any], int]] = field(default_factory=deque)
    """Entries queued, with their estimated size."""
    stored: int = 0
    """Entries this writer has stored: the position of the next batch."""
    dropped: int = 0
    """Entries not stored: past the bound, queue full, refused or given up."""


@dataclass
class _Call:
    call_sid: str
    start: dict[str, Any] | None = None
    """`CallRecords.start` arguments, until written."""
    end: dict[str, Any] | None = None
    """`CallRecords.finish` arguments, until written."""
    ended: bool = False
    """No more entries are expected (the end is queued, or the call was never started here)."""
    started: bool = False
    """Its start was queued here (else its entries go to a record made elsewhere)."""
    lost: bool = False
    """Its start could not be queued: nothing of it is queued (each entry is counted as dropped)."""
    lists: dict[ListName, _List] = field(default_factory=lambda: {name: _List() for name in LISTS})
    failing_since: float | None = None

    def pending(self) -> bool:
        return any(lst.items for lst in self.lists.values())


class CallRecordWriter:
    """Queues record writes without waiting and writes them in the background (`run`, `close`)."""

    def __init__(
        self,
        calls: CallRecords,
        *,
        flush_seconds: float = 0.5,
        max_entries: int = 20_000,
        max_bytes: int = 16 * 1024 * 1024,
        on_failed: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_ended: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`max_entries`, `max_bytes`: the bound on what is queued; `on_failed(n)`: n entries could
        not be written; `on_dropped(n)`: n entries could not be queued; `on_ended(call_sid)`: the
        call's end is stored, everything before it too (the post-call queue; quick, awaited)."""
        self.calls = calls
        self.flush_seconds = flush_seconds
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.on_failed = on_failed or (lambda n: None)
        self.on_dropped = on_dropped or (lambda n: None)
        self.on_ended = on_ended
        self.clock = clock
        self.entries = 0
        """Entries queued now (starts and ends count one each)."""
        self.bytes = 0
        self._calls: dict[str, _Call] = {}
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._failing_since: float | None = None
        self._dropped = 0

    # -- queueing: never waits, never raises ------------------------------------------------

    def start(self, call_sid: str, **fields: Any) -> None:
        """Queue the record's creation (`CallRecords.start`'s arguments)."""
        call = self._calls.setdefault(call_sid, _Call(call_sid))
        size = entry_bytes(fields)
        if not self._room(size):
            call.lost = True
            self._drop(call, 1, "start")
            return
        call.start, call.lost, call.ended, call.started = fields, False, False, True
        self._take(1, size)
        self._wake.set()  # written at once (beside the greeting), so the call's audit has a record to join

    def append(self, call_sid: str, name: ListName, item: Mapping[str, Any]) -> None:
        """Queue one entry of list `name` (a call not started here: written to its existing record)."""
        call = self._calls.get(call_sid)
        if call is None:
            call = self._calls[call_sid] = _Call(call_sid, ended=True)
        lst = call.lists[name]
        size = entry_bytes(item)
        if lst.stored + len(lst.items) >= self.calls.bound(name):
            lst.dropped += 1  # past the record's bound: counted in the record, not a failure
            return
        if call.lost or not self._room(size):
            lst.dropped += 1
            self._drop(call, 1, name)
            return
        lst.items.append((dict(item), size))
        self._take(1, size)
        if len(lst.items) >= MAX_BATCH_ENTRIES:
            self._wake.set()

    def end(self, call_sid: str, *, dropped: Mapping[ListName, int] | None = None, **fields: Any) -> None:
        """Queue the record's end (`CallRecords.finish`'s arguments), written once all before it is;
        `dropped`: entries the caller itself did not hand over (kept off its own bounded lists).
        Always queued for a call whose start was (one end per kept start: bounded with them)."""
        call = self._calls.get(call_sid)
        if call is None or call.lost:  # never started here, ended already, or its start was lost
            self._calls.pop(call_sid, None)
            return
        if call.end is not None or (call.ended and call.started):
            return  # its end is queued or written already
        for name, n in (dropped or {}).items():
            call.lists[name].dropped += n
        call.end, call.ended = fields, True
        self._take(1, entry_bytes(fields))
        self._wake.set()

    def _room(self, size: int) -> bool:
        return self.entries < self.max_entries and self.bytes + size <= self.max_bytes

    def _take(self, entries: int, size: int) -> None:
        self.entries += entries
        self.bytes += size

    def _drop(self, call: _Call, entries: int, what: str) -> None:
        self.on_dropped(entries)
        self._dropped += entries
        if self._dropped == entries or self._dropped % LOG_DROPS_EVERY < entries:  # not one line per entry
            log.warning(
                "call record queue full; entries dropped",
                extra={"call_sid": call.call_sid, "list": what, "queued": self.entries, "dropped": self._dropped},
            )

    # -- writing ------------------------------------------------------------------------------

    def start_task(self) -> None:
        """Start writing in the background (on the running loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="call-record-writer")

    async def run(self) -> None:
        """Flush every `flush_seconds` (sooner when woken), waiting out the backoff after a failure."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_seconds):
                    await self._wake.wait()
            self._wake.clear()
            wait = self._retry_at - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.flush()
            except Exception:  # never let the writer die: the next round retries
                log.exception("call record writer failed")

    async def flush(self) -> bool:
        """Write what is queued, call by call; stop at the first failure (the database is likely
        down: the next round retries, starting with the others). True when nothing is left queued."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
        for call in list(self._calls.values()):
            try:
                await self._write(call)
            except TRANSIENT as exc:
                self._failed(call, exc)
                return False
            call.failing_since = None
            self._recovered()
            if call.ended and call.end is None and call.start is None and not call.pending():
                self._calls.pop(call.call_sid, None)
        return self.entries == 0

    async def _write(self, call: _Call) -> None:
        sid = call.call_sid
        if call.start is not None:
            fields = call.start
            if await self._refused(call, 1, "start", self.calls.start(sid, **fields)) is REFUSED:
                self._gave_up_start(call)
                return
            await self._timed(self.calls.note_agent_version(sid, fields.get("agent_version")))
            call.start = None
            self._take(-1, -entry_bytes(fields))
        for name, lst in call.lists.items():
            while lst.items:
                queued = list(islice(lst.items, MAX_BATCH_ENTRIES))
                batch = [item for item, _ in queued]
                stored = await self._refused(
                    call, len(batch), name, self.calls.append_batch(sid, name, batch, first=lst.stored)
                )
                for _ in queued:
                    lst.items.popleft()
                self._take(-len(queued), -sum(size for _, size in queued))
                if stored is True:
                    lst.stored += len(batch)
                else:
                    lst.dropped += len(batch)
                    if stored is not REFUSED:  # no record to append to, or not the count this writer stored
                        self._failed_for_good(call, len(batch), name, "the record is missing or was changed")
        if call.end is not None and not call.pending():
            fields = call.end
            dropped = {name: lst.dropped for name, lst in call.lists.items()}
            ended = await self._refused(call, 1, "end", self.calls.finish(sid, dropped=dropped, **fields))
            call.end = None
            self._take(-1, -entry_bytes(fields))
            if ended is not REFUSED and self.on_ended is not None:
                try:
                    await self.on_ended(sid)
                except Exception:  # the hook's trouble never holds back the records
                    log.exception("call end hook failed", extra={"call_sid": sid})

    async def _refused(self, call: _Call, entries: int, what: str, write: Awaitable[T]) -> T | _Refused:
        """The write's result; `REFUSED` if it was refused for good (a ValueError: counted, logged);
        a transient failure raises."""
        try:
            return await self._timed(write)
        except ValueError as exc:
            self._failed_for_good(call, entries, what, str(exc)[:200])
            return REFUSED

    def _gave_up_start(self, call: _Call) -> None:
        assert call.start is not None
        self._take(-1, -entry_bytes(call.start))
        call.start, call.lost = None, True
        for name, lst in call.lists.items():
            if lst.items:
                self._failed_for_good(call, len(lst.items), name, "its start was refused")
                self._take(-len(lst.items), -sum(size for _, size in lst.items))
                lst.items.clear()
        if call.end is not None:
            self._take(-1, -entry_bytes(call.end))
            call.end = None
        self._calls.pop(call.call_sid, None)

    async def _timed(self, write: Awaitable[T]) -> T:
        async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
            return await write

    def _failed_for_good(self, call: _Call, entries: int, what: str, why: str) -> None:
        self.on_failed(entries)
        log.error(
            "call record write given up",
            extra={"call_sid": call.call_sid, "list": what, "entries": entries, "why": why},
        )

    def _failed(self, call: _Call, exc: BaseException) -> None:
        now = self.clock()
        self._backoff = min(BACKOFF_MAX_SECONDS, self._backoff * 2 or BACKOFF_FIRST_SECONDS)
        self._retry_at = now + self._backoff
        if self._failing_since is None:
            self._failing_since = now
            log.warning(
                "call record writes failing; queued for retry",
                extra={"error": type(exc).__name__, "queued": self.entries, "call_sid": call.call_sid},
            )
        if call.failing_since is None:
            call.failing_since = now
        elif now - call.failing_since >= GIVE_UP_SECONDS:
            self._give_up(call)
        self._calls.pop(call.call_sid, None)  # last in line: one failing call does not hold back the others
        if call.start is not None or call.end is not None or call.pending() or not call.ended:
            self._calls[call.call_sid] = call

    def _give_up(self, call: _Call) -> None:
        for name, lst in call.lists.items():
            if lst.items:
                self._failed_for_good(call, len(lst.items), name, f"failing for {GIVE_UP_SECONDS:.0f} s")
                self._take(-len(lst.items), -sum(size for _, size in lst.items))
                lst.dropped += len(lst.items)
                lst.items.clear()
        for what in ("start", "end"):
            fields = getattr(call, what)
            if fields is not None:
                self._failed_for_good(call, 1, what, f"failing for {GIVE_UP_SECONDS:.0f} s")
                self._take(-1, -entry_bytes(fields))
                setattr(call, what, None)

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.info(
                "call record writes recovered",
                extra={"after_s": round(self.clock() - self._failing_since, 1), "queued": self.entries},
            )
        self._failing_since = None
        self._backoff = self._retry_at = 0.0

    async def close(self, deadline_s: float) -> None:
        """Stop the background task and write what is queued, for at most `deadline_s`; what is
        left then is counted as failed and logged (counts only)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline_s):
                while True:  # retry with the backoff until everything is written or the deadline passes
                    if await self.flush():
                        break
                    await asyncio.sleep(max(0.05, self._retry_at - self.clock()))
        if self.entries:
            self.on_failed(self.entries)
            log.error(
                "call records not written at shutdown",
                extra={"entries": self.entries, "calls": len(self._calls), "deadline_s": deadline_s},
            )
