"""Tool fixtures: the built-in tools on seeded business data, with every query recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from db import BusinessData, Database, QueryLog, SafeQuery
from db.seed import seed_demo
from tests.support.db import make_database
from tools import BUILTIN, CallerIdentity, InMemoryToolAudit, ToolContext, ToolExecutor, builtin_tools


@pytest.fixture
async def database(make_database: Callable[..., Awaitable[Database]]) -> Database:
    database = await make_database()
    await seed_demo(database)
    return database


@pytest.fixture
def query_log() -> QueryLog:
    return QueryLog()


@pytest.fixture
def business(database: Database, query_log: QueryLog) -> BusinessData:
    return BusinessData(SafeQuery(database, query_log))


@pytest.fixture
def audit() -> InMemoryToolAudit:
    return InMemoryToolAudit()


@pytest.fixture
def executor(business: BusinessData, audit: InMemoryToolAudit) -> ToolExecutor:
    return ToolExecutor(builtin_tools(business, list(BUILTIN)), audit)


@pytest.fixture
def context() -> ToolContext:
    """A call from Ada Lovelace's number, verified by the server as her (customer C-1001)."""
    return ToolContext(
        call_sid="CA0123", agent_id="support", caller_number="+15550101", caller=CallerIdentity(customer_key="C-1001")
    )


__all__ = ["make_database"]
