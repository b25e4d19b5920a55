"""A dependency `/readyz` watches without flipping on one failed check.

Readiness that follows every ping turns every pod unready at once on a database blip or a primary
election, and the load balancer then has nowhere to send calls. `TolerantCheck` runs the check,
remembers since when it has been failing, and raises only once it has been down `unready_after_s`
(None: never, the pod's default for the database, whose reads have a stale fallback on the call
path). Its state is in `/readyz`'s body either way, so an outage is seen without taking pods out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("switchboard.health")


class StillDown(Exception):
    """The dependency has been unreachable longer than its tolerance."""


class TolerantCheck:
    """A readiness check (awaitable, raises when the pod should be unready) over a raw probe."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        timeout_s: float,
        unready_after_s: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self.timeout_s = timeout_s
        self.unready_after_s = unready_after_s
        self._clock = clock
        self.down_since: float | None = None
        self.last_error = ""

    async def __call__(self) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._probe()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            if self.down_since is None:
                self.down_since = self._clock()
                log.warning("readiness dependency unreachable", extra={"error": self.last_error})
        else:
            if self.down_since is not None:
                log.warning("readiness dependency reachable again", extra={"down_s": round(self.down_for_s, 3)})
            self.down_since = None
            self.last_error = ""
        if self.down_since is not None and self.unready_after_s is not None and self.down_for_s >= self.unready_after_s:
            raise StillDown(f"unreachable for {self.down_for_s:.1f} s: {self.last_error}")

    @property
    def down_for_s(self) -> float:
        return 0.0 if self.down_since is None else self._clock() - self.down_since

    def state(self) -> dict[str, object]:
        """What `/readyz` reports about it."""
        if self.down_since is None:
            return {"up": True}
        return {"up": False, "down_s": round(self.down_for_s, 1), "error": self.last_error}
