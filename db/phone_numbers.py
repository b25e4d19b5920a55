"""Phone-number routing: which agent answers a called number.

`PhoneNumbers.agent_for` has the shape of telephony's `NumberDirectory`, so the edge can route
from the database without this room importing the edge.
"""

from __future__ import annotations

import re

from db.agent_configs import check_agent_id
from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import PHONE_NUMBERS

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


def check_number(number: object) -> str:
    if not isinstance(number, str) or not E164.match(number.strip()):
        raise ValueError("a phone number is E.164: '+' then up to 15 digits")
    return number.strip()


@translates_driver_errors
class PhoneNumbers:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._collection = database.collection(PHONE_NUMBERS)

    async def assign(self, number: str, agent_id: str) -> None:
        """Route `number` to `agent_id` (replacing any earlier route)."""
        number, agent_id = check_number(number), check_agent_id(agent_id)
        await self._collection.replace_one({"_id": number}, {"_id": number, "agent_id": agent_id}, upsert=True)

    async def release(self, number: str) -> bool:
        result = await self._collection.delete_one({"_id": check_number(number)})
        return bool(result.deleted_count)

    async def agent_for(self, number: str) -> str | None:
        """The agent id that answers `number`, or None (also for a malformed number)."""
        try:
            number = check_number(number)
        except ValueError:
            return None
        document = await self._collection.find_one({"_id": number}, {"agent_id": 1})
        return None if document is None else str(document["agent_id"])

    async def routes(self) -> dict[str, str]:
        """Number -> agent id, at most `max_listed` entries."""
        s = self._database.settings
        cursor = self._database.find(
            PHONE_NUMBERS,
            {},
            {"agent_id": 1},
            limit=s.max_listed,
            max_time_ms=s.max_time_ms,
            batch_size=s.max_listed,
            sort=[("_id", 1)],
        )
        return {document["_id"]: document["agent_id"] async for document in cursor}

    async def numbers_for(self, agent_id: str, *, limit: int = 10) -> list[str]:
        """Numbers routed to `agent_id`, at most `limit`."""
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        cursor = self._database.find(
            PHONE_NUMBERS,
            {"agent_id": check_agent_id(agent_id)},
            {"_id": 1},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=limit,
            sort=[("_id", 1)],
        )
        return [document["_id"] async for document in cursor]
