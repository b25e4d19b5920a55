"""Shared fixtures (helpers live in `tests/support/`): settings for a test pod, the real server on a
loopback port, a clock the test moves, and a guard that no server thread outlives its module."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

from telephony.app import create_app
from telephony.server import BackgroundServer
from telephony.settings import Settings
from tests.support.clock import FakeClock
from tests.support.settings import make_settings

SERVER_THREADS = {"uvicorn", "scripted-llm"}  # the names `LoopbackServer` and `ScriptedLlmServer` give theirs


@pytest.fixture(autouse=True, scope="module")
def no_server_outlives_its_module() -> Iterator[None]:
    """A server thread a module leaves behind serves, and logs into closed captures, through every
    later test (one broke an unrelated test through CPython 3.11's shared AST recursion count)."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t.name in SERVER_THREADS and t not in before and t.is_alive()]
    assert not left, f"{len(left)} server thread(s) still running after the module"


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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
