"""After a call: its summary and declared fields, written by a bounded background queue.

Nothing here runs while a call does. When an agent with a post-call declaration ends a call, its
store wrapper (`PostCallStore`) tells the queue to expect that call; the pod's record writer calls
`ended` once the record's end is stored (so the whole transcript is), and only then is the job
queued, with `post_call.status = "pending"` on the record. A few workers take the jobs: read the
stored (redacted) transcript, ask the chat model once, check the answer against the declaration
and store `done` with the values, or `failed` with the reason. A full queue marks the call
`failed` ("queue full") at once. Only the record's `post_call` is ever written here, so the rest
of the record is never touched, whatever the model does. Transcripts are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.conversation.record import CallRecord, CallStore
from agents.engines.protocols import ChatModel
from agents.post_call import PostCallConfig, PostCallFailed, extract
from db import CallRecords

log = logging.getLogger("switchboard.post_call")

MAX_EXPECTED = 4096
"""Bound on ended calls whose stored end the queue waits for (far above a pod's call limit);
past it the oldest is forgotten (its record gets no `post_call`)."""
EXPECT_SECONDS = 900.0
"""An expected call whose end is not stored within this long (refused, lost) is forgotten."""
STATUS_WRITE_TIMEOUT_SECONDS = 2.0
"""Bound on one `post_call` status write (the record writer waits on the `pending` one)."""
QUEUE_FULL = "queue full"
SHUT_DOWN = "the pod shut down before the job finished"


@dataclass(frozen=True, slots=True)
class PostCallJob:
    call_sid: str
    config: PostCallConfig
    chat: ChatModel


class PostCallQueue:
    """Bounded: at most `max_jobs` calls wait, `workers` run at once, each within `timeout_s`."""

    def __init__(
        self,
        calls: CallRecords,
        *,
        max_jobs: int,
        workers: int = 1,
        timeout_s: float = 60.0,
        on_outcome: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`on_outcome(kind)`: a job ended `done`, `failed` or `queue_full` (the pod's metrics)."""
        self.calls = calls
        self.max_jobs = max_jobs
        self.workers = workers
        self.timeout_s = timeout_s
        self.on_outcome = on_outcome or (lambda kind: None)
        self.clock = clock
        self._queue: asyncio.Queue[PostCallJob] = asyncio.Queue(maxsize=max_jobs)
        self._expected: OrderedDict[str, tuple[float, PostCallJob]] = OrderedDict()
        self._running: dict[str, PostCallJob] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return self._queue.qsize()

    # -- intake ----------------------------------------------------------------------------------

    def expect(self, call_sid: str, config: PostCallConfig, chat: ChatModel) -> None:
        """The call has ended (its end is being queued for the record writer): run its job once
        that end is stored. Never waits."""
        now = self.clock()
        while self._expected:
            sid, (since, _) = next(iter(self._expected.items()))
            if now - since < EXPECT_SECONDS and len(self._expected) < MAX_EXPECTED:
                break
            del self._expected[sid]
            log.warning("post-call job forgotten: the call's end was never stored", extra={"call_sid": sid})
        self._expected[call_sid] = (now, PostCallJob(call_sid, config, chat))

    async def ended(self, call_sid: str) -> None:
        """The record writer stored the call's end: queue its job (a call not expected: nothing)."""
        expected = self._expected.pop(call_sid, None)
        if expected is None:
            return
        job = expected[1]
        if self._closed or self._queue.full():
            await self._give_up(job, QUEUE_FULL if not self._closed else SHUT_DOWN, "queue_full")
            return
        if not await self._write(call_sid, "pending"):
            self.on_outcome("failed")  # no record, or the database is down: there is nothing to fill
            return
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:  # filled while `pending` was written
            await self._give_up(job, QUEUE_FULL, "queue_full")

    async def _give_up(self, job: PostCallJob, error: str, outcome: str) -> None:
        self.on_outcome(outcome)
        log.warning("post-call job not run", extra={"call_sid": job.call_sid, "why": error, "queued": self.queued})
        await self._write(job.call_sid, "failed", error=error)

    # -- the workers -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers on the running loop."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(), name=f"post-call-{i}") for i in range(self.workers)]

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._running[job.call_sid] = job
            try:
                await self._run(job)
            except Exception:  # never let a worker die
                log.exception("post-call job failed unexpectedly", extra={"call_sid": job.call_sid})
            finally:
                self._running.pop(job.call_sid, None)

    async def _run(self, job: PostCallJob) -> None:
        started = time.monotonic()
        error: str | None = None
        result = None
        try:
            async with asyncio.timeout(self.timeout_s):
                record = await self.calls.get(job.call_sid)
                if record is None:
                    log.warning("post-call job: the record is gone", extra={"call_sid": job.call_sid})
                    return
                result = await extract(job.chat, job.config, record.get("transcript") or [])
        except TimeoutError:
            error = f"timed out after {self.timeout_s:g} s"
        except PostCallFailed as exc:
            error = exc.reason
        except Exception as exc:  # the database, most likely; its type only (no content in logs or records)
            error = f"failed: {type(exc).__name__}"
        took_ms = round((time.monotonic() - started) * 1000)
        if result is not None:
            await self._write(job.call_sid, "done", summary=result.summary, fields=result.fields, only_if="pending")
            self.on_outcome("done")
            log.info("post-call job done", extra={"call_sid": job.call_sid, "took_ms": took_ms})
            return
        await self._write(job.call_sid, "failed", error=error, only_if="pending")
        self.on_outcome("failed")
        log.warning("post-call job failed", extra={"call_sid": job.call_sid, "why": error, "took_ms": took_ms})

    async def _write(self, call_sid: str, status: str, *, only_if: str | None = None, **values: Any) -> bool:
        """Store `post_call` (its status and values) on the record; False when that failed (logged)."""
        try:
            async with asyncio.timeout(STATUS_WRITE_TIMEOUT_SECONDS):
                return await self.calls.set_post_call(call_sid, status, only_if=only_if, **values)
        except Exception as exc:
            log.warning(
                "post-call status not stored",
                extra={"call_sid": call_sid, "status": status, "error": type(exc).__name__},
            )
            return False

    async def close(self, deadline_s: float = 5.0) -> None:
        """Stop the workers; calls still waiting or running are marked failed (within `deadline_s`)."""
        self._closed = True
        left = list(self._running.values())  # before the workers' own cleanup forgets them
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._running.clear()
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline_s):
                for job in left:
                    await self._write(job.call_sid, "failed", error=SHUT_DOWN, only_if="pending")
                    self.on_outcome("failed")


class PostCallStore:
    """One agent's `CallStore`: the pod's store, plus its post-call job expected at each call's end."""

    def __init__(self, store: CallStore, queue: PostCallQueue, config: PostCallConfig, chat: ChatModel) -> None:
        self.store = store
        self.queue = queue
        self.config = config
        self.chat = chat

    async def call_started(self, record: CallRecord) -> None:
        await self.store.call_started(record)

    async def call_ended(self, record: CallRecord) -> None:
        self.queue.expect(record.call_sid, self.config, self.chat)  # before the end is queued for writing
        await self.store.call_ended(record)

    def __getattr__(self, name: str) -> Any:
        """Everything else the pod's store does (tool audit, stream ends) is the store's own."""
        if name == "store":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.store, name)


def with_post_call(
    store: CallStore | None, queue: PostCallQueue | None, config: PostCallConfig, chat: ChatModel
) -> CallStore | None:
    """The store an agent's calls use: wrapped when the agent declares post-call work and the pod has a queue."""
    if store is None or queue is None or not config.enabled:
        return store
    return PostCallStore(store, queue, config, chat)
