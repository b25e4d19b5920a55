"""`GET /metrics`: the named series, fed by admission, the pod's state and the call observer; every
counter the pod keeps (outbound and campaign ones included) is there, and `/healthz` shows the same."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.conversation.record import CallObserver, TurnMetrics
from telephony.app import create_app
from telephony.campaigns.dialer import Dialer
from telephony.pod import open_pod
from telephony.pod_health.memory import MemoryReader
from telephony.pod_health.metrics import STAGES, Metrics
from telephony.server import BackgroundServer
from tests.support.campaign_pod import campaign_pod
from tests.support.campaigns import start_campaign
from tests.support.cgroups import MiB, cgroup_v2, write
from tests.support.fake_twilio import ACCOUNT_SID
from tests.support.metrics import counter
from tests.support.settings import AGENT_NUMBER, make_settings
from tests.support.twilio_requests import post_signed, voice_params
from tests.support.waiting import until

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
    "switchboard_resumed_replies_total",
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
    app = create_app(settings, memory_reader=MemoryReader(root=tmp_path))
    with BackgroundServer(app, settings) as url:
        metrics: Metrics = app.state.pod.metrics
        metrics.turn_ended(TurnMetrics(turn=1, endpoint_ms=612, stt_ms=0, llm_ttft_ms=40, voice_to_voice_ms=950))
        metrics.barged_in()
        metrics.reply_resumed()
        metrics.tool_called("get_order_status", True, None)
        metrics.tool_called("list_recent_orders", False, "refused")
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
    assert value(found, "switchboard_resumed_replies_total") == 1
    assert value(found, "switchboard_tool_calls_total", outcome="ok") == 1
    assert value(found, "switchboard_tool_calls_total", outcome="refused") == 1
    for stage in STAGES:  # every stage is there, observed or not
        assert ("switchboard_turn_stage_seconds_count", (("stage", stage),)) in found
    assert value(found, "switchboard_turn_stage_seconds_count", stage="voice_to_voice") == 1
    assert value(found, "switchboard_turn_stage_seconds_sum", stage="voice_to_voice") == 0.95
    assert value(found, "switchboard_turn_stage_seconds_count", stage="tts_first_audio") == 0  # stage skipped


async def test_each_pod_has_its_own_registry() -> None:
    settings = make_settings()
    async with open_pod(settings) as first, open_pod(settings) as second:
        first.metrics.barged_in()
        assert first.metrics.registry.get_sample_value("switchboard_barge_ins_total") == 1
        assert second.metrics.registry.get_sample_value("switchboard_barge_ins_total") == 0


def test_metrics_is_a_call_observer() -> None:
    observer: CallObserver = Metrics()  # the composition root hands it to the voice agents
    observer.turn_ended(TurnMetrics(turn=1))  # no stage happened: nothing observed, nothing raised


def test_speculative_replies_are_counted_by_outcome() -> None:
    metrics = Metrics()
    registry = metrics.registry
    assert registry.get_sample_value("switchboard_speculative_replies_total", {"outcome": "used"}) == 0  # exposed
    for used in (True, True, False):
        metrics.speculation_ended(used)
    assert registry.get_sample_value("switchboard_speculative_replies_total", {"outcome": "used"}) == 2
    assert registry.get_sample_value("switchboard_speculative_replies_total", {"outcome": "wasted"}) == 1


def test_draining_shows_in_metrics(server: str) -> None:
    httpx.post(server + "/drain", timeout=10)
    found = samples(httpx.get(server + "/metrics").text)
    assert value(found, "switchboard_draining") == 1


COUNTERS = [
    "switchboard_calls_admitted_total",
    "switchboard_calls_refused_total",
    "switchboard_calls_unknown_number_total",
    "switchboard_webhooks_forbidden_total",
    "switchboard_streams_refused_total",
    "switchboard_streams_turned_away_total",
    "switchboard_webhooks_replayed_total",
    "switchboard_stream_messages_dropped_total",
    "switchboard_calls_started_total",
    "switchboard_calls_ended_total",
    "switchboard_calls_shed_total",
    "switchboard_memory_reliefs_total",
    "switchboard_barge_ins_total",
    "switchboard_tool_calls_total",
    "switchboard_outbound_calls_total",
    "switchboard_outbound_refused_total",
    "switchboard_campaign_calls_total",
]


def counter_key(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    """How `/healthz` names a counter sample: as `/metrics` writes it."""
    return name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else "")


@pytest.mark.mongodb
async def test_every_counter_is_scraped_and_healthz_shows_the_same_values() -> None:
    async with campaign_pod({"fetch_answer_url": True, "call_seconds": 0.1}) as pod:
        metrics = pod.edge.metrics
        placed = await pod.api.post(
            "/api/calls", json={"to": "+15550001111", "from_number": AGENT_NUMBER, "agent_id": "echo"}
        )
        assert placed.status_code == 201, placed.text
        await start_campaign(pod, ["+15550002222"])
        dialer = asyncio.create_task(Dialer(pod.edge, owner="pod").run())
        try:
            await until(lambda: counter(metrics, "switchboard_campaign_calls_total", status="completed") == 1)
        finally:
            dialer.cancel()
            await asyncio.gather(dialer, return_exceptions=True)
        await until(lambda: len(pod.fake.calls) == 2 and len(pod.fake.callbacks) >= 2)  # both calls reported
        forged = await pod.api.post("/twilio/voice", data=voice_params())  # no signature
        assert forged.status_code == 403
        unknown = await asyncio.to_thread(
            post_signed, pod.url, "/twilio/voice", voice_params(to="+15559999999", AccountSid=ACCOUNT_SID)
        )
        assert unknown.status_code == 200

        text = (await pod.api.get("/metrics")).text
        healthz = (await pod.api.get("/healthz")).json()["counters"]

    for name in COUNTERS:
        assert name in text, name
    for family in metrics.registry.collect():  # and any counter added later
        if family.type == "counter":
            assert f"{family.name}_total" in text, family.name
    found = samples(text)
    assert value(found, "switchboard_outbound_calls_total", event="placed") == 2
    assert value(found, "switchboard_outbound_calls_total", event="answered") == 2  # through admission
    assert value(found, "switchboard_calls_admitted_total") == 0  # inbound only
    assert value(found, "switchboard_campaign_calls_total", status="completed") == 1
    assert value(found, "switchboard_webhooks_forbidden_total") == 1
    assert value(found, "switchboard_calls_unknown_number_total") == 1
    on_metrics = {counter_key(name, labels): v for (name, labels), v in found.items() if name.endswith("_total")}
    assert healthz == on_metrics
