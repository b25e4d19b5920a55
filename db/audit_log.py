"""The admin audit log: which API key changed what, and when.

One small document per admin write (never a secret: the key's id, the field names sent, not their
values), each cut to fixed bounds and removed by the server's TTL monitor after the retention, so
the collection cannot grow without bound however busy the API is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import AUDIT_LOG

MAX_TEXT = 200
"""Bound on each text field of an entry (path, resource id, each field name)."""
MAX_FIELDS = 50
"""Bound on the field names an entry lists."""
DEFAULT_RETENTION_DAYS = 365
TEXT_FIELDS = ("key_id", "method", "path", "resource", "resource_id")


@translates_driver_errors
class AuditLog:
    def __init__(self, database: Database, retention_days: int = DEFAULT_RETENTION_DAYS) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self._database = database
        self._collection = database.collection(AUDIT_LOG)
        self.retention = timedelta(days=retention_days)

    async def add(self, entry: Mapping[str, Any], *, at: datetime | None = None) -> None:
        """Store one write: the text fields, `fields` (names), `status`; anything else is dropped."""
        at = at or datetime.now(UTC)
        document: dict[str, Any] = {name: str(entry.get(name) or "")[:MAX_TEXT] for name in TEXT_FIELDS}
        fields = entry.get("fields") or []
        document["fields"] = [str(name)[:MAX_TEXT] for name in list(fields)[:MAX_FIELDS]]
        status = entry.get("status")
        document["status"] = status if isinstance(status, int) else 0
        document["at"] = at
        document["expires_at"] = at + self.retention
        await self._collection.insert_one(document)

    async def page(self, *, before: tuple[datetime, str] | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first; `before`: the (`at`, `id`) of the last entry of the previous page."""
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        filter: dict[str, Any] = {}
        if before is not None:
            at, last = before
            if not ObjectId.is_valid(last):
                raise ValueError("not an audit entry id")
            filter = {"$or": [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": ObjectId(last)}}]}
        cursor = self._database.find(
            AUDIT_LOG,
            filter,
            {},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("at", -1), ("_id", -1)],
        )
        return [{**document, "id": str(document.pop("_id"))} async for document in cursor]
