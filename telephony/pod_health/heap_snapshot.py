"""An on-demand look at the heap, bounded, and refused when taking it could push the pod over its limit.

A snapshot is never the whole heap: it is tracemalloc's top allocation sites (when tracing is on)
and the garbage collector's census of live objects by type, each list cut to `top_n` entries of
bounded length, so the answer stays under `MAX_SNAPSHOT_BYTES`. Taking one costs memory of its own
(tracemalloc copies its traces, the census lists every tracked object), so it is refused while the
guard is past `ok` (reason `memory`), while tracemalloc's own trace store would not fit twice in the
headroom left (reason `headroom`), while another is being taken or the last was under
`MIN_INTERVAL_S` ago (reason `busy`). It runs in a worker thread, so the event loop keeps serving
calls between the interpreter's thread switches.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel

from telephony.pod_health.guard import GuardState, MemorySampler
from telephony.pod_health.memory_report import MAX_TOP_SITES, top_sites

log = logging.getLogger("switchboard.memory")

MIN_INTERVAL_S = 10.0
"""Snapshots are at least this far apart (each walks the whole heap)."""
MAX_TYPE_CHARS = 100
"""A type name in the census is cut to this many characters."""
MAX_SNAPSHOT_BYTES = 64 * 1024
"""Bound on a snapshot's JSON: `MAX_TOP_SITES` sites and types at their longest fit under it."""
HEADROOM_FACTOR = 2
"""tracemalloc's trace store times this must fit in the memory left below the limit."""


class Site(BaseModel):
    where: str
    """`file:line` of the allocations."""
    size_bytes: int
    count: int


class TypeCount(BaseModel):
    type: str
    count: int


class HeapSnapshot(BaseModel):
    taken_at: datetime
    guard_state: str
    used_bytes: int
    limit_bytes: int
    tracemalloc: bool
    """False: tracing is off (`SWITCHBOARD_TRACEMALLOC_FRAMES`), so `sites` is empty."""
    traced_bytes: int | None
    sites: list[Site]
    """The largest allocation sites, largest first (at most `top_n`)."""
    gc_tracked_objects: int
    types: list[TypeCount]
    """The most numerous live object types the collector tracks, most first (at most `top_n`)."""
    took_ms: float


class SnapshotRefused(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


class HeapSnapshots:
    """Takes snapshots for one pod, one at a time, while its memory allows."""

    def __init__(self, sampler: MemorySampler, top_n: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self.sampler = sampler
        self.top_n = max(1, min(top_n, MAX_TOP_SITES))
        self._clock = clock
        self._taking = False
        self._last: float | None = None

    async def take(self) -> HeapSnapshot:
        """A snapshot now, or `SnapshotRefused` saying why not (status 503 memory/headroom, 409 busy)."""
        self._check_memory()
        now = self._clock()
        if self._taking or (self._last is not None and now - self._last < MIN_INTERVAL_S):
            raise SnapshotRefused(409, "busy", f"one heap snapshot at a time, at most one per {MIN_INTERVAL_S:g} s")
        self._taking, self._last = True, now
        try:
            snapshot = await asyncio.to_thread(self._take)
        finally:
            self._taking = False
        top = ", ".join(f"{s.where} {s.size_bytes} B" for s in snapshot.sites[:3]) or "tracemalloc off"
        log.warning(
            "heap snapshot taken",
            extra={"event": "heap_snapshot", "top_sites": top, "took_ms": snapshot.took_ms},
        )
        return snapshot

    def _check_memory(self) -> None:
        state = self.sampler.sample()  # a fresh reading: the snapshot itself needs room
        reading = self.sampler.reading
        if state is not GuardState.OK:
            raise SnapshotRefused(
                503, "memory", f"memory is at the guard's {state.value} threshold; a heap snapshot could push it over"
            )
        if tracemalloc.is_tracing():
            needed = tracemalloc.get_tracemalloc_memory() * HEADROOM_FACTOR
            headroom = reading.limit_bytes - reading.used_bytes
            if needed > headroom:
                raise SnapshotRefused(
                    503, "headroom", f"copying tracemalloc's traces needs ~{needed} bytes; {headroom} are left"
                )

    def _take(self) -> HeapSnapshot:
        started = time.perf_counter()
        tracing = tracemalloc.is_tracing()
        sites = [Site(where=s.where, size_bytes=s.size_bytes, count=s.count) for s in top_sites(self.top_n)]
        objects = gc.get_objects()
        census = Counter(type(item).__qualname__ for item in objects)
        tracked = len(objects)
        del objects
        reading = self.sampler.reading
        return HeapSnapshot(
            taken_at=datetime.now(UTC),
            guard_state=self.sampler.state.value,
            used_bytes=reading.used_bytes,
            limit_bytes=reading.limit_bytes,
            tracemalloc=tracing,
            traced_bytes=tracemalloc.get_traced_memory()[0] if tracing else None,
            sites=sites,
            gc_tracked_objects=tracked,
            types=[TypeCount(type=name[:MAX_TYPE_CHARS], count=n) for name, n in census.most_common(self.top_n)],
            took_ms=round((time.perf_counter() - started) * 1000, 3),
        )


SNAPSHOT_SIGNAL = signal.SIGUSR2
"""`kill -USR2 <pid>` logs a snapshot (one bounded JSON line) where the API is out of reach."""


def install_signal(snapshots: HeapSnapshots) -> Callable[[], None]:
    """Log a snapshot on `SNAPSHOT_SIGNAL` (refusals are logged too); returns the uninstaller. Only
    the main thread's loop can take signals: elsewhere (a test's background server) nothing is installed."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def log_one() -> None:
        try:
            snapshot = await snapshots.take()
        except SnapshotRefused as refused:
            log.warning("heap snapshot refused", extra={"reason": refused.reason, "detail": refused.detail})
            return
        log.warning("heap snapshot", extra={"event": "heap_snapshot", "snapshot": snapshot.model_dump_json()})

    def on_signal() -> None:
        task = loop.create_task(log_one(), name="heap-snapshot")
        pending.add(task)
        task.add_done_callback(pending.discard)

    try:
        loop.add_signal_handler(SNAPSHOT_SIGNAL, on_signal)
    except (NotImplementedError, RuntimeError, ValueError):
        return lambda: None
    return lambda: loop.remove_signal_handler(SNAPSHOT_SIGNAL)
