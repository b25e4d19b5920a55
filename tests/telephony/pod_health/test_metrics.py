"""`GET /metrics`: the named series, fed by admission, the pod's state and the call observer."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from agents.conversation.record import CallObserver, TurnMetrics
from telephony.app import build_edge, create_app, memory_sampler
from telephony.pod_health.memory import MemoryReader
from telephony.pod_health.metrics import STAGES, Metrics
from telephony.server import BackgroundServer
from tests.support.cgroups import MiB, cgroup_v2, write
from tests.support.settings import make_settings
from tests.support.twilio_requests import post_signed, voice_params

SERIES = [
    "switchboard_calls_admitted_total",
    "switchboard_calls_refused_total",
    "switchboard_active_calls",
    "switchboard_reserved_calls",
    "switchboard_max_concurrent_calls",
    "switchboard_memory_usage_bytes",
    "switchboard_memory_limit_bytes",
    "switchboard_memory_cgroup_oom_kills",
    "switchboard_memory_guard_state",
    "switchboard_draining",
    "switchboard_barge_ins_total",
    "switchboard_tool_calls_total",
    "switchboard_turn_stage_seconds_bucket",
]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def test_metrics_endpoint_exposes_the_named_series(tmp_path: Path) -> None:
    settings = make_settings(max_concurrent_calls=1)
    directory = cgroup_v2(tmp_path, max_=str(1000 * MiB), current=300 * MiB, events="max 0\noom 0\noom_kill 2\n")
    edge = build_edge(settings, memory=memory_sampler(settings, MemoryReader(root=tmp_path)))
    edge.metrics.turn_ended(TurnMetrics(turn=1, endpoint_ms=612, stt_ms=0, llm_ttft_ms=40, voice_to_voice_ms=950))
    edge.metrics.barged_in()
    edge.metrics.tool_called("get_order_status", True, None)
    edge.metrics.tool_called("list_recent_orders", False, "refused")
    with BackgroundServer(create_app(settings, edge), settings) as url:
        post_signed(url, "/twilio/voice", voice_params())  # admitted: holds the only place
        post_signed(url, "/twilio/voice", voice_params())  # refused: max_concurrent_calls
        write(directory / "memory.current", f"{850 * MiB}\n")
        post_signed(url, "/twilio/voice", voice_params())  # refused: memory
        response = httpx.get(url + "/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in SERIES:
        assert name in response.text, name
    found = samples(response.text)
    assert value(found, "switchboard_calls_admitted_total") == 1
    assert value(found, "switchboard_calls_refused_total", reason="max_concurrent_calls") == 1
    assert value(found, "switchboard_calls_refused_total", reason="memory") == 1
    assert value(found, "switchboard_reserved_calls") == 1
    assert value(found, "switchboard_active_calls") == 0
    assert value(found, "switchboard_memory_usage_bytes") == 850 * MiB
    assert value(found, "switchboard_memory_limit_bytes") == 1000 * MiB
    assert value(found, "switchboard_memory_cgroup_oom_kills") == 2
    assert value(found, "switchboard_memory_guard_state", switchboard_memory_guard_state="soft") == 1
    assert value(found, "switchboard_memory_guard_state", switchboard_memory_guard_state="ok") == 0
    assert value(found, "switchboard_draining") == 0
    assert value(found, "switchboard_barge_ins_total") == 1
    assert value(found, "switchboard_tool_calls_total", outcome="ok") == 1
    assert value(found, "switchboard_tool_calls_total", outcome="refused") == 1
    for stage in STAGES:  # every stage is there, observed or not
        assert ("switchboard_turn_stage_seconds_count", (("stage", stage),)) in found
    assert value(found, "switchboard_turn_stage_seconds_count", stage="voice_to_voice") == 1
    assert value(found, "switchboard_turn_stage_seconds_sum", stage="voice_to_voice") == 0.95
    assert value(found, "switchboard_turn_stage_seconds_count", stage="tts_first_audio") == 0  # stage skipped


def test_each_app_has_its_own_registry() -> None:
    settings = make_settings()
    first, second = create_app(settings), create_app(settings)
    first.state.edge.metrics.barged_in()
    assert first.state.edge.metrics.registry.get_sample_value("switchboard_barge_ins_total") == 1
    assert second.state.edge.metrics.registry.get_sample_value("switchboard_barge_ins_total") == 0


def test_metrics_is_a_call_observer() -> None:
    observer: CallObserver = Metrics()  # the composition root hands it to the voice agents
    observer.turn_ended(TurnMetrics(turn=1))  # no stage happened: nothing observed, nothing raised


def test_draining_shows_in_metrics(server: str) -> None:
    httpx.post(server + "/drain", timeout=10)
    found = samples(httpx.get(server + "/metrics").text)
    assert value(found, "switchboard_draining") == 1
