"""A turn that fails on an engine is told to the call's observer by kind, so the pod can count speech
and model outages (`switchboard_engine_failures_total`, the alerts' source)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agents.engines.protocols import TranscriptionError
from agents.testing.fake_engines import FakeEngines
from agents.testing.scripted_llm import Fail, Reply, Step
from telephony.pod_health.metrics import ENGINE_FAILURES, Metrics
from tests.support.fake_call import fake_call
from tests.support.waiting import until

QUESTION = "Where is my order?"


def stt_fails(fakes: FakeEngines) -> None:
    fakes.stt.failures.append(TranscriptionError("the engine refused the audio"))


def speech_down(fakes: FakeEngines) -> None:
    fakes.tts.unavailable = True


@pytest.mark.parametrize(
    ("script", "break_it", "kind"),
    [
        pytest.param([Fail(503)], None, "model_unavailable", id="model-down"),
        pytest.param([], stt_fails, "speech_failed", id="stt-fails"),
        pytest.param([Reply(text="It shipped.")], speech_down, "speech_unavailable", id="speech-down"),
    ],
)
async def test_an_engine_failure_is_observed_by_kind(
    script: list[Step], break_it: Callable[[FakeEngines], None] | None, kind: str
) -> None:
    fakes = FakeEngines()
    fakes.chat.push(*script)
    async with fake_call(fakes=fakes) as call:
        if break_it is not None:
            break_it(fakes)
        call.say(QUESTION)
        await until(lambda: call.observed.engine_failures, what="the failure observed")
    assert call.observed.engine_failures == [kind]


def test_the_pod_counts_engine_failures_by_kind_exposed_from_the_start() -> None:
    metrics = Metrics()
    registry = metrics.registry
    for known in ENGINE_FAILURES:
        assert registry.get_sample_value("switchboard_engine_failures_total", {"kind": known}) == 0
    metrics.engine_failed("speech_unavailable")
    metrics.engine_failed("something the code does not know")
    assert registry.get_sample_value("switchboard_engine_failures_total", {"kind": "speech_unavailable"}) == 1
    assert registry.get_sample_value("switchboard_engine_failures_total", {"kind": "other"}) == 1
