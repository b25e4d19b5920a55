"""Counts the calls this pod is carrying, from the moment the webhook admits one.

A call is reserved when the webhook answers it (so a burst of webhooks cannot all be admitted
before any stream connects), becomes active when its stream starts, and is released when the
stream ends. A reservation whose stream never arrives expires with the call token. Active calls
are kept in the order they started, each with how to end it, so the memory guard can shed the
newest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

EndCall = Callable[[str], None]
"""Asks a running call to end gracefully, with a reason (the pod sheds it)."""


class CallControl(Protocol):
    """What an operator may do to a call live on this pod (the admin API's end and transfer)."""

    async def end(self, reason: str) -> None: ...

    async def transfer(self, to: str, reason: str) -> None: ...


class ActiveCalls:
    def __init__(self, limit: int, reservation_ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._reservation_ttl = reservation_ttl
        self._clock = clock
        self._reserved: dict[str, float] = {}
        self._active: dict[str, EndCall | None] = {}
        """Running calls, oldest first, with how to ask each to end."""
        self._controls: dict[str, CallControl] = {}
        """Running calls' operator controls (bounded with `_active`: added and removed with it)."""

    def _expire(self) -> None:
        now = self._clock()
        for sid in [sid for sid, deadline in self._reserved.items() if deadline < now]:
            del self._reserved[sid]

    @property
    def count(self) -> int:
        """Reserved plus active calls."""
        self._expire()
        return len(self._reserved) + len(self._active)

    @property
    def active(self) -> int:
        return len(self._active)

    def try_reserve(self, call_sid: str) -> bool:
        """Hold a place for a call the webhook is about to answer; False when full."""
        self._expire()
        if call_sid in self._reserved or call_sid in self._active:
            return True  # Twilio retried the webhook
        if self.count >= self.limit:
            return False
        self._reserved[call_sid] = self._clock() + self._reservation_ttl
        return True

    def start(self, call_sid: str, end: EndCall | None = None, control: CallControl | None = None) -> bool:
        """The call's stream started (on this pod, with or without a reservation here). False, and
        nothing changes, when the call is already live: a second stream for it (a replayed token)
        must neither replace the live call's entry nor release it when it ends, or the count would
        drop while the call is still up and drain could finish under it."""
        if call_sid in self._active:
            return False
        self._reserved.pop(call_sid, None)
        self._active[call_sid] = end
        if control is not None:
            self._controls[call_sid] = control
        return True

    def control(self, call_sid: str) -> CallControl | None:
        """How an operator ends or transfers the call, when it is live on this pod."""
        return self._controls.get(call_sid)

    def is_live(self, call_sid: str) -> bool:
        """Whether a stream for this call is running on this pod."""
        return call_sid in self._active

    def release(self, call_sid: str) -> None:
        self._reserved.pop(call_sid, None)
        self._active.pop(call_sid, None)
        self._controls.pop(call_sid, None)

    def newest(self) -> tuple[str, EndCall | None] | None:
        """The call that started last, and how to end it (None when no call runs)."""
        if not self._active:
            return None
        call_sid = next(reversed(self._active))
        return call_sid, self._active[call_sid]
