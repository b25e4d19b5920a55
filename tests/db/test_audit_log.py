"""The admin audit log: one entry per write, newest first in pages, bounded in size and kept for a
retention (a TTL index on `expires_at`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db import AuditLog, Database, ensure_indexes
from db.audit_log import MAX_FIELDS, MAX_TEXT
from db.indexes import AUDIT_LOG

pytestmark = pytest.mark.mongodb

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def write(n: int, **changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "key_id": "k" * 12,
        "method": "PUT",
        "path": f"/agents/a{n}",
        "resource": "agents",
        "resource_id": f"a{n}",
        "fields": ["greeting"],
        "status": 200,
    }
    return entry | changes


async def test_entries_are_listed_newest_first_in_pages(database: Database) -> None:
    log = AuditLog(database, retention_days=30)
    for n in range(5):
        await log.add(write(n), at=AT + timedelta(seconds=n))
    first = await log.page(limit=2)
    assert [e["resource_id"] for e in first] == ["a4", "a3"]
    rest = await log.page(before=(aware(first[-1]["at"]), first[-1]["id"]), limit=10)
    assert [e["resource_id"] for e in rest] == ["a2", "a1", "a0"]
    assert aware(rest[0]["expires_at"]) == AT + timedelta(seconds=2, days=30)


async def test_an_entry_is_bounded_whatever_the_request_held(database: Database) -> None:
    log = AuditLog(database)
    await log.add(write(0, path="/" + "x" * 5000, fields=[f"f{i}" * 200 for i in range(500)], extra="dropped"), at=AT)
    [entry] = await log.page(limit=1)
    assert len(entry["path"]) <= MAX_TEXT and len(entry["fields"]) == MAX_FIELDS
    assert all(len(f) <= MAX_TEXT for f in entry["fields"]) and "extra" not in entry


async def test_the_audit_log_has_a_ttl_index(database: Database) -> None:
    await ensure_indexes(database)
    indexes = await database.collection(AUDIT_LOG).index_information()
    assert indexes["expires_at"]["expireAfterSeconds"] == 0
    assert list(indexes["at_id"]["key"]) == [("at", -1), ("_id", -1)]
