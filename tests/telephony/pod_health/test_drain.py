"""`POST /drain`: who may ask, refusing new calls at once, and waiting for calls in progress to end
(a whole echo call through the Twilio simulator) without cutting them off."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import httpx
import pytest
from starlette.applications import Starlette

from telephony.app import create_app
from telephony.cli.main import main
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.simulator import Pause, Say, SimulatedCall, synthetic_utterance
from tests.support.metrics import counter
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN, make_settings
from tests.support.twilio_requests import post_signed, voice_params


def test_drain_with_no_calls_returns_at_once_and_the_pod_stays_unready(server: str, app: Starlette) -> None:
    response = httpx.post(server + "/drain", timeout=10)
    assert response.status_code == 200
    assert response.json()["drained"] is True and response.json()["calls"] == 0
    assert app.state.pod.drain.draining
    assert httpx.get(server + "/readyz").json()["reason"] == "draining"
    assert httpx.post(server + "/drain", timeout=10).status_code == 200  # a second drain is harmless
    assert "Say" in post_signed(server, "/twilio/voice", voice_params()).text


def test_drain_from_another_address_is_refused(server: str, app: Starlette) -> None:
    # uvicorn trusts X-Forwarded-For from loopback (a local proxy), so the client is not loopback.
    response = httpx.post(server + "/drain", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403
    assert not app.state.pod.drain.draining


def test_drain_get_is_405(server: str) -> None:
    assert httpx.get(server + "/drain").status_code == 405


class TestToken:
    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(drain_token="s3cret-drain-token")

    def test_token_is_required_even_from_loopback(self, server: str, app: Starlette) -> None:
        assert httpx.post(server + "/drain").status_code == 401
        wrong = httpx.post(server + "/drain", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert not app.state.pod.drain.draining
        ok = httpx.post(
            server + "/drain",
            headers={"Authorization": "Bearer s3cret-drain-token", "X-Forwarded-For": "203.0.113.9"},
            timeout=10,
        )
        assert ok.status_code == 200 and app.state.pod.drain.draining


def test_drain_times_out_with_a_call_still_held() -> None:
    settings = make_settings(drain_timeout_seconds=0.5)
    app = create_app(settings)
    with BackgroundServer(app, settings) as url:
        assert "Connect" in post_signed(url, "/twilio/voice", voice_params()).text  # reserved, never streams
        started = time.monotonic()
        response = httpx.post(url + "/drain", timeout=10)
        waited = time.monotonic() - started
    assert response.status_code == 503
    assert response.json() == {"drained": False, "calls": 1, "waited_s": response.json()["waited_s"]}
    assert 0.4 < waited < 5


async def test_drain_waits_for_the_call_in_progress_which_is_not_cut_off(server: str, app: Starlette) -> None:
    edge = app.state.pod
    # About 6 s: lead-in 1 s, greeting, a 1.2 s utterance echoed back, 2.5 s pause, 1 s tail.
    call = SimulatedCall(
        server,
        AUTH_TOKEN,
        to=AGENT_NUMBER,
        script=[Pause(0.5), Say(synthetic_utterance(1.2), "hello"), Pause(2.5)],
        tail_s=1.0,
    )
    call_task = asyncio.create_task(call.run())
    for _ in range(200):
        if edge.calls.active == 1:
            break
        await asyncio.sleep(0.02)
    assert edge.calls.active == 1

    async with httpx.AsyncClient(base_url=server, timeout=60) as client:
        drain_task = asyncio.create_task(client.post("/drain"))
        for _ in range(100):
            if edge.drain.draining:
                break
            await asyncio.sleep(0.01)
        assert edge.drain.draining

        # New calls are refused at once and readiness is 503, while the drain is still waiting.
        refused = await asyncio.to_thread(post_signed, server, "/twilio/voice", voice_params())
        assert [verb.tag for verb in ET.fromstring(refused.text)] == ["Say", "Hangup"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"] == "draining"
        assert not drain_task.done()

        report = await asyncio.wait_for(call_task, timeout=60)
        drained = await asyncio.wait_for(drain_task, timeout=30)

    assert drained.status_code == 200 and drained.json()["drained"] is True
    assert drained.json()["waited_s"] > 1.0  # it waited for the rest of the call
    assert edge.calls.count == 0
    # The call ran to its natural end: the caller hung up after hearing the greeting and the echo.
    assert report.outcome == "caller hung up"
    assert report.marks_echoed == ["greeting", "reply-1"]
    assert counter(edge.metrics, "switchboard_calls_refused_total", reason="draining") == 1


def test_cli_drain_asks_the_server_and_reports(server: str, app: Starlette, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drain", "--url", server]) == 0
    assert app.state.pod.drain.draining
    assert '"drained":true' in capsys.readouterr().out


def test_cli_drain_fails_when_refused(capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(drain_token="right-token")
    app = create_app(settings)
    with BackgroundServer(app, settings) as url:
        assert main(["drain", "--url", url, "--token", "wrong-token"]) == 1
        assert not app.state.pod.drain.draining
        assert main(["drain", "--url", url, "--token", "right-token"]) == 0
