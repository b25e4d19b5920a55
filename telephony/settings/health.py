"""The pod's health section: the memory guard, shedding, drain and `/readyz`."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from telephony.settings.section import Section


class PodHealthSettings(Section):
    """When the pod refuses calls, sheds them, and drains."""

    memory_limit_bytes: int = Field(1 << 30, ge=64 * 1024 * 1024)
    """Memory budget used when the container's cgroup sets no limit (`max`, or no cgroup at all);
    usage is then the process RSS. A cgroup limit, where there is one, is used instead."""
    memory_soft_percent: float = Field(80.0, gt=0, lt=100)
    """Memory use (share of the limit) from which new calls are refused (reason `memory`) and
    `/readyz` answers 503; below it again by 5 points, calls are admitted."""
    memory_hard_percent: float = Field(90.0, gt=0, le=100)
    """Memory use (share of the limit) from which the guard is `hard`: tool calls and long utterances
    are refused, free memory is released, and then the newest call is ended with the apology (see
    `shed_cooldown_seconds`); above the soft one."""
    memory_sample_interval_seconds: float = Field(1.0, ge=0.05, le=60)
    """How often memory is read in the background (admission and `/readyz` also read on demand)."""
    admission_max_engine_load: float = Field(0.9, ge=0, le=10)
    """New calls are refused (reason `capacity`) while an in-process inference pool (Whisper, Kokoro,
    llama.cpp) is busy this share of real time per worker over the load window, or would be with
    one more call (its load shared out over the calls running), or when one more call would exceed
    a pool's bound on pending jobs (`stt_max_pending`...); 0: not checked."""
    admission_max_queued_jobs: int = Field(4, ge=0, le=1000)
    """New calls are refused (reason `capacity`) while an inference pool has more than this many jobs
    per worker waiting for a worker; 0: not checked."""
    admission_max_cpu_load: float = Field(0.9, ge=0, le=10)
    """New calls are refused (reason `capacity`) while this process's CPU over the load window, as a
    share of the cores it may use (cgroup quota, else CPU affinity), is at or above this, or would be
    with one more call (estimated from two running calls up); 0: not checked."""
    admission_max_speech_latency_seconds: float = Field(0.0, ge=0, le=60)
    """New calls are refused (reason `capacity`) while the remote speech service's median time to
    answer over the load window is at or above this; 0 (the default): not checked, because every pod
    shares the service and would turn unready at once (set it where a pool of speech services sits
    behind the pods, e.g. 2.0)."""
    admission_max_speech_failure_share: float = Field(0.0, ge=0, le=1)
    """New calls are refused (reason `capacity`) while this share or more of the remote speech
    service's requests over the load window (3 at least) got no answer; 0 (the default): not
    checked, as above: a call during a speech outage gets the apology instead."""
    admission_load_window_seconds: float = Field(5.0, ge=0.2, le=120)
    """The window over which engine and CPU load are measured for admission by capacity."""
    memory_report_interval_seconds: float = Field(60.0, ge=0, le=86_400)
    """How often a memory breakdown (Python heap, native estimate, malloc, gc, bounded buffers,
    tracemalloc's top sites when on) is logged; 0 turns the report off."""
    memory_report_top: int = Field(10, ge=1, le=100)
    """Allocation sites listed in the memory report and in a heap snapshot (tracemalloc on only)."""
    tracemalloc_frames: int = Field(0, ge=0, le=32)
    """Frames tracemalloc keeps per allocation; 0 (the default) leaves it off. On, the memory report
    and the heap snapshot list the top allocation sites, at a cost in speed and memory."""
    shed_cooldown_seconds: float = Field(5.0, ge=0.5, le=300)
    """At the hard threshold, at most one call is ended (and free memory released once) per this
    many seconds, so what an ended call frees is seen before another is chosen."""
    shed_goodbye_seconds: float = Field(20.0, ge=1, le=120)
    """Longest a call the pod ends may take over its apology before its stream is closed anyway."""
    drain_timeout_seconds: float = Field(900.0, ge=0, le=4 * 3600)
    """Longest `POST /drain` waits for the pod's calls to end (default: the agents' default maximum
    call length); keep the pod's `terminationGracePeriodSeconds` above it."""
    drain_token: SecretStr | None = None
    """When set, `POST /drain` needs `Authorization: Bearer <token>` (from any address); unset, it is
    accepted from loopback only (a preStop exec hook inside the pod)."""
    readiness_check_timeout_seconds: float = Field(2.0, gt=0, le=30)
    """Bound on each dependency check of `/readyz` (the database ping); slower counts as down."""
    readiness_database_unready_after_seconds: float | None = Field(None, ge=0, le=3600)
    """`/readyz` answers 503 once the database has been unreachable this long. Unset (the default):
    the database never makes the pod unready, since calls are answered from the pod's last good
    routes and agents while it is down, and an outage would otherwise take every pod out at once;
    `/readyz` still reports it (`dependencies.database`)."""

    @field_validator("memory_hard_percent")
    @classmethod
    def _hard_above_soft(cls, value: float, info) -> float:  # type: ignore[no-untyped-def]
        soft = info.data.get("memory_soft_percent")
        if soft is not None and value <= soft:
            raise ValueError("must be larger than memory_soft_percent")
        return value
