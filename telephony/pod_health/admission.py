"""Whether to answer a new call, decided by the inbound webhook before any work is done.

`Admission` is the hook. `CallLimitAdmission` is the concurrent-call limit alone;
`GuardedAdmission` (the pod's default) also refuses while the pod drains and while memory is at or
above the soft threshold. The reason becomes the `reason` label of the refused-calls metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from telephony.pod_health.active_calls import ActiveCalls
from telephony.pod_health.drain import Drain
from telephony.pod_health.guard import GuardState, MemorySampler

DRAINING = "draining"
MEMORY = "memory"
MAX_CONCURRENT_CALLS = "max_concurrent_calls"


@dataclass(frozen=True, slots=True)
class Decision:
    admitted: bool
    reason: str = ""

    @classmethod
    def admit(cls) -> Decision:
        return cls(True)

    @classmethod
    def busy(cls, reason: str) -> Decision:
        return cls(False, reason)


class Admission(Protocol):
    def admit(self, call_sid: str) -> Decision:
        """Admit the call (and hold its place) or say why not."""
        ...


class CallLimitAdmission:
    """Refuses calls once `ActiveCalls.limit` calls are reserved or active."""

    def __init__(self, calls: ActiveCalls) -> None:
        self._calls = calls

    def admit(self, call_sid: str) -> Decision:
        if self._calls.try_reserve(call_sid):
            return Decision.admit()
        return Decision.busy(MAX_CONCURRENT_CALLS)

    def full(self) -> bool:
        return self._calls.count >= self._calls.limit


class GuardedAdmission:
    """Refuses while draining, then under memory pressure (soft or hard), then past the call
    limit: in that order, so a call refused for any reason never holds a place."""

    def __init__(self, calls: ActiveCalls, memory: MemorySampler, drain: Drain) -> None:
        self._limit = CallLimitAdmission(calls)
        self._memory = memory
        self._drain = drain

    def admit(self, call_sid: str) -> Decision:
        reason = self._pressure()
        if reason is not None:
            return Decision.busy(reason)
        return self._limit.admit(call_sid)

    def hold_reason(self) -> str | None:
        """Why the pod should not start a call of its own now (the outbound dialer asks before
        each dial), or None: the same reasons, in the same order, as for an inbound call."""
        reason = self._pressure()
        if reason is None and self._limit.full():
            reason = MAX_CONCURRENT_CALLS
        return reason

    def _pressure(self) -> str | None:
        if self._drain.draining:
            return DRAINING
        if self._memory.sample() is not GuardState.OK:  # a fresh read: ~0.1 ms of small files
            return MEMORY
        return None
