"""Shared fixtures: settings for a test pod and the real server on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

from telephony.app import create_app
from telephony.server import BackgroundServer
from telephony.settings import Settings

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
AGENT_NUMBER = "+15550100"
TRANSFER_NUMBER = "+15550199"
TEST_PROCESS_MEMORY_BYTES = 64 << 30
"""The memory budget of a test pod. One pytest process holds several model stacks at once, far
past a real pod's 1 GiB; the guard's own tests set their limits (and fake cgroups) explicitly."""


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "twilio_auth_token": AUTH_TOKEN,
        "numbers": {AGENT_NUMBER: "echo"},
        "transfer_number": TRANSFER_NUMBER,
        "memory_limit_bytes": TEST_PROCESS_MEMORY_BYTES,
        "serve_stored_agents": False,  # a pod with a database would load the voice engines
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
def server(app: Starlette, settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free loopback port (its own thread and event loop); yields the
    base URL. Tests needing other settings override the `settings` fixture."""
    with BackgroundServer(app, settings) as url:
        yield url


class FakeClock:
    """A clock that moves only when the test says (`clock.now += 61`)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
