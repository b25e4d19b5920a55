"""A bounded thread pool for model inference, so the event loop never blocks on a model.

Threads are few (the models already use several cores each) and the queue in front of them is
bounded: when `max_pending` jobs are already waiting or running, new work is refused with
`InferenceOverloaded` at once instead of piling up in memory and latency.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


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

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on a pool thread. Cancelling the await drops a job still queued; a job
        already running finishes on its thread (threads cannot be interrupted), so keep jobs short
        or have them check a flag."""
        if self._pending >= self.max_pending:
            raise InferenceOverloaded(f"{self.name}: {self._pending} jobs pending (max {self.max_pending})")
        job = self._executor.submit(fn, *args)
        with self._lock:
            self._pending += 1
        job.add_done_callback(self._done)  # runs when the job ends, or is dropped before it started
        return await asyncio.wrap_future(job)

    def _done(self, _: Future[T]) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
