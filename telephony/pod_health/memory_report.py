"""Where the pod's memory goes, logged on an interval: Python's heap, native memory, the bounded buffers.

The guard knows how much the pod uses; on-call needs to know what uses it. A breakdown puts side by
side the resident set, what Python itself holds (tracemalloc's traced bytes when it runs, otherwise
an estimate from the interpreter's allocated blocks), the rest of the resident set (onnxruntime's
arenas, llama.cpp, numpy buffers and the C heap: the native estimate), glibc's malloc totals where
the C library has them, the garbage collector's view (tracked objects, per-generation counts) and
the pod's bounded stores with their bounds. With tracemalloc on (`SWITCHBOARD_TRACEMALLOC_FRAMES`),
the top allocation sites come along.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import sys
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agents.tasks import cancel_and_wait
from telephony.pod_health.memory import MemoryReading, process_rss

log = logging.getLogger("switchboard.memory")

BYTES_PER_BLOCK_ESTIMATE = 64
"""Without tracemalloc, Python's heap is estimated as its allocated blocks times this (pymalloc's
small objects average about this size; large buffers are undercounted and land in the native share)."""
MAX_TOP_SITES = 100
"""Bound on allocation sites listed in a report or a snapshot, whatever the setting says."""
MAX_SITE_CHARS = 200
"""An allocation site (file:line) is cut to this many characters."""

BufferSizes = Callable[[], Mapping[str, tuple[int, int]]]
"""The pod's bounded stores: name -> (entries held, bound)."""


@dataclass(frozen=True, slots=True)
class AllocationSite:
    where: str
    """`file:line` of the allocation (the innermost traced frame)."""
    size_bytes: int
    count: int


@dataclass(frozen=True, slots=True)
class MemoryBreakdown:
    """One look at where memory goes (bytes unless named otherwise)."""

    used_bytes: int
    """What the guard counts against the limit (cgroup working set or process RSS)."""
    limit_bytes: int
    rss_bytes: int
    python_bytes: int
    """Python's own heap: tracemalloc's traced bytes, or the block estimate."""
    python_bytes_source: str
    """`tracemalloc` or `estimate`."""
    native_estimate_bytes: int
    """RSS less Python's heap: model runtimes (onnxruntime, llama.cpp), numpy buffers, the C heap, code."""
    python_allocated_blocks: int
    gc_tracked_objects: int
    gc_generation_counts: tuple[int, int, int]
    malloc_in_use_bytes: int | None = None
    """glibc `mallinfo2`: bytes handed out by malloc (None without glibc)."""
    malloc_free_bytes: int | None = None
    """glibc `mallinfo2`: free bytes malloc holds and has not returned to the kernel."""
    tracemalloc_peak_bytes: int | None = None
    buffers: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Bounded stores: name -> (held, bound)."""
    top: tuple[AllocationSite, ...] = ()
    """Largest allocation sites (tracemalloc on only), largest first."""

    def log_fields(self) -> dict[str, object]:
        """Flat fields for one JSON log line (nested values as compact text)."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("buffers", "top", "gc_generation_counts")}
        fields["gc_generation_counts"] = ",".join(map(str, self.gc_generation_counts))
        for name, (held, bound) in self.buffers.items():
            fields[f"buffer_{name}"] = f"{held}/{bound}"
        for rank, site in enumerate(self.top, 1):
            fields[f"top_{rank}"] = f"{site.where} {site.size_bytes} B in {site.count}"
        return fields


def memory_breakdown(
    reading: MemoryReading, *, top_n: int = 10, buffers: BufferSizes | None = None, root: Path = Path("/")
) -> MemoryBreakdown:
    """A breakdown now. `reading` is the guard's latest; `top_n` sites are listed when tracemalloc runs."""
    rss = process_rss(root)
    blocks = sys.getallocatedblocks()
    tracing = tracemalloc.is_tracing()
    if tracing:
        traced, peak = tracemalloc.get_traced_memory()
        python, source = traced, "tracemalloc"
    else:
        python, source, peak = blocks * BYTES_PER_BLOCK_ESTIMATE, "estimate", None
    in_use, free = _mallinfo()
    return MemoryBreakdown(
        used_bytes=reading.used_bytes,
        limit_bytes=reading.limit_bytes,
        rss_bytes=rss,
        python_bytes=python,
        python_bytes_source=source,
        native_estimate_bytes=max(rss - python, 0),
        python_allocated_blocks=blocks,
        gc_tracked_objects=len(gc.get_objects()),
        gc_generation_counts=gc.get_count(),
        malloc_in_use_bytes=in_use,
        malloc_free_bytes=free,
        tracemalloc_peak_bytes=peak,
        buffers=dict(buffers()) if buffers is not None else {},
        top=top_sites(top_n) if tracing else (),
    )


def top_sites(top_n: int) -> tuple[AllocationSite, ...]:
    """The `top_n` (at most `MAX_TOP_SITES`) largest allocation sites by line; empty without tracemalloc."""
    if not tracemalloc.is_tracing() or top_n <= 0:
        return ()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"))
    )
    stats = snapshot.statistics("lineno")[: min(top_n, MAX_TOP_SITES)]
    return tuple(
        AllocationSite(f"{s.traceback[0].filename}:{s.traceback[0].lineno}"[-MAX_SITE_CHARS:], s.size, s.count)
        for s in stats
    )


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def _find_mallinfo2() -> Callable[[], _MallInfo2] | None:
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).mallinfo2 if name else None  # glibc 2.33 and later
    except (OSError, AttributeError):
        return None
    if function is not None:
        function.restype = _MallInfo2
        function.argtypes = []
    return function


_mallinfo2 = _find_mallinfo2()


def _mallinfo() -> tuple[int | None, int | None]:
    """(in use, free held) by glibc's malloc, mmapped chunks counted as in use; (None, None) elsewhere."""
    if _mallinfo2 is None:
        return None, None
    info = _mallinfo2()
    return int(info.uordblks + info.hblkhd), int(info.fordblks)


class MemoryReporter:
    """Logs a `MemoryBreakdown` every `interval_s` (one JSON line, logger `switchboard.memory`)."""

    def __init__(
        self,
        reading: Callable[[], MemoryReading],
        *,
        interval_s: float,
        top_n: int = 10,
        buffers: BufferSizes | None = None,
    ) -> None:
        """`interval_s` 0 disables the reporter (`start` does nothing)."""
        if interval_s < 0:
            raise ValueError("interval_s must be 0 (off) or positive")
        self.reading = reading
        self.interval_s = interval_s
        self.top_n = top_n
        self.buffers = buffers
        self._task: asyncio.Task[None] | None = None

    async def report(self) -> MemoryBreakdown:
        """Log a breakdown now and return it. The pod's stores are read here, on the loop that owns
        them; the heap walk (gc, tracemalloc's snapshot: half a second with tracing on) runs in a
        worker thread, so calls keep their audio meanwhile."""
        held = dict(self.buffers()) if self.buffers is not None else {}
        reading = self.reading()
        breakdown = await asyncio.to_thread(memory_breakdown, reading, top_n=self.top_n, buffers=lambda: held)
        log.info("memory breakdown", extra={"event": "memory_breakdown", **breakdown.log_fields()})
        return breakdown

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="memory-reporter")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.report()
            except Exception:  # a failed report must not end reporting
                log.exception("memory breakdown failed")


def start_tracemalloc(frames: int) -> bool:
    """Start tracing with `frames` frames per allocation (0: leave it off). True if this started it."""
    if frames <= 0 or tracemalloc.is_tracing():
        return False
    tracemalloc.start(frames)
    log.warning("tracemalloc started: allocations are traced (slower, more memory)", extra={"frames": frames})
    return True
