"""Campaign contacts and their leases: how many pods dial one campaign without dialling anyone twice.

A contact moves `pending` -> `leased` -> `dialing` -> `in_call` -> `done` | `failed`, or back to
`pending` for a retry (busy, no answer, failed) or a later calling window. Every move is one atomic
update whose filter names the state (and the lease owner or the attempt) it moves from, so two pods,
or a pod and a late status callback, can never both win.

- `lease` takes one due contact with `find_one_and_update`; the lease expires, so contacts leased
  by a pod that died are taken again by the others.
- `start_dialing` counts the attempt *before* Twilio is asked; the status callback names the
  attempt it reports, so a callback for an old attempt changes nothing.
- `recover_stale` ends attempts whose pod vanished mid-call without a status callback: the attempt
  counts as failed and is retried like any other failure.

Times are epoch seconds (floats) from the dialer's clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError

from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import CONTACTS

State = Literal["pending", "leased", "dialing", "in_call", "done", "failed", "skipped", "cancelled"]
STATES: tuple[State, ...] = ("pending", "leased", "dialing", "in_call", "done", "failed", "skipped", "cancelled")
OPEN_STATES = ("pending", "leased", "dialing", "in_call")
RETRYABLE = frozenset({"busy", "no-answer", "failed", "lost"})
"""Twilio call statuses after which a contact is tried again (up to the campaign's attempt limit);
`lost` is an attempt whose status never came back."""
MAX_HISTORY = 20
"""Bound on the per-contact attempt history kept (oldest dropped)."""


@dataclass
class InsertReport:
    inserted: int = 0
    duplicates: list[int] = field(default_factory=list)
    """Indexes (in the batch given) of numbers already in the campaign."""


def contact_key(contact_id: object) -> ObjectId:
    if isinstance(contact_id, ObjectId):
        return contact_id
    if not isinstance(contact_id, str) or not ObjectId.is_valid(contact_id):
        raise ValueError("a contact id is 24 hex characters")
    return ObjectId(contact_id)


@translates_driver_errors
class Contacts:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._collection = database.collection(CONTACTS)

    async def insert(
        self, campaign_id: str, contacts: Sequence[Mapping[str, Any]], *, now: float = 0.0
    ) -> InsertReport:
        """Add validated contacts (`phone`, `timezone`, `variables`, `row`); numbers already in the
        campaign are reported, not stored twice."""
        if not contacts:
            return InsertReport()
        documents = [
            {
                "campaign_id": campaign_id,
                "row": contact.get("row"),
                "phone": contact["phone"],
                "timezone": contact.get("timezone"),
                "variables": dict(contact.get("variables") or {}),
                "state": "pending",
                "attempts": 0,
                "not_before": now,
                "lease_owner": None,
                "lease_until": 0.0,
                "call_sid": None,
                "slot": None,
                "last_status": None,
                "history": [],
            }
            for contact in contacts
        ]
        try:
            result = await self._collection.insert_many(documents, ordered=False)
            return InsertReport(inserted=len(result.inserted_ids))
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            duplicates = sorted(int(e["index"]) for e in errors if e.get("code") == 11000)
            if len(duplicates) != len(errors):
                raise
            return InsertReport(
                inserted=int(exc.details.get("nInserted", len(documents) - len(duplicates))), duplicates=duplicates
            )

    async def get(self, contact_id: str | ObjectId) -> dict[str, Any] | None:
        return await self._collection.find_one({"_id": contact_key(contact_id)})

    async def lease(self, campaign_id: str, owner: str, *, now: float, lease_seconds: float) -> dict[str, Any] | None:
        """Atomically take the next due contact (pending and due, or leased by someone whose lease
        ran out) for `lease_seconds`; None when nothing is due."""
        return await self._collection.find_one_and_update(
            {
                "campaign_id": campaign_id,
                "$or": [
                    {"state": "pending", "not_before": {"$lte": now}},
                    {"state": "leased", "lease_until": {"$lt": now}},
                ],
            },
            {"$set": {"state": "leased", "lease_owner": owner, "lease_until": now + lease_seconds}},
            sort=[("not_before", 1), ("_id", 1)],
            return_document=ReturnDocument.AFTER,
        )

    async def defer(self, contact_id: ObjectId, owner: str, *, not_before: float) -> bool:
        """Give a leased contact back until `not_before` (outside its calling window); no attempt used."""
        result = await self._collection.update_one(
            {"_id": contact_id, "state": "leased", "lease_owner": owner},
            {"$set": {"state": "pending", "not_before": not_before, "lease_owner": None, "lease_until": 0.0}},
        )
        return bool(result.modified_count)

    async def skip(self, contact_id: ObjectId, owner: str, *, reason: str) -> bool:
        """Never dial this contact (e.g. on the do-not-call list)."""
        result = await self._collection.update_one(
            {"_id": contact_id, "state": "leased", "lease_owner": owner},
            {"$set": {"state": "skipped", "last_status": reason[:64], "lease_owner": None}},
        )
        return bool(result.modified_count)

    async def start_dialing(self, contact_id: ObjectId, owner: str, *, slot: str, until: float) -> int | None:
        """Count a new attempt before Twilio is asked; its number, or None if the lease was lost."""
        document = await self._collection.find_one_and_update(
            {"_id": contact_id, "state": "leased", "lease_owner": owner},
            {"$set": {"state": "dialing", "lease_until": until, "slot": slot}, "$inc": {"attempts": 1}},
            projection={"attempts": 1},
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else int(document["attempts"])

    async def undo_dialing(self, contact_id: ObjectId, attempt: int, *, not_before: float, reason: str) -> bool:
        """Twilio never took the call (it kept refusing): the attempt does not count; try again later."""
        result = await self._collection.update_one(
            {"_id": contact_id, "state": "dialing", "attempts": attempt},
            {
                "$set": {
                    "state": "pending",
                    "not_before": not_before,
                    "lease_owner": None,
                    "lease_until": 0.0,
                    "slot": None,
                    "last_status": reason[:64],
                },
                "$inc": {"attempts": -1},
            },
        )
        return bool(result.modified_count)

    async def dialed(
        self, contact_id: ObjectId, attempt: int, *, call_sid: str, until: float, slot: str | None = None
    ) -> bool:
        """Twilio took the call; it is now waiting for its status callback (until `until`). `slot`:
        the concurrency slot it holds, where it is not the one taken when dialing began."""
        values: dict[str, Any] = {"state": "in_call", "call_sid": call_sid, "lease_until": until}
        if slot is not None:
            values["slot"] = slot
        result = await self._collection.update_one(
            {"_id": contact_id, "state": "dialing", "attempts": attempt}, {"$set": values}
        )
        return bool(result.modified_count)

    async def finish_attempt(
        self,
        contact_id: str | ObjectId,
        attempt: int,
        *,
        status: str,
        call_sid: str | None,
        now: float,
        max_attempts: int,
        retry_delay: float,
    ) -> dict[str, Any] | None:
        """Apply the final status of `attempt`: done, retry later, or failed for good. Returns the
        contact as it was before (with its `slot`), or None if this attempt was already settled."""
        key = contact_key(contact_id)
        entry = {"attempt": attempt, "status": status[:32], "call_sid": call_sid, "at": now}
        if status in RETRYABLE:
            retry = await self._settle(
                key,
                attempt,
                {"attempts": {"$lt": max_attempts}},
                {"state": "pending", "not_before": now + retry_delay},
                status,
                entry,
            )
            if retry is not None:
                return retry
            return await self._settle(key, attempt, {}, {"state": "failed"}, status, entry)
        final = "done" if status == "completed" else "failed"
        return await self._settle(key, attempt, {}, {"state": final}, status, entry)

    async def _settle(
        self,
        key: ObjectId,
        attempt: int,
        extra: dict[str, Any],
        values: dict[str, Any],
        status: str,
        entry: dict[str, Any],
    ) -> dict[str, Any] | None:
        return await self._collection.find_one_and_update(
            {"_id": key, "attempts": attempt, "state": {"$in": ["dialing", "in_call"]}, **extra},
            {
                "$set": {**values, "last_status": status[:32], "lease_owner": None, "lease_until": 0.0, "slot": None},
                "$push": {"history": {"$each": [entry], "$slice": -MAX_HISTORY}},
            },
            return_document=ReturnDocument.BEFORE,
        )

    async def stale_attempts(self, campaign_id: str, *, now: float, limit: int = 100) -> list[dict[str, Any]]:
        """Attempts whose pod or callback never came back (lease long expired), at most `limit`."""
        s = self._database.settings
        cursor = self._database.find(
            CONTACTS,
            {"campaign_id": campaign_id, "state": {"$in": ["dialing", "in_call"]}, "lease_until": {"$lt": now}},
            {"attempts": 1, "call_sid": 1, "slot": 1},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
        )
        return [document async for document in cursor]

    async def cancel_open(self, campaign_id: str) -> int:
        """A cancelled campaign's contacts not yet dialled will not be."""
        result = await self._collection.update_many(
            {"campaign_id": campaign_id, "state": {"$in": ["pending", "leased"]}},
            {"$set": {"state": "cancelled", "lease_owner": None}},
        )
        return int(result.modified_count)

    async def counts(self, campaign_id: str) -> dict[str, int]:
        """Contacts per state (every state listed), plus `attempts`: calls placed so far."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"campaign_id": campaign_id}},
            {"$group": {"_id": "$state", "n": {"$sum": 1}, "attempts": {"$sum": "$attempts"}}},
        ]
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        attempts = 0
        cursor = await _aggregate(self._collection, pipeline, self._database.settings.max_time_ms)
        async for row in cursor:
            counts[str(row["_id"])] = int(row["n"])
            attempts += int(row["attempts"])
        return {**counts, "attempts": attempts}

    async def next_due(self, campaign_id: str) -> float | None:
        """When the earliest pending contact becomes due (None: nothing pending)."""
        document = await self._collection.find_one(
            {"campaign_id": campaign_id, "state": "pending"}, {"not_before": 1}, sort=[("not_before", 1)]
        )
        return None if document is None else float(document["not_before"])

    async def page(self, campaign_id: str, *, after: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        filter: dict[str, Any] = {"campaign_id": campaign_id}
        if after is not None:
            filter["_id"] = {"$gt": contact_key(after)}
        cursor = self._database.find(
            CONTACTS,
            filter,
            {"history": 0},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("_id", 1)],
        )
        return [document async for document in cursor]


async def _aggregate(collection: Any, pipeline: list[dict[str, Any]], max_time_ms: int) -> Any:
    """`aggregate` is a coroutine in PyMongo's async API and a plain call in the fake."""
    import inspect

    cursor = collection.aggregate(pipeline, maxTimeMS=max_time_ms)
    if inspect.isawaitable(cursor):
        cursor = await cursor
    return cursor
