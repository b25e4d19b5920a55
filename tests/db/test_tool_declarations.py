"""Tool declarations: every write a new version, old versions readable, names and sizes checked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from db import Database, ToolDeclarations, ToolExists, VersionConflict
from db.tool_declarations import parse_reference

pytestmark = pytest.mark.mongodb

LOOKUP = {"kind": "mongo_find", "collection": "patients", "max_results": 1}


async def test_every_write_is_a_new_version_and_old_ones_stay_readable(database: Database) -> None:
    tools = ToolDeclarations(database)
    first = await tools.create("find_patient", LOOKUP)
    assert first.version == 1 and first.declaration == LOOKUP
    with pytest.raises(ToolExists):
        await tools.create("find_patient", LOOKUP)
    second = await tools.update("find_patient", {**LOOKUP, "max_results": 2})
    assert second is not None and second.version == 2
    with pytest.raises(VersionConflict) as conflict:
        await tools.update("find_patient", LOOKUP, expected_version=1)
    assert conflict.value.current == 2
    assert await tools.update("missing", LOOKUP) is None

    assert await tools.versions("find_patient") == [2, 1]
    pinned = await tools.resolve("find_patient@1")
    latest = await tools.resolve("find_patient")
    assert pinned is not None and pinned.declaration["max_results"] == 1
    assert latest is not None and latest.version == 2 and latest.declaration["max_results"] == 2
    assert await tools.resolve("find_patient@9") is None
    assert await tools.current_versions(["find_patient", "missing"]) == {"find_patient": 2}


async def test_a_deleted_tool_keeps_its_versions_and_continues_its_numbering(database: Database) -> None:
    tools = ToolDeclarations(database)
    await tools.create("book_slot", LOOKUP)
    await tools.create("a_first", LOOKUP)
    assert [s.name for s in await tools.page()] == ["a_first", "book_slot"]
    assert [s.name for s in await tools.page(after="a_first")] == ["book_slot"]
    assert await tools.delete("book_slot") and not await tools.delete("book_slot")
    assert await tools.current("book_slot") is None
    assert await tools.resolve("book_slot") is None  # following the latest: gone
    assert await tools.resolve("book_slot@1") is not None  # pinned: still there
    assert [s.name for s in await tools.page()] == ["a_first"]
    again = await tools.create("book_slot", LOOKUP)
    assert again.version == 2


async def test_names_references_and_sizes_are_checked(make_database: Callable[..., Awaitable[Database]]) -> None:
    tools = ToolDeclarations(await make_database(max_agent_config_bytes=1024))
    for bad in ("../etc", "Upper", "_x", "", "x" * 65):
        with pytest.raises(ValueError, match="tool name"):
            await tools.create(bad, LOOKUP)
    with pytest.raises(ValueError, match="tool name"):
        await tools.current({"$ne": None})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit is 1024"):
        await tools.create("big", {"description": "x" * 2000})
    assert await tools.current("big") is None
    assert parse_reference("lookup") == ("lookup", None)
    assert parse_reference("lookup@12") == ("lookup", 12)
    for bad in ("lookup@0", "lookup@", "lookup@x", "@3", "a@1@2", 3):
        with pytest.raises(ValueError, match="tool reference"):
            parse_reference(bad)
