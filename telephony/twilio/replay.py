"""The CallSids this pod has answered with a call token, so a replayed webhook gets no second one.

Twilio signs a webhook over its URL and form, with no timestamp: anyone who captured one signed
request can send it again, forever. Without this, each replay minted a fresh call token for an
old call (a stream with the caller's identity) and held a place in admission. A CallSid answered
once is remembered for `window_seconds`, at most `max_calls` of them (oldest forgotten first; only
requests with a valid signature ever add one, so an attacker cannot flush it). The memory is this
pod's own: a replay sent to another pod is not caught here (see README, Known limits).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class SeenCalls:
    """A bounded, expiring set of CallSids."""

    def __init__(self, max_calls: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_calls < 1 or window_seconds <= 0:
            raise ValueError("SeenCalls needs max_calls >= 1 and window_seconds > 0")
        self.max_calls = max_calls
        self.window_seconds = window_seconds
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        """CallSid -> when it is forgotten, oldest first."""

    def _expire(self) -> None:
        now = self._clock()
        while self._seen:
            call_sid, deadline = next(iter(self._seen.items()))
            if deadline >= now:
                return
            del self._seen[call_sid]

    def __contains__(self, call_sid: object) -> bool:
        self._expire()
        return call_sid in self._seen

    def __len__(self) -> int:
        self._expire()
        return len(self._seen)

    def add(self, call_sid: str) -> bool:
        """Remember `call_sid`; False when it was already remembered (a replay)."""
        self._expire()
        if call_sid in self._seen:
            return False
        self._seen[call_sid] = self._clock() + self.window_seconds
        while len(self._seen) > self.max_calls:
            self._seen.popitem(last=False)
        return True
