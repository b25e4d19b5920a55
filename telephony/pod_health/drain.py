"""Draining: the pod stops taking calls and waits for the ones it carries to end.

Kubernetes runs a preStop hook before it sends SIGTERM, and uvicorn closes every WebSocket (every
call) the moment SIGTERM arrives. So the hook asks `POST /drain`, which marks the pod draining at
once (readiness 503, new calls refused) and answers only when the calls have ended or the drain
timeout passes; only then does the pod get SIGTERM.

A drain started by hand (maintenance, a bad node) can be revoked: `POST /undrain` admits calls
again, and a drain request still waiting answers at once (revoked). Revoking the drain of a pod
Kubernetes is terminating makes its preStop hook return, so the pod stops: undrain is for drains
you started yourself.
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
        self._generation = 0
        """Counts drains begun, so a wait knows its drain was revoked (even if another began since)."""

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def begin(self) -> None:
        """Refuse new calls from now on (idempotent: a second drain keeps the first start time)."""
        if self.started_at is None:
            self.started_at = self._clock()
            self._generation += 1
            log.warning("draining: new calls are refused")

    def end(self) -> bool:
        """Admit calls again; False if the pod was not draining."""
        if self.started_at is None:
            return False
        self.started_at = None
        log.warning("drain revoked: new calls are admitted again")
        return True

    @property
    def generation(self) -> int:
        return self._generation

    async def wait(self, calls: ActiveCalls, timeout_s: float) -> bool:
        """Wait until no call is active or reserved (a reserved call's stream is about to arrive);
        False if `timeout_s` passed first or the drain was revoked (`revoked_since`)."""
        deadline = self._clock() + timeout_s
        generation = self._generation
        while calls.count > 0:
            if self._clock() >= deadline or self.revoked_since(generation):
                return False
            await asyncio.sleep(min(POLL_SECONDS, max(deadline - self._clock(), 0)))
        return True

    def revoked_since(self, generation: int) -> bool:
        """Whether the drain of `generation` has been revoked (ended, or replaced by a later one)."""
        return self.started_at is None or self._generation != generation
