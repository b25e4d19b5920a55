"""Whether the dialer may place another call from this pod right now.

The dialer asks its `DialGate` before every call. `None` means go on; anything else is the reason
to hold ("draining", "memory", "max_concurrent_calls"), logged and retried after a pause. The
memory guard and drain plug in here by implementing `DialGate` (or joining `AllGates`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from telephony.pod_health.active_calls import ActiveCalls


class DialGate(Protocol):
    def hold_reason(self) -> str | None:
        """None when dialing may proceed, else why not."""
        ...


class CallLimitGate:
    """Hold while this pod carries (or has reserved) its `max_concurrent_calls`."""

    def __init__(self, calls: ActiveCalls) -> None:
        self._calls = calls

    def hold_reason(self) -> str | None:
        return "max_concurrent_calls" if self._calls.count >= self._calls.limit else None


class FlagGate:
    """Hold while a condition holds (e.g. `FlagGate("draining", lambda: drain.draining)`)."""

    def __init__(self, reason: str, holding: Callable[[], bool]) -> None:
        self.reason = reason
        self._holding = holding

    def hold_reason(self) -> str | None:
        return self.reason if self._holding() else None


class AllGates:
    """The first reason any of the gates gives."""

    def __init__(self, *gates: DialGate) -> None:
        self.gates = list(gates)

    def hold_reason(self) -> str | None:
        for gate in self.gates:
            reason = gate.hold_reason()
            if reason is not None:
                return reason
        return None
