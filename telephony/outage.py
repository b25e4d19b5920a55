"""The database as the call path sees it: short reads, a breaker, and stale answers while it is down.

A call must not wait on MongoDB, nor fail because of it. Every read on the call path (number routing,
stored agents) goes through `DatabaseOutage.read`: it is cut off after `timeout_s` (a dead server would
otherwise hold the webhook for the driver's whole server-selection timeout). Once a read has failed, no
call waits on the database again until it is back: reads raise at once, and one trial read at most every
`retry_after_s` runs in the background (not awaited by any call) to find out when it is. A failed or
skipped read raises `DatabaseUnavailable`; the caller then answers from its last good copy and says so
with `served_stale` (a metric per use, a warning once per outage, not per call).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from db import DatabaseError

log = logging.getLogger("switchboard.outage")

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database could not answer a call-path read now (failed, timed out, or skipped while down)."""


class DatabaseOutage:
    """Shared by the pod's number routing and stored agents: one view of whether the database is up."""

    def __init__(
        self,
        timeout_s: float = 1.0,
        retry_after_s: float = 2.0,
        on_stale: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`on_stale(what)`: told each time a stale entry answers (the pod counts it as a metric)."""
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._on_stale = on_stale
        self._clock = clock
        self.down_since: float | None = None
        """When the current outage began (None: the last read succeeded)."""
        self._last_failure = 0.0
        self._warned: set[str] = set()
        """What has been served stale in this outage (warned once each)."""
        self._trial: asyncio.Task[None] | None = None
        """The background read that finds out whether the database is back (at most one at a time)."""

    @property
    def down(self) -> bool:
        return self.down_since is not None

    async def read(self, fetch: Callable[[], Awaitable[T]]) -> T:
        """`await fetch()` within the timeout, or `DatabaseUnavailable`: at once while the database
        is down (a trial read is started in the background when `retry_after_s` has passed)."""
        if self.down_since is not None:
            if self._trial is None and self._clock() - self._last_failure >= self.retry_after_s:
                self._trial = asyncio.create_task(self._trial_read(fetch), name="database-trial-read")
            raise DatabaseUnavailable("the database is down (retried in the background)")
        return await self._read(fetch)

    async def close(self) -> None:
        """Stop a trial read in flight (the pod is closing)."""
        if self._trial is not None:
            self._trial.cancel()
            await asyncio.gather(self._trial, return_exceptions=True)

    async def _trial_read(self, fetch: Callable[[], Awaitable[object]]) -> None:
        try:
            await self._read(fetch)
        except Exception:  # still down (or a refused key): a later call starts another trial
            pass
        finally:
            self._trial = None

    async def _read(self, fetch: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await fetch()
        except (DatabaseError, TimeoutError) as exc:
            self._failed(exc)
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from exc
        self._recovered()
        return result

    def served_stale(self, what: str) -> None:
        """A cached `what` (`number`, `agent`) answered because the database could not."""
        if self._on_stale is not None:
            self._on_stale(what)
        if what not in self._warned:
            self._warned.add(what)
            log.warning("database unreachable: serving the last good copy", extra={"what": what})

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._last_failure = now
        if self.down_since is None:
            self.down_since = now
            log.error("database unreachable on the call path", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})

    def _recovered(self) -> None:
        if self.down_since is not None:
            log.warning("database reachable again", extra={"down_s": round(self._clock() - self.down_since, 3)})
            self.down_since = None
            self._warned.clear()
