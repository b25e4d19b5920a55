"""Declared-tool fixtures: the seeded business database behind a recorded `SafeQuery`, the
resources a build needs, and a call whose caller is verified as C-1001 (the parent conftest's
`database` and `query_log` are reused)."""

from __future__ import annotations

import pytest

from db import Database, QueryLog, SafeQuery
from tools import CallerIdentity, ToolContext
from tools.declared import DeclaredToolResources

CUSTOMER_KEY = "C-1001"


@pytest.fixture
def safe_query(database: Database, query_log: QueryLog) -> SafeQuery:
    return SafeQuery(database, query_log)


@pytest.fixture
def resources(safe_query: SafeQuery) -> DeclaredToolResources:
    return DeclaredToolResources(safe_query=safe_query)


@pytest.fixture
def verified() -> ToolContext:
    """A call from +15550101 whose caller has been verified as C-1001."""
    return ToolContext("CA-declared", "support", "+15550101", CallerIdentity(customer_key=CUSTOMER_KEY))


@pytest.fixture
def unverified() -> ToolContext:
    """A call from +15550101 whose caller has not been verified (yet)."""
    return ToolContext("CA-declared", "support", "+15550101", CallerIdentity())
