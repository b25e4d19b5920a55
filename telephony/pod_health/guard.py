"""The pod's memory pressure as one of three states, kept fresh by a sampler.

`ok` below the soft threshold; `soft` from it (no new calls, readiness 503); `hard` from the hard
threshold (where shedding acts). Leaving a state needs usage `RECOVERY_MARGIN` below its
threshold, so a pod hovering at the line does not flap its readiness every sample.

The sampler reads on an interval (a task the app's lifespan starts and stops) and on demand, so
admission and `/readyz` never act on a reading older than they tolerate.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable

from agents.tasks import cancel_and_wait
from telephony.pod_health.memory import MemoryReader, MemoryReading

log = logging.getLogger("switchboard.memory")

RECOVERY_MARGIN = 0.05
MEMORY_HISTORY_SAMPLES = 720
MEMORY_HISTORY_EVERY_S = 5.0
"""The console's memory chart keeps a sample every 5 s, the last 720 of them: an hour."""
"""A state is left only once usage is this share of the limit below its threshold."""


class GuardState(enum.StrEnum):
    OK = "ok"
    SOFT = "soft"
    HARD = "hard"


class MemorySampler:
    """The latest `MemoryReading` and the `GuardState` it puts the pod in."""

    def __init__(
        self,
        reader: MemoryReader,
        *,
        soft: float = 0.80,
        hard: float = 0.90,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`soft` and `hard` are shares of the limit (0 < soft < hard <= 1)."""
        if not 0 < soft < hard <= 1:
            raise ValueError("need 0 < soft < hard <= 1")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.reader = reader
        self.soft = soft
        self.hard = hard
        self.interval_s = interval_s
        self._clock = clock
        self.state = GuardState.OK
        self.history: deque[tuple[float, int]] = deque(maxlen=MEMORY_HISTORY_SAMPLES)
        """(wall time, bytes used) of recent samples, for the console's memory chart."""
        self.reading = reader.read()
        self._read_at = clock()
        self._update(self.reading)
        self._task: asyncio.Task[None] | None = None
        self.after_sample: list[Callable[[], object]] = []
        """Run after each periodic sample (the load shedder's check); a failure is logged."""

    def sample(self, max_age_s: float = 0.0) -> GuardState:
        """Read now (unless the last reading is at most `max_age_s` old) and return the state."""
        if max_age_s <= 0 or self._clock() - self._read_at > max_age_s:
            self._update(self.reader.read())
        return self.state

    def shedding(self) -> bool:
        """Whether the pod sheds load now (the last sample was at the hard threshold). Cheap: read
        per audio frame and per tool call, it uses the sampler's latest state without reading."""
        return self.state is GuardState.HARD

    def _update(self, reading: MemoryReading) -> None:
        self.reading, self._read_at = reading, self._clock()
        now = time.time()
        if not self.history or now - self.history[-1][0] >= MEMORY_HISTORY_EVERY_S:
            self.history.append((now, reading.used_bytes))
        used = reading.fraction
        previous = self.state
        if used >= self.hard:
            state = GuardState.HARD
        elif used >= self.soft:
            recovering = previous is GuardState.HARD and used >= self.hard - RECOVERY_MARGIN
            state = GuardState.HARD if recovering else GuardState.SOFT
        elif previous is not GuardState.OK and used >= self.soft - RECOVERY_MARGIN:
            state = GuardState.SOFT
        else:
            state = GuardState.OK
        if state is not previous:
            self.state = state
            log.warning(
                "memory guard state changed",
                extra={
                    "from": previous.value,
                    "to": state.value,
                    "used_bytes": reading.used_bytes,
                    "limit_bytes": reading.limit_bytes,
                    "source": reading.source,
                },
            )

    # -- the periodic task ---------------------------------------------------------------------

    def start(self) -> None:
        """Sample every `interval_s` on the running loop until `stop()`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="memory-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.sample()
                for then in self.after_sample:
                    then()
            except Exception:  # a bad read or a failing follower must not end sampling
                log.exception("memory sample failed")
