"""Failed console logins per client address per minute, so a browser form cannot be used to guess keys quickly."""

from __future__ import annotations

import time
from collections import OrderedDict

MAX_TRACKED_ADDRESSES = 10_000
"""Bound on addresses remembered; the oldest is forgotten first."""
WINDOW_S = 60.0


class LoginLimit:
    def __init__(self, failures_per_minute: int) -> None:
        self.failures_per_minute = failures_per_minute
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def blocked(self, address: str) -> bool:
        started, count = self._failures.get(address, (0.0, 0))
        return time.monotonic() - started < WINDOW_S and count >= self.failures_per_minute

    def failed(self, address: str) -> None:
        now = time.monotonic()
        started, count = self._failures.pop(address, (now, 0))
        if now - started >= WINDOW_S:
            started, count = now, 0
        self._failures[address] = (started, count + 1)
        while len(self._failures) > MAX_TRACKED_ADDRESSES:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
