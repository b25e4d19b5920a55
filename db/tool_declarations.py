"""Tool declarations written by operators, stored as plain documents keyed by tool name, every
version kept.

What a declaration says is validated in `tools.declared`; this repository keeps names well-formed,
documents within `max_agent_config_bytes`, and numbers versions exactly as `db.agent_configs` does:
every write is a new version (1, 2, 3...), old ones stay readable in `tool_declaration_versions`, and
a deleted tool is a tombstone so a name created again continues its numbering. That is what lets an
agent pin a tool (`"lookup@3"`: that version forever) or follow it (`"lookup"`: the latest).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bson
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from db.agent_configs import VersionConflict
from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import TOOL_DECLARATION_VERSIONS, TOOL_DECLARATIONS

TOOL_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
"""A tool's name: what the model calls it by (the same rule as `tools.Tool`)."""
TOOL_REFERENCE_PATTERN = r"^[a-z][a-z0-9_]{0,63}(@[1-9][0-9]{0,8})?$"
"""How an agent names a tool: `name` follows the latest version, `name@3` pins version 3."""
_NAME = re.compile(TOOL_NAME_PATTERN)
_REFERENCE = re.compile(TOOL_REFERENCE_PATTERN)


def check_tool_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError("a tool name is 1 to 64 lower-case letters, digits or '_', starting with a letter")
    return name


def parse_reference(reference: object) -> tuple[str, int | None]:
    """`"lookup"` -> ("lookup", None) (follow the latest); `"lookup@3"` -> ("lookup", 3) (pinned)."""
    if not isinstance(reference, str) or not _REFERENCE.match(reference):
        raise ValueError(f"tool reference {reference!r}: a tool name, optionally '@' and a version (lookup@3)")
    name, _, version = reference.partition("@")
    return name, int(version) if version else None


class ToolExists(Exception):
    """`create` of a name that is already in use."""


@dataclass(frozen=True, slots=True)
class StoredDeclaration:
    name: str
    version: int
    declaration: dict[str, Any]
    updated_at: datetime


def _stored(document: Mapping[str, Any]) -> StoredDeclaration:
    return StoredDeclaration(
        name=document["_id"],
        version=int(document["version"]),
        declaration=dict(document["declaration"]),
        updated_at=document["updated_at"],
    )


@translates_driver_errors
class ToolDeclarations:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._collection = database.collection(TOOL_DECLARATIONS)
        self._versions = database.collection(TOOL_DECLARATION_VERSIONS)

    def _check_size(self, name: str, declaration: Mapping[str, Any]) -> dict[str, Any]:
        declaration = dict(declaration)
        size = len(bson.encode({"_id": name, "declaration": declaration}))
        limit = self._database.settings.max_agent_config_bytes
        if size > limit:
            raise ValueError(f"tool declaration {name!r} is {size} bytes; the limit is {limit}")
        return declaration

    async def _keep_version(self, stored: StoredDeclaration) -> None:
        await self._versions.update_one(
            {"name": stored.name, "version": stored.version},
            {"$setOnInsert": {"declaration": stored.declaration, "created_at": stored.updated_at}},
            upsert=True,
        )

    async def create(self, name: str, declaration: Mapping[str, Any]) -> StoredDeclaration:
        """A new tool (version 1, or the next version of a deleted one); `ToolExists` if in use."""
        check_tool_name(name)
        declaration = self._check_size(name, declaration)
        now = datetime.now(UTC)
        document = await self._collection.find_one_and_update(
            {"_id": name, "deleted": True},
            {"$set": {"declaration": declaration, "updated_at": now, "deleted": False}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            document = {"_id": name, "declaration": declaration, "version": 1, "updated_at": now, "deleted": False}
            try:
                await self._collection.insert_one(document)
            except DuplicateKeyError:
                raise ToolExists(name) from None
        stored = _stored(document)
        await self._keep_version(stored)
        return stored

    async def update(
        self, name: str, declaration: Mapping[str, Any], *, expected_version: int | None = None
    ) -> StoredDeclaration | None:
        """The tool's next version; None if there is no such tool, `VersionConflict` if
        `expected_version` is given and is not the current one."""
        check_tool_name(name)
        declaration = self._check_size(name, declaration)
        filter: dict[str, Any] = {"_id": name, "deleted": {"$ne": True}}
        if expected_version is not None:
            filter["version"] = expected_version
        document = await self._collection.find_one_and_update(
            filter,
            {"$set": {"declaration": declaration, "updated_at": datetime.now(UTC)}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            current = await self.current(name)
            if current is not None and expected_version is not None:
                raise VersionConflict(current.version)
            return None
        stored = _stored(document)
        await self._keep_version(stored)
        return stored

    async def current(self, name: str) -> StoredDeclaration | None:
        check_tool_name(name)
        document = await self._collection.find_one({"_id": name, "deleted": {"$ne": True}})
        return None if document is None else _stored(document)

    async def version(self, name: str, version: int) -> StoredDeclaration | None:
        """Any version ever stored (also of a deleted tool: a pinned agent keeps working)."""
        check_tool_name(name)
        document = await self._versions.find_one({"name": name, "version": int(version)})
        if document is None:
            return None
        return StoredDeclaration(name, int(document["version"]), dict(document["declaration"]), document["created_at"])

    async def resolve(self, reference: str) -> StoredDeclaration | None:
        """The declaration an agent's reference names: the pinned version, or the latest."""
        name, version = parse_reference(reference)
        return await self.current(name) if version is None else await self.version(name, version)

    async def current_versions(self, names: Iterable[str]) -> dict[str, int]:
        """Current version of each existing tool in `names` (one read; for noticing updates)."""
        names = sorted({check_tool_name(name) for name in names})
        if not names:
            return {}
        s = self._database.settings
        limit = max(1, min(len(names), s.max_listed))
        cursor = self._database.find(
            TOOL_DECLARATIONS,
            {"_id": {"$in": names[:limit]}, "deleted": {"$ne": True}},
            {"version": 1},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
        )
        return {document["_id"]: int(document["version"]) async for document in cursor}

    async def versions(self, name: str, *, limit: int = 100) -> list[int]:
        """Version numbers of `name`, newest first, at most `limit` (capped by `max_listed`)."""
        check_tool_name(name)
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        cursor = self._database.find(
            TOOL_DECLARATION_VERSIONS,
            {"name": name},
            {"version": 1, "_id": 0},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("version", -1)],
        )
        return [int(document["version"]) async for document in cursor]

    async def delete(self, name: str) -> bool:
        """Retire the tool (its versions stay readable, for pinned agents); False if there was none."""
        check_tool_name(name)
        result = await self._collection.update_one(
            {"_id": name, "deleted": {"$ne": True}}, {"$set": {"deleted": True, "updated_at": datetime.now(UTC)}}
        )
        return bool(result.modified_count)

    async def page(self, *, after: str | None = None, limit: int = 50) -> list[StoredDeclaration]:
        """Current declarations in name order after `after`, at most `limit` (capped by `max_listed`)."""
        s = self._database.settings
        limit = max(1, min(limit, s.max_listed))
        filter: dict[str, Any] = {"deleted": {"$ne": True}}
        if after is not None:
            filter["_id"] = {"$gt": check_tool_name(after)}
        cursor = self._database.find(
            TOOL_DECLARATIONS,
            filter,
            {"declaration": 1, "version": 1, "updated_at": 1},
            limit=limit,
            max_time_ms=s.max_time_ms,
            batch_size=min(limit, s.batch_size),
            sort=[("_id", 1)],
        )
        return [_stored(document) async for document in cursor]
