"""`/api/tools`: declarations versioned like agents, refused with 422 naming the field when they
cannot be made safe, referenced by agents (followed or pinned), and shown by their dry run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.config import AgentConfig
from db import Database, ensure_indexes, in_memory
from telephony.agent_tools import tools_for
from tests.support.admin_api import ADMIN_KEY, admin_client
from tests.support.clinic import (
    ADD_NOTE,
    CLINIC_AGENT,
    CLINIC_TOOLS,
    DEPARTMENT_HOURS,
    MY_APPOINTMENTS,
    OTHER_PATIENT,
    PATIENT,
    seed_clinic,
)
from tests.support.settings import make_settings
from tools.declared import BUILTIN_DECLARATIONS

pytestmark = pytest.mark.mongodb

READER = "tools-reader-0123456789abcdef"
AGENTS_ONLY = "agents-only-0123456789abcdef"
KEYS = f"{ADMIN_KEY}:*;{READER}:tools:read;{AGENTS_ONLY}:agents:read,agents:write"


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    db = in_memory()
    await ensure_indexes(db)
    yield db
    await db.close()


def failing(response: Any) -> set[tuple[Any, ...]]:
    assert response.status_code == 422, response.text
    return {tuple(error["loc"]) for error in response.json()["detail"]}


async def test_every_write_is_a_new_version_and_old_versions_stay_readable(database: Database) -> None:
    async with admin_client(database) as api:
        created = await api.post("/api/tools", json=MY_APPOINTMENTS)
        assert created.status_code == 201, created.text
        assert created.json()["version"] == 1 and created.json()["declaration"]["collection"] == "appointments"
        assert (await api.post("/api/tools", json=MY_APPOINTMENTS)).status_code == 409
        wider = {**MY_APPOINTMENTS, "max_results": 5}
        updated = await api.put("/api/tools/my_appointments", json=wider)
        assert updated.status_code == 200 and updated.json()["version"] == 2
        stale = await api.put("/api/tools/my_appointments?expected_version=1", json=wider)
        assert stale.status_code == 409 and stale.json()["detail"][0]["loc"] == ["query", "expected_version"]
        mismatch = await api.put("/api/tools/my_appointments", json={**wider, "name": "other"})
        assert failing(mismatch) == {("body", "name")}
        missing = await api.put("/api/tools/missing_tool", json={**wider, "name": "missing_tool"})
        assert missing.status_code == 404

        assert (await api.get("/api/tools/my_appointments/versions")).json()["versions"] == [2, 1]
        first = (await api.get("/api/tools/my_appointments/versions/1")).json()
        assert first["declaration"]["max_results"] == 3
        assert (await api.get("/api/tools/my_appointments")).json()["declaration"]["max_results"] == 5
        assert (await api.get("/api/tools/my_appointments/versions/9")).status_code == 404
        await api.post("/api/tools", json=DEPARTMENT_HOURS)
        listed = (await api.get("/api/tools?limit=1")).json()
        assert [t["name"] for t in listed["items"]] == ["department_hours"] and listed["next"] == "department_hours"
        rest = (await api.get("/api/tools?after=department_hours")).json()
        assert [t["name"] for t in rest["items"]] == ["my_appointments"] and rest["next"] is None

        assert (await api.delete("/api/tools/department_hours")).status_code == 204
        assert (await api.get("/api/tools/department_hours")).status_code == 404
        assert (await api.get("/api/tools/department_hours/versions/1")).status_code == 200
        assert (await api.delete("/api/tools/department_hours")).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scope": "none", "identity_field": None}, ("selective",)),  # no selective argument
        ({"max_results": 100_000}, ("max_results",)),  # unbounded
        ({"arguments": [{"name": "x", "type": "blob"}]}, ("arguments", 0, "type")),
        ({"arguments": [{"name": "x", "type": "string", "max_length": 9, "pattern": "a" * 500}]}, ("pattern",)),
        ({"collection": "calls"}, ("collection",)),  # the platform's own data
        ({"collection": "tool_declarations"}, ("collection",)),
        ({"returns": []}, ("returns",)),
        ({"surprise": True}, ("surprise",)),
    ],
)
async def test_a_declaration_that_cannot_be_made_safe_is_refused_naming_the_field(
    database: Database, change: dict[str, Any], field: tuple[Any, ...]
) -> None:
    declaration = {key: value for key, value in {**MY_APPOINTMENTS, **change}.items() if value is not None}
    async with admin_client(database) as api:
        locations = failing(await api.post("/api/tools", json=declaration))
        assert any(loc[0] == "body" and loc[-len(field) :] == field for loc in locations), locations
        assert (await api.get("/api/tools/my_appointments")).status_code == 404


async def test_an_http_tool_must_call_a_host_on_the_pods_list(database: Database) -> None:
    outages = {
        "name": "area_outages",
        "kind": "http",
        "description": "Power outages reported in the caller's area.",
        "scope": "caller",
        "identity_param": {"location": "query", "name": "account"},
        "url": "https://status.example.com/outages",
        "returns": ["outages"],
    }
    async with admin_client(database, tool_http_allowed_hosts="status.example.com") as api:
        assert (await api.post("/api/tools", json=outages)).status_code == 201
        elsewhere = {**outages, "name": "elsewhere", "url": "https://evil.example.net/outages"}
        locations = failing(await api.post("/api/tools", json=elsewhere))
        assert any(loc[0] == "body" and loc[-1] == "url" for loc in locations), locations
        dry = await api.post("/api/tools/area_outages/dry-run", json={"customer_key": "A-1"})
        assert dry.status_code == 200 and "status.example.com" in str(dry.json()["issued"]), dry.text


async def test_a_declaration_may_re_express_a_built_in_which_agents_naming_it_then_get(database: Database) -> None:
    async with admin_client(database) as api:
        declared = await api.post("/api/tools", json=BUILTIN_DECLARATIONS["get_order_status"])
        assert declared.status_code == 201, declared.text
        dry = await api.post(
            "/api/tools/get_order_status/dry-run", json={"arguments": {"order_id": "O-50004"}, "customer_key": "C-1001"}
        )
        assert dry.status_code == 200, dry.text
        assert "C-1001" in str(dry.json()["issued"])  # the caller's key, from the server
    config = AgentConfig(id="support", tools=["get_order_status"])
    executor = await tools_for(config, database, make_settings())
    assert executor is not None
    [schema] = executor.schemas()
    assert "customer_id" not in schema["function"]["parameters"]["properties"]


async def test_reading_needs_tools_read_and_writing_tools_write(database: Database) -> None:
    async with admin_client(database, api_keys=KEYS) as admin:
        await admin.post("/api/tools", json=DEPARTMENT_HOURS)
    async with admin_client(database, key=READER, api_keys=KEYS) as reader:
        assert (await reader.get("/api/tools")).status_code == 200
        assert (await reader.get("/api/tools/department_hours/versions")).status_code == 200
        assert (await reader.post("/api/tools", json=MY_APPOINTMENTS)).status_code == 403
        assert (await reader.put("/api/tools/department_hours", json=DEPARTMENT_HOURS)).status_code == 403
        assert (await reader.delete("/api/tools/department_hours")).status_code == 403
        assert (await reader.post("/api/tools/department_hours/dry-run", json={})).status_code == 403
    async with admin_client(database, key=AGENTS_ONLY, api_keys=KEYS) as agents_only:
        assert (await agents_only.get("/api/tools")).status_code == 403


async def test_agents_follow_or_pin_tools_and_an_unknown_tool_is_refused_when_written(database: Database) -> None:
    async with admin_client(database) as api:
        unknown = await api.post("/api/agents", json=CLINIC_AGENT)
        assert failing(unknown) == {("body", "tools", 0)}
        assert "my_appointments" in unknown.json()["detail"][0]["msg"]
        for declaration in CLINIC_TOOLS:
            assert (await api.post("/api/tools", json=declaration)).status_code == 201
        created = await api.post("/api/agents", json=CLINIC_AGENT)
        assert created.status_code == 201, created.text
        assert created.json()["config"]["tools"] == CLINIC_AGENT["tools"]

        no_version = await api.put("/api/agents/clinic", json={**CLINIC_AGENT, "tools": ["department_hours@7"]})
        assert failing(no_version) == {("body", "tools", 0)} and "no version 7" in no_version.text
        twice = await api.put("/api/agents/clinic", json={**CLINIC_AGENT, "tools": ["my_appointments"] * 2})
        assert failing(twice) == {("body", "tools", 1)}
        malformed = await api.put("/api/agents/clinic", json={**CLINIC_AGENT, "tools": ["Bad Name"]})
        assert failing(malformed) == {("body", "tools", 0)}
        built_in = await api.put(
            "/api/agents/clinic", json={**CLINIC_AGENT, "tools": ["find_customer", "get_order_status"]}
        )
        assert built_in.status_code == 200

        await api.put("/api/agents/clinic", json=CLINIC_AGENT)
        # The agent follows my_appointments: deleting it would break the agent's next call.
        followed = await api.delete("/api/tools/my_appointments")
        assert followed.status_code == 409 and "clinic" in followed.text
        # It pins department_hours@1: version 1 stays readable, so the tool may go.
        assert (await api.delete("/api/tools/department_hours")).status_code == 204
        still = await api.put("/api/agents/clinic", json=CLINIC_AGENT)
        assert still.status_code == 200, still.text


async def test_the_dry_run_shows_the_bounded_query_and_with_execute_the_callers_own_data(database: Database) -> None:
    await seed_clinic(database)
    async with admin_client(database) as api:
        for declaration in (MY_APPOINTMENTS, ADD_NOTE):
            await api.post("/api/tools", json=declaration)
        dry = await api.post(
            "/api/tools/my_appointments/dry-run",
            json={"arguments": {"department": "cardiology"}, "customer_key": PATIENT},
        )
        assert dry.status_code == 200, dry.text
        body = dry.json()
        assert body["version"] == 1 and body["result"] is None
        issued = str(body["issued"])
        assert PATIENT in issued and "cardiology" in issued and OTHER_PATIENT not in issued

        executed = await api.post(
            "/api/tools/my_appointments/dry-run", json={"arguments": {}, "customer_key": PATIENT, "execute": True}
        )
        assert executed.status_code == 200, executed.text
        result = str(executed.json()["result"])
        assert "AP-1" in result and "Doctor Lee" in result
        assert "AP-2" not in result and "Okafor" not in result  # another patient's appointment

        # A caller-scoped tool needs the caller; wrong arguments are named; unknown tools are 404.
        anonymous = await api.post("/api/tools/my_appointments/dry-run", json={"arguments": {}})
        assert failing(anonymous) == {("body", "customer_key")}
        wrong = await api.post(
            "/api/tools/add_appointment_note/dry-run",
            json={"arguments": {"appointment_id": "AP-1; drop", "note": "late"}, "customer_key": PATIENT},
        )
        assert any(loc[:2] == ("body", "arguments") for loc in failing(wrong))
        assert (await api.post("/api/tools/nothing_here/dry-run", json={})).status_code == 404
        pinned = await api.post("/api/tools/my_appointments/dry-run", json={"customer_key": PATIENT, "version": 4})
        assert pinned.status_code == 404
