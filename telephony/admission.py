"""Whether to answer a new call, decided by the inbound webhook before any work is done.

`Admission` is the hook; the memory guard (its own issue) adds memory pressure to it. Today's
policy is the concurrent-call limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from telephony.active_calls import ActiveCalls


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
        return Decision.busy("max_concurrent_calls")
