"""Draining: the pod stops taking calls and waits for the ones it carries to end.

Kubernetes runs a preStop hook before it sends SIGTERM, and uvicorn closes every WebSocket (every
call) the moment SIGTERM arrives. So the hook asks `POST /drain`, which marks the pod draining at
once (readiness 503, new calls refused) and answers only when the calls have ended or the drain
timeout passes; only then does the pod get SIGTERM. A pod never stops draining: it is going away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from telephony.pod_health.active_calls import ActiveCalls

log = logging.getLogger("switchboard.drain")

POLL_SECONDS = 0.1
"""How often a drain checks whether the last call has ended."""


class Drain:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started_at: float | None = None

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def begin(self) -> None:
        """Refuse new calls from now on (idempotent: a second drain keeps the first start time)."""
        if self.started_at is None:
            self.started_at = self._clock()
            log.warning("draining: new calls are refused")

    async def wait(self, calls: ActiveCalls, timeout_s: float) -> bool:
        """Wait until no call is active or reserved (a reserved call's stream is about to arrive);
        False if `timeout_s` passed first."""
        deadline = self._clock() + timeout_s
        while calls.count > 0:
            if self._clock() >= deadline:
                return False
            await asyncio.sleep(min(POLL_SECONDS, max(deadline - self._clock(), 0)))
        return True
