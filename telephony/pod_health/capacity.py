"""Whether the pod's engines and CPU can serve one more call in real time (admission reason `capacity`).

Counting calls and memory is not enough: under a 1 GiB cgroup on two cores the pod admitted 16 calls
and two of them failed with "speech engine failed", because the cores could not serve them. So, like
LiveKit's CPU-load admission, a new call is refused while, over the last `window_s`:

- an in-process inference pool (Whisper, Kokoro, llama.cpp, smart turn) is busy, per worker, at or
  above `max_engine_load` of real time, or would be with one more call (its load shared out over the
  calls it carries), or has more than `max_queued_jobs` jobs per worker waiting for a worker;
- one more call would give an inference pool more calls than its bound on pending jobs: every call
  can have a job in each pool at once (callers who all speak together), and a job past the bound
  fails its call with "speech engine failed" (what the flood showed: 16 callers, a bound of 8);
- this process's CPU time, as a share of the cores it may use (cgroup quota, else its CPU affinity),
  is at or above `max_cpu_load`, or would be with one more call (counted from two calls up, so one
  busy call or a test harness in the same process does not close the pod);
- a remote speech service (engines over HTTP) took a median of `max_speech_latency_s` or more to
  answer, or left `max_speech_failure_share` or more of at least `MIN_SPEECH_REQUESTS` requests
  without an answer (overloaded or down: a new call would get no speech either). Off by default:
  all pods share the service, so this would turn every pod unready at once.

A pod carrying no call never refuses one for capacity: what its engines are busy with then is the
tail of calls that have ended, and a pod must always be able to take one call. A threshold of 0
turns its check off. Figures are read afresh on each question (a few µs).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from agents.engines.local.pool import InferencePool
from agents.engines.remote.speech_client import SpeechClient
from telephony.pod_health.active_calls import ActiveCalls

log = logging.getLogger("switchboard.capacity")

CAPACITY = "capacity"
MAX_CPU_SAMPLES = 256
"""Bound on CPU readings kept for the window (one per question, spaced so they span the window)."""
MIN_SAMPLE_GAP_S = 0.05
CPU_PREDICT_FROM_CALLS = 2
"""CPU per call is estimated only from this many running calls (below it, the reading as it is)."""
MIN_SPEECH_REQUESTS = 3
"""Failures are judged only over at least this many recent speech requests."""


@dataclass(frozen=True, slots=True)
class CapacityLimits:
    max_engine_load: float = 0.9
    max_queued_jobs: int = 4
    max_cpu_load: float = 0.9
    max_speech_latency_s: float = 0.0
    max_speech_failure_share: float = 0.0
    window_s: float = 5.0


def available_cores(cgroup_root: Path = Path("/sys/fs/cgroup")) -> float:
    """Cores this process may use: the cgroup CPU quota (v2 `cpu.max`, v1 `cfs_quota_us`) where one is
    set, else the CPUs it may run on."""
    cores = float(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else float(os.cpu_count() or 1)
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(0.1, min(cores, int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return max(0.1, min(cores, quota_us / period_us))
    except (OSError, ValueError):
        pass
    return max(1.0, cores)


class CpuLoad:
    """This process's CPU seconds per wall second per available core, over a sliding window."""

    def __init__(
        self,
        window_s: float,
        cores: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu_seconds: Callable[[], float] = time.process_time,
    ) -> None:
        self.window_s = window_s
        self.cores = cores if cores is not None else available_cores()
        self._clock = clock
        self._cpu_seconds = cpu_seconds
        self._samples: deque[tuple[float, float]] = deque(maxlen=MAX_CPU_SAMPLES)
        self._samples.append((clock(), cpu_seconds()))
        self._gap = max(MIN_SAMPLE_GAP_S, 2 * window_s / MAX_CPU_SAMPLES)
        """Least time between kept readings, so the bounded readings always span the window."""

    def sample(self) -> float:
        now, cpu = self._clock(), self._cpu_seconds()
        if now - self._samples[-1][0] >= self._gap:
            self._samples.append((now, cpu))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()  # keep one reading at or before the window's start
        since, cpu_then = self._samples[0]
        if now - since < MIN_SAMPLE_GAP_S:
            return 0.0
        return max(0.0, cpu - cpu_then) / (now - since) / self.cores


class Capacity:
    """`reason()`: `capacity` when one more call could not be served in real time, else None."""

    def __init__(
        self,
        limits: CapacityLimits,
        calls: ActiveCalls,
        *,
        pools: Callable[[], Iterable[InferencePool]] = InferencePool.live,
        speech: Callable[[], Iterable[SpeechClient]] = SpeechClient.live,
        cpu: CpuLoad | None = None,
    ) -> None:
        self.limits = limits
        self.calls = calls
        self._pools = pools
        self._speech = speech
        self.cpu = cpu if cpu is not None else CpuLoad(limits.window_s)
        self.why: str | None = None
        """What was short at the last refusal (for logs and `/readyz` readers), None while it admits."""

    def _with_one_more(self, load: float, from_calls: int = 1) -> float:
        """The load with one more call, each running or reserved call costing the same share."""
        active, count = self.calls.active, self.calls.count
        if active < from_calls:
            return load
        return load * (count + 1) / active

    def _shortage(self) -> str | None:
        limits = self.limits
        if self.calls.count == 0:
            self.cpu.sample()  # keeps the window's readings current
            return None
        for pool in list(self._pools()):
            if limits.max_engine_load and self.calls.count + 1 > pool.max_pending:
                return f"engine {pool.name}: {self.calls.count + 1} calls for {pool.max_pending} pending jobs"
            if limits.max_queued_jobs and pool.queued > limits.max_queued_jobs * pool.max_workers:
                return f"engine {pool.name}: {pool.queued} jobs waiting"
            if limits.max_engine_load:
                load = self._with_one_more(pool.recent_load(limits.window_s))
                if load >= limits.max_engine_load:
                    return f"engine {pool.name}: load {load:.2f} of real time with one more call"
        for client in list(self._speech()):
            requests, failed, median = client.recent_health(limits.window_s)
            share = limits.max_speech_failure_share
            if share and requests >= MIN_SPEECH_REQUESTS and failed / requests >= share:
                return f"speech {client.name}: {failed} of {requests} requests unanswered"
            if limits.max_speech_latency_s and median is not None and median >= limits.max_speech_latency_s:
                return f"speech {client.name}: median {median:.2f} s to answer"
        if limits.max_cpu_load:
            load = self._with_one_more(self.cpu.sample(), CPU_PREDICT_FROM_CALLS)
            if load >= limits.max_cpu_load:
                return f"cpu: {load:.2f} of {self.cpu.cores:g} cores with one more call"
        return None

    def reason(self) -> str | None:
        shortage = self._shortage()
        if shortage is not None and self.why is None:
            log.warning("refusing calls: not enough capacity", extra={"reason": CAPACITY, "detail": shortage})
        elif shortage is None and self.why is not None:
            log.info("capacity available again", extra={"reason": CAPACITY})
        self.why = shortage
        return None if shortage is None else CAPACITY
