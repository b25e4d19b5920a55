"""An agent's tools: built-ins by name, declared tools followed or pinned, one strict executor."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from agents.config import AgentConfig
from db import Database, ToolDeclarations
from telephony.agent_tools import ToolReferenceError, followed, resolve_references, tools_for
from tests.support.clinic import DEPARTMENT_HOURS, MY_APPOINTMENTS, PATIENT, seed_clinic
from tests.support.db import open_test_database
from tests.support.settings import make_settings
from tools import CallerIdentity, ToolCall, ToolContext

pytestmark = pytest.mark.mongodb


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as database:
        yield database


async def store(database: Database, declaration: dict[str, object]) -> None:
    document = {key: value for key, value in declaration.items() if key != "name"}
    await ToolDeclarations(database).create(str(declaration["name"]), document)


async def test_an_agent_gets_exactly_its_tools_as_strict_schemas(database: Database) -> None:
    config = AgentConfig(id="support", tools=["find_customer", "get_order_status"])
    executor = await tools_for(config, database, make_settings(tool_max_steps_per_turn=2))
    assert executor is not None
    names = [schema["function"]["name"] for schema in executor.schemas()]
    assert names == ["find_customer", "get_order_status"]
    assert all(schema["function"]["strict"] for schema in executor.schemas())
    assert await tools_for(AgentConfig(id="plain"), database, make_settings()) is None


async def test_tools_without_a_database_or_unknown_tools_are_clear_configuration_errors(database: Database) -> None:
    with pytest.raises(ValueError, match="SWITCHBOARD_MONGODB_URI is not set"):
        await tools_for(AgentConfig(id="support", tools=["find_customer"]), None, make_settings())
    with pytest.raises(ValueError, match="no tool 'drop_database'"):
        await tools_for(AgentConfig(id="support", tools=["drop_database"]), database, make_settings())


async def test_declared_tools_are_built_beside_built_ins_in_the_order_named(database: Database) -> None:
    await seed_clinic(database)
    await store(database, MY_APPOINTMENTS)
    await ToolDeclarations(database).update("my_appointments", {**MY_APPOINTMENTS, "max_results": 1})
    await store(database, DEPARTMENT_HOURS)
    config = AgentConfig(id="clinic", tools=["department_hours", "get_order_status", "my_appointments@1"])
    executor = await tools_for(config, database, make_settings())
    assert executor is not None
    schemas = [schema["function"] for schema in executor.schemas()]
    assert [s["name"] for s in schemas] == ["department_hours", "get_order_status", "my_appointments"]
    assert all(s["strict"] and s["parameters"]["additionalProperties"] is False for s in schemas)
    # Pinned to version 1 (up to 3 results), not the latest (1 result); scoped to the verified caller.
    context = ToolContext("CA1", "clinic", "+15005550006", CallerIdentity(customer_key=PATIENT))
    outcome = await executor.turn(context).run(ToolCall("c1", "my_appointments", "{}"))
    assert outcome.ok, outcome.content
    assert "AP-1" in outcome.content and "AP-2" not in outcome.content
    hours = await executor.turn(context).run(ToolCall("c2", "department_hours", json.dumps({"name": "cardiology"})))
    assert "eight to four" in hours.content


async def test_references_are_resolved_or_refused_naming_the_entry(database: Database) -> None:
    await store(database, DEPARTMENT_HOURS)
    resolved = await resolve_references(["find_customer", "department_hours"], database)
    assert [r.name for r in resolved] == ["find_customer", "department_hours"]
    assert resolved[0].declared is None and resolved[1].declared is not None
    for references, index in (
        (["find_customer", "department_hours@2"], 1),
        (["department_hours", "department_hours@1"], 1),
        (["find_customer@1"], 0),  # built-ins have no versions
        (["nothing"], 0),
    ):
        with pytest.raises(ToolReferenceError) as refused:
            await resolve_references(references, database)
        assert refused.value.index == index
    with pytest.raises(ToolReferenceError, match="SWITCHBOARD_MONGODB_URI"):
        await resolve_references(["department_hours"], None)
    # A built-in's name is followed too: a declaration may re-express it later.
    assert followed(["find_customer", "department_hours", "lookup@2", "Bad Name", 3]) == [
        "find_customer",
        "department_hours",
    ]
