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

    @field_validator("memory_hard_percent")
    @classmethod
    def _hard_above_soft(cls, value: float, info) -> float:  # type: ignore[no-untyped-def]
        soft = info.data.get("memory_soft_percent")
        if soft is not None and value <= soft:
            raise ValueError("must be larger than memory_soft_percent")
        return value
