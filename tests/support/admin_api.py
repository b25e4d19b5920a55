"""The admin API as a test reaches it: the app's pod open on a test database, an httpx client with a key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from db import Database
from telephony.app import create_app
from tests.support.settings import make_settings

ADMIN_KEY = "admin-key-0123456789abcdef"


@asynccontextmanager
async def admin_client(
    database: Database, key: str | None = ADMIN_KEY, **settings: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The app, its pod open on `database` (the lifespan run here: ASGITransport runs none).
    `api_keys` defaults to one admin key with every scope."""
    values: dict[str, object] = {"api_keys": f"{ADMIN_KEY}:*"} | settings
    app = create_app(make_settings(**values), database=database)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t", headers=headers) as api,
    ):
        yield api
