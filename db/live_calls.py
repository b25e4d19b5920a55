"""Calls in progress as the database sees them, and what a call's record gained since a position.

Every pod writes its calls' records as they go (the pod's record writer flushes every half second),
so the database is the one view of the calls running on all pods: a record that has started and not
ended. A pod that died mid-call never ends its records, so the listing only looks back as far as the
caller allows (the longest call an agent may have, plus slack): a dead pod's records drop out.

Following one call reads only the entries past the follower's position (`$slice` in the
projection), so a follower polling a long call does not read its whole transcript every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from db.calls import FINAL_CALL_STATUSES, SUMMARY_FIELDS
from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import CALLS

LIVE_FIELDS = (*SUMMARY_FIELDS, "pod", "counts", "operator")
"""What a live call's listing shows: the summary, the pod if recorded, the stored entry counts."""
MAX_FOLLOWED_ENTRIES = 100
"""Bound on the entries of one list a single `progress` read returns (the follower reads again)."""


@translates_driver_errors
class LiveCallRecords:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def active(
        self, *, since: datetime, limit: int, agent_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Calls started at or after `since` and not ended (no end written, no final Twilio status),
        newest first, at most `limit` (capped by `max_listed`); only `agent_ids`' calls when given."""
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        filter: dict[str, Any] = {
            "started_at": {"$gte": since},
            "ended_at": None,
            "status": {"$nin": sorted(FINAL_CALL_STATUSES)},
        }
        if agent_ids is not None:
            filter["agent_id"] = {"$in": [str(a) for a in agent_ids]}
        cursor = self._database.find(
            CALLS,
            filter,
            {"_id": 0, **dict.fromkeys(LIVE_FIELDS, 1)},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("started_at", -1), ("call_sid", -1)],
        )
        return [document async for document in cursor]

    async def progress(
        self, call_sid: str, *, transcript_from: int, tool_audit_from: int, limit: int = MAX_FOLLOWED_ENTRIES
    ) -> dict[str, Any] | None:
        """The record without its latency, its transcript and tool audit from those positions on (at
        most `limit` entries of each, capped by `MAX_FOLLOWED_ENTRIES`); None if there is no such call."""
        limit = max(1, min(limit, MAX_FOLLOWED_ENTRIES))
        projection = {
            "_id": 0,
            **dict.fromkeys(SUMMARY_FIELDS, 1),
            "counts": 1,
            "operator": 1,
            "transcript": {"$slice": [max(0, int(transcript_from)), limit]},
            "tool_audit": {"$slice": [max(0, int(tool_audit_from)), limit]},
        }
        s = self._database.settings
        cursor = self._database.find(
            CALLS, {"call_sid": str(call_sid)}, projection, limit=1, max_time_ms=s.max_time_ms, batch_size=1
        )
        async for document in cursor:
            return dict(document)
        return None

    async def note_operator(self, call_sid: str, action: str, *, to: str | None = None) -> None:
        """An operator ended or transferred the call (`operator` on the record: what, when, where to), so
        its record says so whichever pod carried it. A field of its own: the pods' record writers never
        touch it, so it cannot race their batches."""
        note = {"action": action[:32], "to": None if to is None else to[:256], "at": datetime.now(UTC)}
        await self._database.collection(CALLS).update_one({"call_sid": str(call_sid)}, {"$set": {"operator": note}})
