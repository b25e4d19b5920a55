"""The pod's Prometheus metrics, in a registry of the app's own (two apps in one process, as in
the tests, never share or collide over series).

This registry is the pod's one counter sink: every event the pod counts is a counter here, fed as
it happens (webhooks, streams, outbound and campaign calls by their handlers; turns, barge-ins and
tool calls through the `CallObserver` hook the composition root hands the voice agents), and
`/healthz` shows the same counters (`counters`). What is a state rather than an event (calls
carried, memory, guard state, draining) is set from the pod just before each scrape.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import Enum as StateMetric
from starlette.responses import Response

from agents.conversation.record import TurnMetrics
from telephony.pod_health.admission import REASONS
from telephony.pod_health.guard import GuardState
from telephony.pod_health.memory import MemoryReading

STAGES = ("endpoint", "stt", "llm_ttft", "tts_first_audio", "voice_to_voice")
"""The per-turn latency stages (fields `<stage>_ms` of `TurnMetrics`)."""

OUTBOUND_EVENTS = ("placed", "answered", "unknown_agent", "voicemail_left", "machine_hung_up")
"""What happens to outbound calls (the `event` label of `switchboard_outbound_calls_total`)."""

CAMPAIGN_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled", "invalid", "lost")
"""How a campaign attempt settles: Twilio's final statuses, `invalid` (the number was refused
before dialing) and `lost` (its pod died mid-call)."""

STREAM_TURNED_AWAY_REASONS = ("too_many_pending", "start_timeout", "prestart_message_too_large", "call_already_live")
"""Why a media stream was closed before it became a call (the `reason` label of
`switchboard_streams_turned_away_total`)."""

ENGINE_FAILURES = ("speech_unavailable", "speech_failed", "model_unavailable")
"""How a turn fails on an engine (the `kind` label of `switchboard_engine_failures_total`)."""

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Seconds; fine around the 0.3-1.5 s where a phone conversation feels quick or slow."""


class Metrics:
    """Implements `CallObserver` (turns, barge-ins, tool calls) and holds every series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.calls_admitted = Counter("switchboard_calls_admitted", "Calls admitted by the voice webhook.", registry=r)
        self.calls_refused = Counter(
            "switchboard_calls_refused",
            "Calls refused by admission, by reason (draining, memory, capacity, max_concurrent_calls).",
            ["reason"],
            registry=r,
        )
        self.calls_unknown_number = Counter(
            "switchboard_calls_unknown_number", "Inbound calls to a number with no agent.", registry=r
        )
        self.db_stale_reads = Counter(
            "switchboard_db_stale_reads",
            "Call-path lookups answered from the pod's last good copy while the database was down, by what "
            "(number, agent).",
            ["what"],
            registry=r,
        )
        self.calls_unrouted_in_outage = Counter(
            "switchboard_calls_unrouted_in_outage",
            "Inbound calls to a number the pod could not route during a database outage, by answer "
            "(fallback_agent, message).",
            ["answer"],
            registry=r,
        )
        self.webhooks_forbidden = Counter(
            "switchboard_webhooks_forbidden", "Webhooks refused for a missing or invalid Twilio signature.", registry=r
        )
        self.streams_refused = Counter(
            "switchboard_streams_refused",
            "Media streams closed for a missing, forged or expired call token.",
            registry=r,
        )
        self.streams_turned_away = Counter(
            "switchboard_streams_turned_away",
            "Media streams closed before becoming a call, by reason: too_many_pending, start_timeout, "
            "prestart_message_too_large, call_already_live.",
            ["reason"],
            registry=r,
        )
        for reason in STREAM_TURNED_AWAY_REASONS:
            self.streams_turned_away.labels(reason)
        self.webhooks_replayed = Counter(
            "switchboard_webhooks_replayed",
            "Signed webhooks for a CallSid already answered with a call token (answered without one).",
            registry=r,
        )
        self.stream_messages_dropped = Counter(
            "switchboard_stream_messages_dropped",
            "Media-stream messages dropped as malformed, unknown, oversized or out of order.",
            registry=r,
        )
        self.calls_started = Counter("switchboard_calls_started", "Calls whose media stream started.", registry=r)
        self.calls_ended = Counter("switchboard_calls_ended", "Calls whose media stream ended.", registry=r)
        self.outbound_calls = Counter(
            "switchboard_outbound_calls",
            "Outbound calls, by event: placed, answered, unknown_agent, voicemail_left, machine_hung_up.",
            ["event"],
            registry=r,
        )
        self.outbound_refused = Counter(
            "switchboard_outbound_refused",
            "Answered outbound calls admission refused, by reason (draining, memory, max_concurrent_calls).",
            ["reason"],
            registry=r,
        )
        self.campaign_calls = Counter(
            "switchboard_campaign_calls",
            "Campaign attempts settled, by status (Twilio's final status, invalid or lost).",
            ["status"],
            registry=r,
        )
        for reason in REASONS:  # labelled counters are exposed from the start, at zero
            self.calls_refused.labels(reason)
            self.outbound_refused.labels(reason)
        for event in OUTBOUND_EVENTS:
            self.outbound_calls.labels(event)
        for status in CAMPAIGN_STATUSES:
            self.campaign_calls.labels(status)
        self.active_calls = Gauge("switchboard_active_calls", "Calls whose media stream is running.", registry=r)
        self.reserved_calls = Gauge(
            "switchboard_reserved_calls", "Calls admitted whose media stream has not started yet.", registry=r
        )
        self.max_calls = Gauge("switchboard_max_concurrent_calls", "The pod's concurrent-call limit.", registry=r)
        self.memory_used = Gauge(
            "switchboard_memory_usage_bytes",
            "Memory counted against the limit: the cgroup's working set, or the process RSS without a cgroup.",
            registry=r,
        )
        self.memory_limit = Gauge(
            "switchboard_memory_limit_bytes",
            "The cgroup's memory limit, or the configured one where the cgroup sets none.",
            registry=r,
        )
        self.memory_oom_kills = Gauge(
            "switchboard_memory_cgroup_oom_kills",
            "OOM kills the kernel reports in the pod's cgroup (stays 0 without a cgroup).",
            registry=r,
        )
        self.guard_state = StateMetric(
            "switchboard_memory_guard_state",
            "Memory guard state: ok, soft (no new calls), hard (shedding).",
            states=[state.value for state in GuardState],
            registry=r,
        )
        self.calls_shed = Counter(
            "switchboard_calls_shed",
            "Calls the pod ended (with the apology) because memory was at the hard threshold.",
            registry=r,
        )
        self.memory_reliefs = Counter(
            "switchboard_memory_reliefs",
            "Times the pod released free memory (garbage collection, malloc_trim) at the hard threshold.",
            registry=r,
        )
        self.draining = Gauge("switchboard_draining", "1 once the pod is draining.", registry=r)
        self.audit_writes_failed = Counter(
            "switchboard_admin_audit_writes_failed",
            "Admin API writes whose audit entry could not be stored (the database refused or was down).",
            registry=r,
        )
        self.call_record_writes_failed = Counter(
            "switchboard_call_record_writes_failed",
            "Call-record entries (start, transcript line, tool audit, latency, end) the pod could not write: "
            "refused, failing past the give-up time, or left at shutdown.",
            registry=r,
        )
        self.call_record_entries_dropped = Counter(
            "switchboard_call_record_entries_dropped",
            "Call-record entries never queued because the pod's record queue was full.",
            registry=r,
        )
        self.call_record_queue = Gauge(
            "switchboard_call_record_queue_entries",
            "Call-record entries queued in the pod, not yet written (grows while the database is down).",
            registry=r,
        )
        self.post_call_jobs = Counter(
            "switchboard_post_call_jobs",
            "Post-call jobs (summary and declared fields) by outcome: done, failed (model, timeout, arguments) "
            "or queue_full (never run).",
            ["outcome"],
            registry=r,
        )
        for outcome in ("done", "failed", "queue_full"):
            self.post_call_jobs.labels(outcome)
        self.post_call_queue = Gauge(
            "switchboard_post_call_queue", "Ended calls waiting for their post-call job.", registry=r
        )
        self.barge_ins = Counter("switchboard_barge_ins", "Times a caller interrupted the agent.", registry=r)
        self.speculative_replies = Counter(
            "switchboard_speculative_replies",
            "Replies started on a likely end of turn, by outcome: used (the turn ended there) or wasted.",
            ["outcome"],
            registry=r,
        )
        for outcome in ("used", "wasted"):
            self.speculative_replies.labels(outcome)
        self.resumed_replies = Counter(
            "switchboard_resumed_replies",
            "Barge-ins that were only a backchannel or noise, after which the agent's reply went on.",
            registry=r,
        )
        self.tool_calls = Counter(
            "switchboard_tool_calls",
            "Tool calls the model made, by outcome (ok, or the executor's error kind).",
            ["outcome"],
            registry=r,
        )
        self.engine_failures = Counter(
            "switchboard_engine_failures",
            "Turns that failed on an engine, by kind: speech_unavailable, speech_failed, model_unavailable.",
            ["kind"],
            registry=r,
        )
        for kind in ENGINE_FAILURES:
            self.engine_failures.labels(kind)
        self.turn_latency = Histogram(
            "switchboard_turn_stage_seconds",
            "Per-turn latency by stage: endpoint, stt, llm_ttft, tts_first_audio, voice_to_voice.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        for stage in STAGES:  # every stage is exposed from the start, at zero
            self.turn_latency.labels(stage)

    # -- events ------------------------------------------------------------------------------

    def call_admitted(self) -> None:
        self.calls_admitted.inc()

    def call_refused(self, reason: str) -> None:
        self.calls_refused.labels(reason).inc()

    def turn_ended(self, metrics: TurnMetrics) -> None:
        for stage in STAGES:
            value = getattr(metrics, f"{stage}_ms")
            if value is not None:
                self.turn_latency.labels(stage).observe(value / 1000)

    def barged_in(self) -> None:
        self.barge_ins.inc()

    def speculation_ended(self, used: bool) -> None:
        self.speculative_replies.labels("used" if used else "wasted").inc()

    def reply_resumed(self) -> None:
        self.resumed_replies.inc()

    def engine_failed(self, kind: str) -> None:
        self.engine_failures.labels(kind if kind in ENGINE_FAILURES else "other").inc()

    def tool_called(self, name: str, ok: bool, error: str | None) -> None:
        # By outcome only: the name comes from the model and would make the label unbounded.
        self.tool_calls.labels("ok" if ok else (error or "error")[:32]).inc()

    # -- state, set before a scrape -------------------------------------------------------------

    def set_pod_state(
        self,
        *,
        active: int,
        reserved: int,
        limit: int,
        memory: MemoryReading,
        state: GuardState,
        draining: bool,
    ) -> None:
        self.active_calls.set(active)
        self.reserved_calls.set(reserved)
        self.max_calls.set(limit)
        self.memory_used.set(memory.used_bytes)
        self.memory_limit.set(memory.limit_bytes)
        if memory.oom_kills is not None:
            self.memory_oom_kills.set(memory.oom_kills)
        self.guard_state.state(state.value)
        self.draining.set(1 if draining else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def counters(registry: CollectorRegistry) -> dict[str, float]:
    """Every counter in `registry`, keyed as on `/metrics` (`name_total{label="value"}`): what
    `/healthz` shows, so it can never disagree with a scrape."""
    found: dict[str, float] = {}
    for family in registry.collect():
        if family.type != "counter":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
                found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def metrics_response(metrics: Metrics) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
