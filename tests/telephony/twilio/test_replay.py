"""Webhook replay: a CallSid answered with a call token once gets no second token (issue 15)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest
from starlette.applications import Starlette

from telephony.settings import Settings
from telephony.twilio.replay import SeenCalls
from tests.support.clock import FakeClock
from tests.support.metrics import counter
from tests.support.settings import make_settings
from tests.support.twilio_requests import post_signed, voice_params

REPLAYED = "switchboard_webhooks_replayed_total"


def verbs(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [verb.tag for verb in ET.fromstring(response.text)]


def test_seen_calls_remember_within_the_window(clock: FakeClock) -> None:
    seen = SeenCalls(max_calls=10, window_seconds=60, clock=clock)
    assert seen.add("CA1") is True
    assert seen.add("CA1") is False
    assert "CA1" in seen
    clock.now += 61
    assert "CA1" not in seen
    assert seen.add("CA1") is True


def test_seen_calls_are_bounded_oldest_first(clock: FakeClock) -> None:
    seen = SeenCalls(max_calls=3, window_seconds=3600, clock=clock)
    for n in range(5):
        seen.add(f"CA{n}")
    assert len(seen) == 3
    assert "CA0" not in seen and "CA1" not in seen and "CA4" in seen


def test_seen_calls_refuse_a_nonsense_bound() -> None:
    with pytest.raises(ValueError):
        SeenCalls(max_calls=0, window_seconds=60)


def test_a_replayed_voice_webhook_gets_no_token_and_no_place(server: str, app: Starlette, settings: Settings) -> None:
    params = voice_params()
    first = post_signed(server, "/twilio/voice", params)
    assert verbs(first) == ["Connect"]
    pod = app.state.pod
    assert pod.calls.count == 1
    replay = post_signed(server, "/twilio/voice", params)  # the same signed request, sent again
    assert verbs(replay) == ["Say", "Hangup"]
    assert "token" not in replay.text and "Stream" not in replay.text
    assert pod.calls.count == 1
    assert counter(pod.metrics, REPLAYED) == 1


def test_a_replay_after_the_call_is_over_still_gets_no_token(server: str, app: Starlette) -> None:
    params = voice_params()
    assert verbs(post_signed(server, "/twilio/voice", params)) == ["Connect"]
    app.state.pod.calls.release(params["CallSid"])  # the call came and went
    assert verbs(post_signed(server, "/twilio/voice", params)) == ["Say", "Hangup"]
    assert app.state.pod.calls.count == 0  # the replay holds no place either


def test_a_replayed_outbound_answer_gets_no_token(server: str, app: Starlette) -> None:
    params = voice_params(Direction="outbound-api")
    assert verbs(post_signed(server, "/twilio/outbound?agent=echo", params)) == ["Connect"]
    replay = post_signed(server, "/twilio/outbound?agent=echo", params)
    assert "Connect" not in verbs(replay) and "token" not in replay.text
    assert counter(app.state.pod.metrics, REPLAYED) == 1


class TestBusyPod:
    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(max_concurrent_calls=1)

    def test_a_replay_does_not_bypass_admission_on_a_full_pod(self, server: str, app: Starlette) -> None:
        params = voice_params()
        assert verbs(post_signed(server, "/twilio/voice", params)) == ["Connect"]
        assert "Connect" not in verbs(post_signed(server, "/twilio/voice", params))
        assert app.state.pod.calls.count == 1
