"""Agent configurations, stored as plain documents keyed by agent id.

Validation of what a configuration says belongs to `agents/`; this repository only keeps ids
well-formed and documents within `max_agent_config_bytes`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import bson

from db.client import Database
from db.indexes import AGENT_CONFIGS

AGENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_agent_id(agent_id: object) -> str:
    if not isinstance(agent_id, str) or not AGENT_ID.match(agent_id):
        raise ValueError("an agent id is 1 to 64 letters, digits, '-' or '_'")
    return agent_id


class AgentConfigs:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._collection = database.collection(AGENT_CONFIGS)

    async def put(self, agent_id: str, config: Mapping[str, Any]) -> None:
        """Store (or replace) the configuration of `agent_id`."""
        check_agent_id(agent_id)
        document = {"_id": agent_id, "config": dict(config), "updated_at": datetime.now(UTC)}
        size = len(bson.encode(document))
        limit = self._database.settings.max_agent_config_bytes
        if size > limit:
            raise ValueError(f"agent config {agent_id!r} is {size} bytes; the limit is {limit}")
        await self._collection.replace_one({"_id": agent_id}, document, upsert=True)

    async def get(self, agent_id: str) -> dict[str, Any] | None:
        check_agent_id(agent_id)
        document = await self._collection.find_one({"_id": agent_id}, {"config": 1})
        return None if document is None else dict(document["config"])

    async def delete(self, agent_id: str) -> bool:
        check_agent_id(agent_id)
        result = await self._collection.delete_one({"_id": agent_id})
        return bool(result.deleted_count)

    async def ids(self) -> list[str]:
        """Agent ids in order, at most `max_listed`."""
        s = self._database.settings
        cursor = self._database.find(
            AGENT_CONFIGS,
            {},
            {"_id": 1},
            limit=s.max_listed,
            max_time_ms=s.max_time_ms,
            batch_size=s.max_listed,
            sort=[("_id", 1)],
        )
        return [document["_id"] async for document in cursor]
