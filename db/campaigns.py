"""Campaigns: their settings and status, and the two things every dialer pod shares through them.

- **Concurrency slots.** A campaign has `max_concurrent_calls` slot documents. A pod dials only
  while it holds a slot, taken atomically (`find_one_and_update` on a slot whose lease has run out)
  and released when Twilio reports the call over. Each hold has an expiry, so a slot held by a pod
  that died comes back by itself.
- **Pacing.** The campaign keeps `next_dial_at`; a pod reserves the next dial time with a
  compare-and-set, so all pods together place at most one call per `1 / calls_per_second`.

Times here are epoch seconds (floats) from the caller's clock, so tests can move them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo import ReturnDocument

from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import CAMPAIGN_SLOTS, CAMPAIGNS

Status = Literal["draft", "running", "paused", "cancelled", "completed"]

TRANSITIONS: dict[str, tuple[tuple[str, ...], Status]] = {
    "start": (("draft",), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "cancel": (("draft", "running", "paused"), "cancelled"),
    "complete": (("running",), "completed"),
}
"""Action -> (statuses it may be taken from, status it leads to)."""

MAX_PACING_RETRIES = 50
"""Bound on compare-and-set rounds when many pods reserve dial times at once."""


class TransitionRefused(Exception):
    """The campaign exists but is not in a status the action can be taken from."""

    def __init__(self, action: str, status: str) -> None:
        super().__init__(f"cannot {action} a campaign that is {status}")
        self.status = status


def new_campaign_id() -> str:
    return "cmp_" + secrets.token_hex(8)


@translates_driver_errors
class Campaigns:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._collection = database.collection(CAMPAIGNS)
        self._slots = database.collection(CAMPAIGN_SLOTS)

    async def create(self, spec: Mapping[str, Any], *, max_concurrent_calls: int) -> dict[str, Any]:
        """A draft campaign with `spec` (validated by the caller) and its concurrency slots."""
        campaign_id = new_campaign_id()
        now = datetime.now(UTC)
        document = {
            "_id": campaign_id,
            "spec": dict(spec),
            "status": "draft",
            "created_at": now,
            "updated_at": now,
            "next_dial_at": 0.0,
            "contacts": 0,
        }
        await self._slots.insert_many(
            [
                {"_id": f"{campaign_id}:{i}", "campaign_id": campaign_id, "until": 0.0, "holder": None}
                for i in range(max_concurrent_calls)
            ]
        )
        await self._collection.insert_one(document)
        return document

    async def get(self, campaign_id: str) -> dict[str, Any] | None:
        return await self._collection.find_one({"_id": str(campaign_id)})

    async def page(self, *, after: str | None = None, limit: int = 50, status: str | None = None) -> list[dict]:
        """Campaigns in id order after `after`, at most `limit` (capped by `max_listed`)."""
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        filter: dict[str, Any] = {}
        if after is not None:
            filter["_id"] = {"$gt": str(after)}
        if status is not None:
            filter["status"] = str(status)
        cursor = self._database.find(
            CAMPAIGNS,
            filter,
            {"spec": 1, "status": 1, "created_at": 1, "updated_at": 1, "contacts": 1},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("_id", 1)],
        )
        return [document async for document in cursor]

    async def running_ids(self, *, limit: int = 100) -> list[str]:
        return [c["_id"] for c in await self.page(status="running", limit=limit)]

    async def transition(self, campaign_id: str, action: str) -> dict[str, Any] | None:
        """Take `action` (start, pause, resume, cancel, complete) atomically; None if there is no such
        campaign, `TransitionRefused` if its status does not allow the action."""
        sources, target = TRANSITIONS[action]
        document = await self._collection.find_one_and_update(
            {"_id": str(campaign_id), "status": {"$in": list(sources)}},
            {"$set": {"status": target, "updated_at": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER,
        )
        if document is not None:
            return document
        current = await self.get(campaign_id)
        if current is None:
            return None
        raise TransitionRefused(action, current["status"])

    async def add_contacts(self, campaign_id: str, count: int) -> None:
        await self._collection.update_one({"_id": campaign_id}, {"$inc": {"contacts": count}})

    # -- concurrency slots -----------------------------------------------------------------

    async def acquire_slot(self, campaign_id: str, holder: str, *, now: float, until: float) -> str | None:
        """Take a free slot (or one whose hold has expired) until `until`; None when all are busy."""
        document = await self._slots.find_one_and_update(
            {"campaign_id": campaign_id, "until": {"$lt": now}},
            {"$set": {"until": until, "holder": holder}},
            projection={"_id": 1},
        )
        return None if document is None else str(document["_id"])

    async def hold_slot(self, slot_id: str, holder: str, *, until: float, new_holder: str | None = None) -> bool:
        """Extend (and optionally re-label) a hold; False if the slot is no longer ours."""
        result = await self._slots.update_one(
            {"_id": slot_id, "holder": holder}, {"$set": {"until": until, "holder": new_holder or holder}}
        )
        return bool(result.matched_count)

    async def release_slot(self, slot_id: str, holder: str) -> bool:
        result = await self._slots.update_one(
            {"_id": slot_id, "holder": holder}, {"$set": {"until": 0.0, "holder": None}}
        )
        return bool(result.modified_count)

    async def held_slots(self, campaign_id: str, *, now: float, limit: int = 1000) -> list[dict[str, Any]]:
        """The campaign's slots held now (`_id`, `holder`), at most `limit`: for finding a slot whose
        holder has already settled (its pod died between settling and releasing)."""
        cursor = self._database.find(
            CAMPAIGN_SLOTS,
            {"campaign_id": campaign_id, "until": {"$gte": now}},
            {"holder": 1},
            limit=limit,
            max_time_ms=self._database.settings.max_time_ms,
            batch_size=min(limit, self._database.settings.batch_size),
        )
        return [document async for document in cursor]

    async def busy_slots(self, campaign_id: str, *, now: float) -> int:
        return await self._database.count(
            CAMPAIGN_SLOTS,
            {"campaign_id": campaign_id, "until": {"$gte": now}},
            limit=100_000,
            max_time_ms=self._database.settings.max_time_ms,
        )

    # -- pacing ----------------------------------------------------------------------------

    async def reserve_dial_time(self, campaign_id: str, *, now: float, interval: float) -> float:
        """The time (>= now) at which this pod may place its next call, `interval` after the
        previous reservation of any pod."""
        for _ in range(MAX_PACING_RETRIES):
            document = await self._collection.find_one({"_id": campaign_id}, {"next_dial_at": 1})
            if document is None:
                raise LookupError(f"no campaign {campaign_id}")
            previous = float(document.get("next_dial_at", 0.0))
            at = max(now, previous)
            result = await self._collection.update_one(
                {"_id": campaign_id, "next_dial_at": previous}, {"$set": {"next_dial_at": at + interval}}
            )
            if result.modified_count:
                return at
        raise TimeoutError("could not reserve a dial time (too much contention)")
