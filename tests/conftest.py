"""Shared fixtures (helpers live in `tests/support/`): settings for a test pod, the real server on a
loopback port, and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

from telephony.app import create_app
from telephony.server import BackgroundServer
from telephony.settings import Settings
from tests.support.clock import FakeClock
from tests.support.settings import make_settings


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
