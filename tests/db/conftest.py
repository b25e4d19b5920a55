"""Database fixtures: `database` (default settings) and `make_database(**settings)` for tighter bounds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from db import Database, QueryLog, SafeQuery
from tests.support.db import make_database


@pytest.fixture
async def database(make_database: Callable[..., Awaitable[Database]]) -> Database:
    return await make_database()


@pytest.fixture
def query_log() -> QueryLog:
    return QueryLog()


@pytest.fixture
def safe_query(database: Database, query_log: QueryLog) -> SafeQuery:
    return SafeQuery(database, query_log)


__all__ = ["make_database"]
