"""What a finished media stream asked for: hang up or transfer.

Ending a `<Connect><Stream>` makes Twilio request the `<Connect action>` URL; that request reads
the outcome the session left here. Bounded in size and age: an outcome nobody collects expires.
Kept in process: when the action request can land on another pod, this moves to the database.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from agents.port import CallOutcome


class CallOutcomes:
    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, CallOutcome]] = OrderedDict()

    def put(self, call_sid: str, outcome: CallOutcome) -> None:
        self._entries[call_sid] = (self._clock() + self._ttl, outcome)
        self._entries.move_to_end(call_sid)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def take(self, call_sid: str) -> CallOutcome | None:
        entry = self._entries.pop(call_sid, None)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._entries)
