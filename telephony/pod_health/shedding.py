"""What the pod does at the hard memory threshold, in order, so it never reaches its limit.

Admission already refuses new calls from the soft threshold on. At the hard threshold the pod
(1) refuses large allocations: tool calls and long utterance buffers check `MemorySampler.shedding`
themselves; (2) drops what it can rebuild: a full garbage collection and `malloc_trim`, which hands
the C heap's free pages (freed model buffers, audio, tool results) back to the kernel; and (3) as a
last resort ends the newest call gracefully (the agent says its apology and hangs up), one call per
`cooldown_s`, so the memory the ended call frees is seen before another is chosen. It never ends the
last call: a pod carrying one call has nothing left to shed but that call, and ending it protects
no other caller.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

from telephony.pod_health.active_calls import ActiveCalls
from telephony.pod_health.guard import GuardState, MemorySampler

log = logging.getLogger("switchboard.shedding")

SHED_REASON = "memory"


def release_free_memory() -> None:
    """Collect garbage, then return the C heap's free pages to the kernel (glibc only)."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_malloc_trim = _find_malloc_trim()


class LoadShedder:
    """At the hard threshold, relieves, then sheds. `check` runs after each of the sampler's
    periodic samples (`MemorySampler.after_sample`)."""

    def __init__(
        self,
        memory: MemorySampler,
        calls: ActiveCalls,
        *,
        cooldown_s: float = 5.0,
        relieve: Callable[[], None] = release_free_memory,
        on_shed: Callable[[str], None] | None = None,
        on_relief: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.memory = memory
        self.calls = calls
        self.cooldown_s = cooldown_s
        self._relieve = relieve
        self._on_shed = on_shed
        self._on_relief = on_relief
        self._clock = clock
        self._last_relief = -float("inf")
        self._last_shed = -float("inf")
        self.reliefs = 0
        self.shed: list[str] = []
        """Calls ended so far, by call SID (bounded by the calls a pod ever carries at once per
        cooldown; kept for tests and logs, trimmed to the last `MAX_SHED_KEPT`)."""

    def check(self) -> str | None:
        """One step of the policy; the SID of a call it ended, if any. It reuses the sampler's
        reading when it is under half an interval old (the periodic tick has just taken one)."""
        if self.memory.sample(max_age_s=self.memory.interval_s / 2) is not GuardState.HARD:
            return None
        now = self._clock()
        if now - self._last_relief >= self.cooldown_s:
            self._last_relief = now
            if self._relief() is not GuardState.HARD:
                return None
        if self.calls.active <= 1 or now - self._last_shed < self.cooldown_s:
            return None
        newest = self.calls.newest()
        if newest is None:
            return None
        call_sid, end = newest
        self._last_shed = now
        reading = self.memory.reading
        log.warning(
            "memory at the hard threshold: ending the newest call",
            extra={"ended_call_sid": call_sid, "used_bytes": reading.used_bytes, "limit_bytes": reading.limit_bytes},
        )
        if end is not None:
            end(SHED_REASON)
        self.shed = [*self.shed[-(MAX_SHED_KEPT - 1) :], call_sid]
        if self._on_shed is not None:
            self._on_shed(call_sid)
        return call_sid

    def _relief(self) -> GuardState:
        """Release what can be rebuilt; the state on a reading taken after."""
        before = self.memory.reading.used_bytes
        try:
            self._relieve()
        except Exception:
            log.exception("releasing memory failed")
        self.reliefs += 1
        if self._on_relief is not None:
            self._on_relief()
        state = self.memory.sample()
        after = self.memory.reading.used_bytes
        log.warning("memory at the hard threshold: released free memory", extra={"before": before, "after": after})
        return state


MAX_SHED_KEPT = 64
"""Bound on the shed-call SIDs `LoadShedder.shed` keeps."""
