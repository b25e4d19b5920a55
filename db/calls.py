"""Call records: one document per call with its transcript, tool audit and per-turn latency.

Each record carries `expires_at` (its start plus the agent's `retention_days`, else the pod's
`call_retention_days`); a TTL index on it has the server delete records past retention.

Each list is bounded per call (`max_turns_per_call`, `max_tool_audit_per_call`,
`max_latency_entries_per_call`): an append past the bound is counted in `dropped`, not stored, so a
call that talks for hours cannot grow its document towards MongoDB's 16 MB limit. The bound is
checked by the server in the same update that appends (`count < bound` in the filter), so two
writers cannot both squeeze past it. A pod's record writer appends in batches (`append_batch`),
keeping the first entries like the call's memory does, and says at `finish` how many it dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from db.agent_configs import check_agent_id
from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import CALLS

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MAX_ENTRY_KEYS = 32
_MAX_ENTRY_STRING = 1000
"""Strings inside audit and latency entries are cut to this many characters."""

ListName = Literal["transcript", "tool_audit", "latency"]
SUMMARY_FIELDS = (
    "call_sid",
    "agent_id",
    "agent_version",
    "from_number",
    "to_number",
    "direction",
    "campaign_id",
    "contact_id",
    "attempt",
    "status",
    "answered_by",
    "duration_s",
    "started_at",
    "ended_at",
    "outcome",
    "expires_at",
)
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
"""Twilio's final call statuses: once a record holds one, later callbacks do not change it."""
MAX_RETENTION_DAYS = 3650
"""Bound on how long any call record is kept."""
POST_CALL_STATUSES = ("pending", "done", "failed")
"""A record's `post_call.status`: queued after the end, stored, or given up (with its `error`)."""
POST_CALL_FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
"""A declared post-call field's name: a plain key under `post_call.fields` (no dots, no `$`)."""
_POST_CALL_FIELD = re.compile(POST_CALL_FIELD_PATTERN)
MAX_POST_CALL_VALUES = 32
"""Bound on the values one record's `post_call.fields` holds."""
MAX_POST_CALL_TEXT = 2000
"""Strings stored under `post_call` (summary, values, error) are cut to this many characters."""
MAX_POST_CALL_FILTERS = 8
"""Bound on post-call field filters in one listing."""


def _entry(values: Mapping[str, Any]) -> dict[str, Any]:
    """A flat entry with plain keys and scalar values (strings cut), or ValueError."""
    if len(values) > _MAX_ENTRY_KEYS:
        raise ValueError(f"an entry has at most {_MAX_ENTRY_KEYS} fields")
    entry: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"entry field name {str(key)[:32]!r} is not allowed")
        if isinstance(value, str):
            value = value[:_MAX_ENTRY_STRING]
        elif isinstance(value, float) and not math.isfinite(value):
            value = None
        elif value is not None and not isinstance(value, (bool, int, float, datetime)):
            raise ValueError(f"entry field {key!r} must be a plain value, not {type(value).__name__}")
        entry[key] = value
    return entry


@translates_driver_errors
class CallRecords:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._collection = database.collection(CALLS)
        s = database.settings
        self._bounds: dict[ListName, int] = {
            "transcript": s.max_turns_per_call,
            "tool_audit": s.max_tool_audit_per_call,
            "latency": s.max_latency_entries_per_call,
        }

    async def start(
        self,
        call_sid: str,
        *,
        agent_id: str,
        from_number: str,
        to_number: str,
        direction: str = "inbound",
        started_at: datetime | None = None,
        agent_version: int | None = None,
        campaign_id: str | None = None,
        contact_id: str | None = None,
        attempt: int | None = None,
        status: str | None = None,
        variables: Mapping[str, Any] | None = None,
        voicemail: Mapping[str, Any] | None = None,
        retention_days: int | None = None,
    ) -> None:
        """Create the record (a second start of the same call changes nothing but an explicit
        `retention_days`, which the agent's session knows and the dialler may not). An outbound
        call's record is created when Twilio accepts it, so it names the agent version that dialled."""
        started_at = started_at or datetime.now(UTC)
        keep: dict[str, Any] = {"expires_at": started_at + timedelta(days=self._retention(retention_days))}
        document: dict[str, Any] = {
            "call_sid": call_sid,
            "agent_id": agent_id,
            "agent_version": agent_version,
            "from_number": from_number,
            "to_number": to_number,
            "direction": direction,
            "campaign_id": campaign_id,
            "contact_id": contact_id,
            "attempt": attempt,
            "status": status,
            "answered_by": None,
            "variables": dict(variables or {}),
            "voicemail": dict(voicemail) if voicemail else None,
            "duration_s": None,
            "started_at": started_at,
            "ended_at": None,
            "outcome": None,
            "transcript": [],
            "tool_audit": [],
            "latency": [],
            "counts": {"transcript": 0, "tool_audit": 0, "latency": 0},
            "dropped": {"transcript": 0, "tool_audit": 0, "latency": 0},
        }
        update = (
            {"$setOnInsert": {**document, **keep}}
            if retention_days is None
            else {"$setOnInsert": document, "$set": keep}
        )
        await self._collection.update_one({"call_sid": call_sid}, update, upsert=True)

    def _retention(self, days: int | None) -> int:
        """Days to keep a record: the agent's value, else the pod's; ValueError outside 1..3650."""
        days = self._database.settings.call_retention_days if days is None else days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
            raise ValueError(f"retention_days must be a whole number of days from 1 to {MAX_RETENTION_DAYS}")
        return days

    async def add_turn(self, call_sid: str, role: str, text: str, *, at: datetime | None = None) -> bool:
        """Append a transcript turn (text cut to `max_turn_chars`); False if dropped or no such call."""
        turn = {
            "role": role[:32],
            "text": text[: self._database.settings.max_turn_chars],
            "at": at or datetime.now(UTC),
        }
        return await self._append(call_sid, "transcript", turn)

    async def add_tool_audit(self, call_sid: str, entry: Mapping[str, Any]) -> bool:
        """Append a tool audit entry (flat: plain keys, scalar values)."""
        return await self._append(call_sid, "tool_audit", _entry(entry))

    async def add_latency(self, call_sid: str, metrics: Mapping[str, Any]) -> bool:
        """Append one turn's latency figures (flat: plain keys, scalar values)."""
        return await self._append(call_sid, "latency", _entry(metrics))

    async def _append(self, call_sid: str, name: ListName, item: dict[str, Any]) -> bool:
        result = await self._collection.update_one(
            {"call_sid": call_sid, f"counts.{name}": {"$lt": self._bounds[name]}},
            {"$push": {name: item}, "$inc": {f"counts.{name}": 1}},
        )
        if result.matched_count:
            return True
        await self._collection.update_one({"call_sid": call_sid}, {"$inc": {f"dropped.{name}": 1}})
        return False

    def bound(self, name: ListName) -> int:
        """Entries of list `name` one call's record stores."""
        return self._bounds[name]

    async def append_batch(
        self, call_sid: str, name: ListName, items: Sequence[Mapping[str, Any]], *, first: int
    ) -> bool:
        """Append `items`, the call's entries `first`, `first + 1`... of list `name`, in one update
        (a writer's batch, within the bound: ValueError past it). Idempotent: the update applies only
        where the record holds exactly `first` entries, so a batch retried after a lost reply is not
        stored twice. True once stored (now or by an earlier try); False if the record is missing or
        holds fewer entries (an earlier batch was lost: this one is not stored)."""
        if not items:
            return True
        bound = self._bounds[name]
        if first < 0 or first + len(items) > bound:
            raise ValueError(f"{name} entries {first}..{first + len(items) - 1} are past the bound of {bound}")
        batch = [self._item(name, item) for item in items]
        result = await self._collection.update_one(
            {"call_sid": call_sid, f"counts.{name}": first},
            {"$push": {name: {"$each": batch, "$slice": bound}}, "$inc": {f"counts.{name}": len(batch)}},
        )
        if result.matched_count:
            return True
        document = await self._collection.find_one({"call_sid": call_sid}, {"_id": 0, "counts": 1})
        return document is not None and int(document.get("counts", {}).get(name, 0)) >= first + len(batch)

    def _item(self, name: ListName, item: Mapping[str, Any]) -> dict[str, Any]:
        if name == "transcript":
            return {
                "role": str(item.get("role", ""))[:32],
                "text": str(item.get("text", ""))[: self._database.settings.max_turn_chars],
                "at": item.get("at") or datetime.now(UTC),
            }
        return _entry(item)

    async def finish(
        self,
        call_sid: str,
        *,
        outcome: str,
        ended_at: datetime | None = None,
        verified_customer: str | None = None,
        summary: Mapping[str, Any] | None = None,
        dropped: Mapping[ListName, int] | None = None,
    ) -> None:
        """`verified_customer`: the key the caller was verified as (whose data the call could reach);
        `summary`: the call's counters (flat); `dropped`: entries of each list not stored (past the
        bound, or lost by the writer), which raises the stored count, never lowers it: a retried
        finish counts once."""
        ended: dict[str, Any] = {"ended_at": ended_at or datetime.now(UTC), "outcome": outcome[:200]}
        if verified_customer is not None:
            ended["verified_customer"] = verified_customer[:200]
        if summary:
            ended["summary"] = _entry(summary)
        update: dict[str, Any] = {"$set": ended}
        counted = {f"dropped.{name}": int(n) for name, n in (dropped or {}).items() if name in self._bounds and n > 0}
        if counted:
            update["$max"] = counted
        await self._collection.update_one({"call_sid": call_sid}, update)

    async def set_post_call(
        self,
        call_sid: str,
        status: str,
        *,
        summary: str | None = None,
        fields: Mapping[str, Any] | None = None,
        error: str | None = None,
        only_if: str | None = None,
    ) -> bool:
        """Store the post-call result as the record's `post_call`, touching nothing else on it;
        `only_if`: only where the stored status is that one (a result replaces only its own
        `pending`). False if no such record (or another status). ValueError for a bad status or value."""
        if status not in POST_CALL_STATUSES:
            raise ValueError(f"post-call status must be one of {', '.join(POST_CALL_STATUSES)}")
        values = dict(fields or {})
        if len(values) > MAX_POST_CALL_VALUES:
            raise ValueError(f"a record holds at most {MAX_POST_CALL_VALUES} post-call fields")
        for name, value in values.items():
            if not isinstance(name, str) or not _POST_CALL_FIELD.match(name):
                raise ValueError(f"post-call field name {str(name)[:40]!r} is not allowed")
            if isinstance(value, str):
                values[name] = value[:MAX_POST_CALL_TEXT]
            elif isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"post-call field {name!r} is not a finite number")
            elif value is not None and not isinstance(value, (bool, int, float)):
                raise ValueError(f"post-call field {name!r} must be text, yes/no or a number")
        post_call = {
            "status": status,
            "summary": summary[:MAX_POST_CALL_TEXT] if summary is not None else None,
            "fields": values,
            "error": error[:MAX_POST_CALL_TEXT] if error is not None else None,
            "updated_at": datetime.now(UTC),
        }
        match: dict[str, Any] = {"call_sid": call_sid}
        if only_if is not None:
            match["post_call.status"] = only_if
        result = await self._collection.update_one(match, {"$set": {"post_call": post_call}})
        return bool(result.matched_count)

    async def set_status(
        self, call_sid: str, status: str, *, duration_s: int | None = None, answered_by: str | None = None
    ) -> bool:
        """Twilio's view of the call (from a signed status or AMD callback); False if no record.
        A final status is never overwritten (callbacks arrive out of order: an AMD result after
        `completed`); the other figures are still kept."""
        values: dict[str, Any] = {}
        if duration_s is not None:
            values["duration_s"] = duration_s
        if answered_by is not None:
            values["answered_by"] = answered_by[:32]
        open_call = {"call_sid": call_sid, "status": {"$nin": sorted(FINAL_CALL_STATUSES)}}
        result = await self._collection.update_one(open_call, {"$set": {**values, "status": status[:32]}})
        if result.matched_count:
            return True
        if not values:
            return await self._collection.find_one({"call_sid": call_sid}, {"_id": 1}) is not None
        result = await self._collection.update_one({"call_sid": call_sid}, {"$set": values})
        return bool(result.matched_count)

    async def note_agent_version(self, call_sid: str, agent_version: int | None) -> None:
        """Record the version of the agent that served the call, where the start did not know it."""
        if agent_version is not None:
            await self._collection.update_one(
                {"call_sid": call_sid, "agent_version": None}, {"$set": {"agent_version": agent_version}}
            )

    async def get(self, call_sid: str) -> dict[str, Any] | None:
        return await self._collection.find_one({"call_sid": call_sid}, {"_id": 0})

    async def recent(self, *, agent_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest calls first without their lists, at most `max_listed`."""
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        cursor = self._database.find(
            CALLS,
            {} if agent_id is None else {"agent_id": check_agent_id(agent_id)},
            {"_id": 0, **dict.fromkeys(SUMMARY_FIELDS, 1)},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("started_at", -1)],
        )
        return [document async for document in cursor]

    async def page(
        self,
        *,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
        agent_id: str | None = None,
        campaign_id: str | None = None,
        agent_ids: list[str] | None = None,
        number: str | None = None,
        outcome: str | None = None,
        started_from: datetime | None = None,
        started_until: datetime | None = None,
        post_call_status: str | None = None,
        post_call_fields: Mapping[str, Sequence[Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, without their lists, after the position `before` = (started_at, call_sid)
        of the last call of the previous page; at most `limit` (capped by `max_listed`). `agent_ids` keeps one
        tenant's agents' calls; `number` matches either end of the call (exact, E.164 as stored)."""
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        filter: dict[str, Any] = {}
        clauses: list[dict[str, Any]] = []
        if agent_id is not None:
            filter["agent_id"] = check_agent_id(agent_id)
        if agent_ids is not None:
            clauses.append({"agent_id": {"$in": [check_agent_id(a) for a in agent_ids]}})
        if campaign_id is not None:
            filter["campaign_id"] = str(campaign_id)
        if number is not None:
            clauses.append({"$or": [{"from_number": str(number)}, {"to_number": str(number)}]})
        if outcome is not None:
            filter["outcome"] = str(outcome)
        if started_from is not None or started_until is not None:
            window: dict[str, datetime] = {}
            if started_from is not None:
                window["$gte"] = started_from
            if started_until is not None:
                window["$lt"] = started_until
            filter["started_at"] = window
        if post_call_status is not None:
            if post_call_status not in POST_CALL_STATUSES:
                raise ValueError(f"post-call status must be one of {', '.join(POST_CALL_STATUSES)}")
            filter["post_call.status"] = post_call_status
        clauses += _post_call_clauses(post_call_fields or {})
        if before is not None:
            at, sid = before
            clauses.append({"$or": [{"started_at": {"$lt": at}}, {"started_at": at, "call_sid": {"$lt": str(sid)}}]})
        if clauses:
            filter["$and"] = clauses
        cursor = self._database.find(
            CALLS,
            filter,
            {"_id": 0, **dict.fromkeys(SUMMARY_FIELDS, 1), "post_call.status": 1, "post_call.fields": 1},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("started_at", -1), ("call_sid", -1)],
        )
        return [document async for document in cursor]


def _post_call_clauses(fields: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """`post_call.fields.<name>` equal to one of its values (a value written `yes` may be stored as
    true: the caller lists both), for each declared name; ValueError for a bad name or value."""
    if len(fields) > MAX_POST_CALL_FILTERS:
        raise ValueError(f"at most {MAX_POST_CALL_FILTERS} post-call field filters")
    clauses = []
    for name, values in fields.items():
        if not isinstance(name, str) or not _POST_CALL_FIELD.match(name):
            raise ValueError(f"post-call field name {str(name)[:40]!r} is not allowed")
        kept = [v for v in values if v is None or isinstance(v, (str, bool, int, float))][:8]
        if not kept:
            raise ValueError(f"post-call field {name!r} needs a value to match")
        clauses.append({f"post_call.fields.{name}": {"$in": kept}})
    return clauses
