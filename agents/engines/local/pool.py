"""A bounded thread pool for model inference, so the event loop never blocks on a model.

Threads are few (the models already use several cores each) and the queue in front of them is
bounded: when `max_pending` jobs are already waiting or running, new work is refused with
`InferenceOverloaded` at once instead of piling up in memory and latency.

Each pool also keeps read-only figures for the pod's admission (`queued`, `recent_load`): a pool
whose workers are busy close to all of the time cannot serve one more call in real time, and
`live()` lists the pools of the process so admission finds them without being handed each one.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

MAX_RECENT_JOBS = 512
"""Bound on finished jobs remembered for `recent_load` (older ones fall out of any window anyway)."""
_LIVE: weakref.WeakSet[InferencePool] = weakref.WeakSet()


class InferenceOverloaded(Exception):
    """More inference work is pending than the pool's bound allows."""


class InferencePool:
    def __init__(self, name: str, max_workers: int = 1, max_pending: int = 16) -> None:
        if max_workers < 1 or max_pending < max_workers:
            raise ValueError("need max_workers >= 1 and max_pending >= max_workers")
        self.name = name
        self.max_workers = max_workers
        self.max_pending = max_pending
        """Bound on jobs running or queued at once."""
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"infer-{name}")
        self._pending = 0
        """Jobs queued or still running on a thread (a cancelled await does not end a running job)."""
        self._lock = threading.Lock()
        self._running: dict[int, float] = {}
        """Start times of the jobs running now, by job number."""
        self._finished: deque[tuple[float, float]] = deque(maxlen=MAX_RECENT_JOBS)
        """(start, end) of recent jobs, monotonic seconds."""
        self._jobs = 0
        _LIVE.add(self)

    @staticmethod
    def live() -> list[InferencePool]:
        """The pools of this process not yet garbage collected."""
        return list(_LIVE)

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def queued(self) -> int:
        """Jobs accepted but not started yet (waiting for a worker)."""
        with self._lock:
            return max(0, self._pending - len(self._running))

    def recent_load(self, window_s: float, now: float | None = None) -> float:
        """Worker-seconds spent on jobs over the last `window_s`, per worker per second: the pool's
        real-time factor. 1.0: every worker was busy the whole window; new work waits."""
        now = time.monotonic() if now is None else now
        since = now - window_s
        with self._lock:
            spans = [*self._finished, *((start, now) for start in self._running.values())]
        busy = sum(max(0.0, min(end, now) - max(start, since)) for start, end in spans)
        return busy / (window_s * self.max_workers)

    def _timed(self, number: int, fn: Callable[..., T], *args: object) -> T:
        start = time.monotonic()
        with self._lock:
            self._running[number] = start
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._running.pop(number, None)
                self._finished.append((start, time.monotonic()))

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on a pool thread. Cancelling the await drops a job still queued; a job
        already running finishes on its thread (threads cannot be interrupted), so keep jobs short
        or have them check a flag."""
        if self._pending >= self.max_pending:
            raise InferenceOverloaded(f"{self.name}: {self._pending} jobs pending (max {self.max_pending})")
        with self._lock:
            self._jobs += 1
            number = self._jobs
        job = self._executor.submit(self._timed, number, fn, *args)
        with self._lock:
            self._pending += 1
        job.add_done_callback(self._done)  # runs when the job ends, or is dropped before it started
        return await asyncio.wrap_future(job)

    def _done(self, _: Future[T]) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
