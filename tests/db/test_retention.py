"""Call records expire: `expires_at` from the agent's or the pod's retention, and a TTL index on it.

The in-memory fake lists indexes but runs no TTL monitor, so there the test shows the index and the
field; with MONGODB_URI set, the last test waits for the server to delete an expired record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from db import CallRecords, Database, ensure_indexes
from db.indexes import CALLS
from tests.support.db import MONGODB_URI

pytestmark = pytest.mark.mongodb

STARTED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TTL_MONITOR_WAIT_S = 150.0
"""The server's TTL monitor runs every 60 s; a deletion may take up to two rounds."""


def aware(value: datetime) -> datetime:
    """Servers hand datetimes back naive (in UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_the_calls_collection_has_a_ttl_index_on_expires_at(database: Database) -> None:
    await ensure_indexes(database)
    indexes = await database.collection(CALLS).index_information()
    assert list(indexes["expires_at"]["key"]) == [("expires_at", 1)]
    assert indexes["expires_at"]["expireAfterSeconds"] == 0


async def test_a_record_expires_after_the_pod_default(make_database: Callable[..., Awaitable[Database]]) -> None:
    calls = CallRecords(await make_database(call_retention_days=30))
    await calls.start("CA1", agent_id="support", from_number="+1", to_number="+2", started_at=STARTED)
    record = await calls.get("CA1")
    assert record is not None and aware(record["expires_at"]) == STARTED + timedelta(days=30)


async def test_the_agents_retention_wins_even_over_a_record_the_dialler_made(database: Database) -> None:
    calls = CallRecords(database)
    await calls.start("CA1", agent_id="sales", from_number="+1", to_number="+2", started_at=STARTED)
    await calls.start("CA1", agent_id="sales", from_number="+1", to_number="+2", started_at=STARTED, retention_days=7)
    record = await calls.get("CA1")
    assert record is not None and aware(record["expires_at"]) == STARTED + timedelta(days=7)
    assert record["agent_id"] == "sales" and record["transcript"] == []


@pytest.mark.parametrize("days", [0, -1, 3651, True, 1.5])
async def test_a_retention_outside_the_bounds_is_refused(database: Database, days: object) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        await CallRecords(database).start("CA1", agent_id="a", from_number="+1", to_number="+2", retention_days=days)  # type: ignore[arg-type]


@pytest.mark.skipif(not MONGODB_URI, reason="the TTL monitor runs on a real server only (set MONGODB_URI)")
async def test_the_server_removes_a_record_past_retention(database: Database) -> None:
    await ensure_indexes(database)
    calls = CallRecords(database)
    long_ago = datetime.now(UTC) - timedelta(days=3)
    await calls.start("CA-old", agent_id="a", from_number="+1", to_number="+2", started_at=long_ago, retention_days=1)
    await calls.start("CA-new", agent_id="a", from_number="+1", to_number="+2", retention_days=1)
    deadline = time.monotonic() + TTL_MONITOR_WAIT_S
    while await calls.get("CA-old") is not None:
        assert time.monotonic() < deadline, "the TTL monitor did not remove the expired record"
        await asyncio.sleep(2.0)
    assert await calls.get("CA-new") is not None
