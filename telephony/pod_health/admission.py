"""The pod's one answer to "may this pod take a call now?".

`PodAdmission` is asked by the voice webhook and the outbound answer webhook (`admit`: reserve a
place or say why not), by `/readyz` (`reasons`: every reason at once) and by the campaign dialer
(`hold_reason`: the first reason, before each dial). One object per pod, so the three can never
disagree. The reasons, in order: the pod drains, memory is at or above the soft threshold, its
engines or CPU could not serve one more call in real time (`capacity.py`), the pod carries its
maximum of calls. The reason becomes the `reason` label of the refused-calls metric.
"""

from __future__ import annotations

from dataclasses import dataclass

from telephony.pod_health.active_calls import ActiveCalls
from telephony.pod_health.capacity import CAPACITY, Capacity
from telephony.pod_health.drain import Drain
from telephony.pod_health.guard import GuardState, MemorySampler

DRAINING = "draining"
MEMORY = "memory"
MAX_CONCURRENT_CALLS = "max_concurrent_calls"
REASONS = (DRAINING, MEMORY, CAPACITY, MAX_CONCURRENT_CALLS)


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


class PodAdmission:
    """Draining, then memory pressure (soft or hard), then capacity, then the call limit: in that
    order, so a call refused for any reason never holds a place."""

    def __init__(
        self, calls: ActiveCalls, memory: MemorySampler, drain: Drain, capacity: Capacity | None = None
    ) -> None:
        self.calls = calls
        self.memory = memory
        self.drain = drain
        self.capacity = capacity
        """None: calls are not refused for capacity (engines and CPU are not looked at)."""

    def reasons(self) -> list[str]:
        """Every reason the pod would refuse a call now, in order (empty: it would admit one).
        Memory is read afresh (~0.1 ms of small files)."""
        reasons = []
        if self.drain.draining:
            reasons.append(DRAINING)
        if self.memory.sample() is not GuardState.OK:
            reasons.append(MEMORY)
        if self.capacity is not None and self.capacity.reason() is not None:
            reasons.append(CAPACITY)
        if self.calls.count >= self.calls.limit:
            reasons.append(MAX_CONCURRENT_CALLS)
        return reasons

    def admit(self, call_sid: str) -> Decision:
        """Admit the call and hold its place, or say why not (a webhook Twilio retries for a call
        already admitted is admitted again, even on a full pod)."""
        reason = self._pressure()
        if reason is not None:
            return Decision.busy(reason)
        if self.calls.try_reserve(call_sid):
            return Decision.admit()
        return Decision.busy(MAX_CONCURRENT_CALLS)

    def hold_reason(self) -> str | None:
        """Why the pod should not start a call of its own now (the dialer asks before each dial),
        or None: the first of `reasons()`."""
        reasons = self.reasons()
        return reasons[0] if reasons else None

    def _pressure(self) -> str | None:
        if self.drain.draining:
            return DRAINING
        if self.memory.sample() is not GuardState.OK:
            return MEMORY
        if self.capacity is not None:
            return self.capacity.reason()
        return None
