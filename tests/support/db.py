"""Where database tests run: the in-memory fake by default, a real server when MONGODB_URI is set.

The fake is mongomock-motor's `AsyncMongoMockClient` behind `db.Database` (it accepts but ignores
`max_time_ms` and `batch_size`). With MONGODB_URI each database gets a unique name and is dropped
afterwards, so runs can share a server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from db import Database, DbSettings, connect, in_memory

MONGODB_URI = os.environ.get("MONGODB_URI")


@asynccontextmanager
async def open_test_database(**overrides: object) -> AsyncIterator[Database]:
    if MONGODB_URI:
        settings = DbSettings(uri=MONGODB_URI, database=f"switchboard_test_{uuid.uuid4().hex[:12]}", **overrides)
        database = connect(settings)
        await database.ping()
        try:
            yield database
        finally:
            await database.drop()
            await database.close()
    else:
        database = in_memory(DbSettings(database="switchboard_test", **overrides))
        try:
            yield database
        finally:
            await database.close()


@pytest.fixture
async def make_database() -> AsyncIterator[Callable[..., Awaitable[Database]]]:
    """`await make_database(max_result_bytes=2048)`: a fresh database with those settings."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: object) -> Database:
            return await stack.enter_async_context(open_test_database(**overrides))

        yield make
