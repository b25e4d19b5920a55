"""Agent configurations, stored as plain documents keyed by agent id, with every version kept.

Validation of what a configuration says belongs to `agents/`; this repository keeps ids
well-formed, documents within `max_agent_config_bytes`, and numbers versions: every write makes a
new version (1, 2, 3...) and the old ones stay readable in `agent_config_versions`, so a call
record can name the exact configuration that handled it. A deleted agent is a tombstone, so an id
created again continues its numbering rather than reusing version numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bson
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import AGENT_CONFIG_VERSIONS, AGENT_CONFIGS

AGENT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Lower-case letters, digits, '-' and '_', starting with a letter or digit (the agents' own rule)."""
AGENT_ID = re.compile(AGENT_ID_PATTERN)


def check_agent_id(agent_id: object) -> str:
    if not isinstance(agent_id, str) or not AGENT_ID.match(agent_id):
        raise ValueError("an agent id is 1 to 64 lower-case letters, digits, '-' or '_' (not starting with '-'/'_')")
    return agent_id


class AgentExists(Exception):
    """`create` of an id that is already in use."""


class VersionConflict(Exception):
    """An update named an expected version that is no longer the current one."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the current version is {current}")
        self.current = current


@dataclass(frozen=True, slots=True)
class StoredConfig:
    agent_id: str
    version: int
    config: dict[str, Any]
    updated_at: datetime


def _stored(document: Mapping[str, Any], agent_id: str | None = None) -> StoredConfig:
    return StoredConfig(
        agent_id=agent_id or document["_id"],
        version=int(document["version"]),
        config=dict(document["config"]),
        updated_at=document["updated_at"],
    )


@translates_driver_errors
class AgentConfigs:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._collection = database.collection(AGENT_CONFIGS)
        self._versions = database.collection(AGENT_CONFIG_VERSIONS)

    def _check_size(self, agent_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
        config = dict(config)
        size = len(bson.encode({"_id": agent_id, "config": config}))
        limit = self._database.settings.max_agent_config_bytes
        if size > limit:
            raise ValueError(f"agent config {agent_id!r} is {size} bytes; the limit is {limit}")
        return config

    async def _keep_version(self, stored: StoredConfig) -> None:
        await self._versions.update_one(
            {"agent_id": stored.agent_id, "version": stored.version},
            {"$setOnInsert": {"config": stored.config, "created_at": stored.updated_at}},
            upsert=True,
        )

    async def create(self, agent_id: str, config: Mapping[str, Any]) -> StoredConfig:
        """A new agent (version 1, or the next version of a deleted one); `AgentExists` if in use."""
        check_agent_id(agent_id)
        config = self._check_size(agent_id, config)
        now = datetime.now(UTC)
        document = await self._collection.find_one_and_update(
            {"_id": agent_id, "deleted": True},
            {"$set": {"config": config, "updated_at": now, "deleted": False}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            document = {"_id": agent_id, "config": config, "version": 1, "updated_at": now, "deleted": False}
            try:
                await self._collection.insert_one(document)
            except DuplicateKeyError:
                raise AgentExists(agent_id) from None
        stored = _stored(document)
        await self._keep_version(stored)
        return stored

    async def update(
        self, agent_id: str, config: Mapping[str, Any], *, expected_version: int | None = None
    ) -> StoredConfig | None:
        """Replace the config of an existing agent as a new version; None if there is no such agent,
        `VersionConflict` if `expected_version` is given and is not the current one."""
        check_agent_id(agent_id)
        config = self._check_size(agent_id, config)
        filter: dict[str, Any] = {"_id": agent_id, "deleted": {"$ne": True}}
        if expected_version is not None:
            filter["version"] = expected_version
        document = await self._collection.find_one_and_update(
            filter,
            {"$set": {"config": config, "updated_at": datetime.now(UTC)}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            current = await self.current(agent_id)
            if current is not None and expected_version is not None:
                raise VersionConflict(current.version)
            return None
        stored = _stored(document)
        await self._keep_version(stored)
        return stored

    async def put(self, agent_id: str, config: Mapping[str, Any]) -> int:
        """Store (or replace) the configuration of `agent_id`; returns its new version."""
        try:
            return (await self.create(agent_id, config)).version
        except AgentExists:
            stored = await self.update(agent_id, config)
            if stored is None:  # deleted between the two steps: try once more
                return (await self.create(agent_id, config)).version
            return stored.version

    async def current(self, agent_id: str) -> StoredConfig | None:
        check_agent_id(agent_id)
        document = await self._collection.find_one({"_id": agent_id, "deleted": {"$ne": True}})
        return None if document is None else _stored(document)

    async def get(self, agent_id: str) -> dict[str, Any] | None:
        current = await self.current(agent_id)
        return None if current is None else current.config

    async def version(self, agent_id: str, version: int) -> StoredConfig | None:
        """Any version ever stored (also of a deleted agent)."""
        check_agent_id(agent_id)
        document = await self._versions.find_one({"agent_id": agent_id, "version": int(version)})
        if document is None:
            return None
        return StoredConfig(agent_id, int(document["version"]), dict(document["config"]), document["created_at"])

    async def versions(self, agent_id: str, *, limit: int = 100) -> list[int]:
        """Version numbers of `agent_id`, newest first, at most `limit` (capped by `max_listed`)."""
        check_agent_id(agent_id)
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        cursor = self._database.find(
            AGENT_CONFIG_VERSIONS,
            {"agent_id": agent_id},
            {"version": 1, "_id": 0},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("version", -1)],
        )
        return [int(document["version"]) async for document in cursor]

    async def delete(self, agent_id: str) -> bool:
        """Retire the agent (its versions stay readable); False if there was none."""
        check_agent_id(agent_id)
        result = await self._collection.update_one(
            {"_id": agent_id, "deleted": {"$ne": True}}, {"$set": {"deleted": True, "updated_at": datetime.now(UTC)}}
        )
        return bool(result.modified_count)

    async def page(self, *, after: str | None = None, limit: int = 50, tenant: str | None = None) -> list[StoredConfig]:
        """Current configs in id order after `after`, at most `limit` (capped by `max_listed`); only one tenant's
        when `tenant` is given."""
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        filter: dict[str, Any] = {"deleted": {"$ne": True}}
        if after is not None:
            filter["_id"] = {"$gt": check_agent_id(after)}
        if tenant is not None:
            filter["config.tenant"] = check_agent_id(tenant)
        cursor = self._database.find(
            AGENT_CONFIGS,
            filter,
            {"config": 1, "version": 1, "updated_at": 1},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("_id", 1)],
        )
        return [_stored(document) async for document in cursor]

    async def ids(self) -> list[str]:
        """Agent ids in order, at most `max_listed`."""
        return [stored.agent_id for stored in await self.page(limit=self._database.settings.max_listed)]

    async def ids_of_tenant(self, tenant: str, *, limit: int) -> list[str]:
        """The ids of one tenant's current agents, at most `limit` (and `max_listed`)."""
        return [stored.agent_id for stored in await self.page(limit=limit, tenant=tenant)]
