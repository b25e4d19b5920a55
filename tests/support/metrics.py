"""Reading the pod's counters from its Prometheus registry (the one place the pod counts events)."""

from __future__ import annotations

from telephony.pod_health.metrics import Metrics


def counter(metrics: Metrics, name: str, **labels: str) -> float:
    """The value of counter sample `name` (e.g. `switchboard_calls_refused_total`, reason="memory")
    in the pod's registry; 0 while the series has no sample yet."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


def streams_open(metrics: Metrics) -> float:
    """Media streams started and not yet ended (0 once every call's handler has finished)."""
    return counter(metrics, "switchboard_calls_started_total") - counter(metrics, "switchboard_calls_ended_total")
