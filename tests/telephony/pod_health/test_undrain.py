"""A drain can be revoked: `POST /undrain` (and `switchboard undrain`) admits calls again, answers a
drain still waiting at once, and is guarded exactly as `POST /drain` is."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import httpx
import pytest
from starlette.applications import Starlette

from telephony.app import create_app
from telephony.cli.main import main
from telephony.pod_health.drain import Drain
from telephony.server import BackgroundServer
from telephony.settings import Settings
from tests.support.settings import make_settings
from tests.support.twilio_requests import post_signed, voice_params

TOKEN = "drain-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def verbs(response: httpx.Response) -> list[str]:
    return [verb.tag for verb in ET.fromstring(response.text)]


def test_a_drain_ends_and_can_begin_again() -> None:
    now = [100.0]
    drain = Drain(clock=lambda: now[0])
    drain.begin()
    assert drain.draining and drain.end() is True
    assert not drain.draining and drain.end() is False  # nothing to revoke
    now[0] = 200.0
    drain.begin()
    assert drain.started_at == 200.0


def test_undrain_admits_calls_again(server: str, app: Starlette) -> None:
    assert httpx.post(server + "/drain", timeout=10).status_code == 200
    assert verbs(post_signed(server, "/twilio/voice", voice_params())) == ["Say", "Hangup"]
    undrained = httpx.post(server + "/undrain", timeout=10)
    assert undrained.status_code == 200 and undrained.json() == {"draining": False, "was_draining": True}
    assert httpx.get(server + "/readyz").status_code == 200
    assert "Connect" in verbs(post_signed(server, "/twilio/voice", voice_params()))
    assert httpx.post(server + "/undrain", timeout=10).json()["was_draining"] is False


def test_undrain_from_another_address_is_refused(server: str, app: Starlette) -> None:
    app.state.pod.drain.begin()
    assert httpx.post(server + "/undrain", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert app.state.pod.drain.draining


class TestToken:
    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(drain_token=TOKEN)

    def test_undrain_needs_the_token_even_from_loopback(self, server: str, app: Starlette) -> None:
        app.state.pod.drain.begin()
        assert httpx.post(server + "/undrain").status_code == 401
        assert httpx.post(server + "/undrain", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert app.state.pod.drain.draining
        assert httpx.post(server + "/undrain", headers=BEARER).status_code == 200
        assert not app.state.pod.drain.draining


async def test_a_waiting_drain_answers_at_once_when_revoked() -> None:
    settings = make_settings(drain_timeout_seconds=60)
    app = create_app(settings)
    with BackgroundServer(app, settings) as url:
        reserved = await asyncio.to_thread(post_signed, url, "/twilio/voice", voice_params())
        assert "Connect" in verbs(reserved)  # a call reserved, whose stream never comes: the drain waits
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            waiting = asyncio.create_task(client.post("/drain"))
            while not app.state.pod.drain.draining:
                await asyncio.sleep(0.01)
            assert (await client.post("/undrain")).status_code == 200
            answered = await asyncio.wait_for(waiting, timeout=5)
    assert answered.status_code == 409 and answered.json()["revoked"] is True and answered.json()["drained"] is False


def test_cli_undrain(capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(drain_token=TOKEN)
    app = create_app(settings)
    with BackgroundServer(app, settings) as url:
        app.state.pod.drain.begin()
        assert main(["undrain", "--url", url, "--token", "wrong-token"]) == 1
        assert app.state.pod.drain.draining
        assert main(["undrain", "--url", url, "--token", TOKEN]) == 0
        assert not app.state.pod.drain.draining
    assert '"draining":false' in capsys.readouterr().out
