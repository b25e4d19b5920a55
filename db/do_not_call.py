"""The do-not-call list: numbers no campaign may dial, checked by the dialer before every attempt."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import DO_NOT_CALL
from db.phone_numbers import check_number

MAX_BATCH = 1000
"""Bound on numbers added in one call."""


@translates_driver_errors
class DoNotCall:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._collection = database.collection(DO_NOT_CALL)

    async def add(self, numbers: Iterable[str], *, reason: str = "") -> int:
        """Add E.164 numbers (ValueError on a malformed one); returns how many were new."""
        checked = sorted({check_number(n) for n in numbers})
        if len(checked) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} numbers at once")
        if not checked:
            return 0
        now = datetime.now(UTC)
        added = 0
        for number in checked:  # one upsert each: bounded by MAX_BATCH, and idempotent
            result = await self._collection.update_one(
                {"_id": number}, {"$setOnInsert": {"reason": reason[:200], "added_at": now}}, upsert=True
            )
            added += result.upserted_id is not None
        return added

    async def remove(self, number: str) -> bool:
        result = await self._collection.delete_one({"_id": check_number(number)})
        return bool(result.deleted_count)

    async def contains(self, number: str) -> bool:
        try:
            number = check_number(number)
        except ValueError:
            return False
        return await self._collection.find_one({"_id": number}, {"_id": 1}) is not None

    async def page(self, *, after: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        filter: dict[str, Any] = {} if after is None else {"_id": {"$gt": str(after)}}
        cursor = self._database.find(
            DO_NOT_CALL,
            filter,
            {"reason": 1, "added_at": 1},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("_id", 1)],
        )
        return [document async for document in cursor]
