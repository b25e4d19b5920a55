"""Keys kept to one tenant: what a caller's business can see and change through the API is its own agents, their
calls and recordings; another tenant's answer 404, as if they did not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from db import CallRecords, Database
from telephony.settings.admin import parse_api_keys
from tests.support.admin_api import admin_client
from tests.support.db import open_test_database

pytestmark = pytest.mark.mongodb

ADMIN = "admin-key-0123456789abcdef"
ACME = "acme-key-0123456789abcdef"
KEYS = f"{ADMIN}:*;{ACME}:agents:read,agents:write,calls:read,tenant:acme"


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as db:
        yield db


def test_a_key_names_at_most_one_tenant_and_real_scopes_besides() -> None:
    assert parse_api_keys(f"{ACME}:calls:read,tenant:acme") == {ACME: frozenset({"calls:read", "tenant:acme"})}
    with pytest.raises(ValueError, match="more than one tenant"):
        parse_api_keys(f"{ACME}:calls:read,tenant:acme,tenant:globex")
    with pytest.raises(ValueError, match="unknown or no scopes"):
        parse_api_keys(f"{ACME}:tenant:acme")
    with pytest.raises(ValueError, match="unknown or no scopes"):
        parse_api_keys(f"{ACME}:calls:read,tenant:Not Valid")


async def test_a_tenants_key_sees_and_writes_only_its_own_agents(database: Database) -> None:
    async with admin_client(database, api_keys=KEYS) as admin:
        assert (await admin.post("/api/agents", json={"id": "acme-desk", "tenant": "acme"})).status_code == 201
        assert (await admin.post("/api/agents", json={"id": "globex-desk", "tenant": "globex"})).status_code == 201
        assert (await admin.post("/api/agents", json={"id": "house"})).status_code == 201
        async with admin_client(database, key=ACME, api_keys=KEYS) as acme:
            listed = (await acme.get("/api/agents")).json()["items"]
            assert [a["id"] for a in listed] == ["acme-desk"]
            assert (await acme.get("/api/agents/acme-desk")).status_code == 200
            for path in ("/api/agents/globex-desk", "/api/agents/house", "/api/agents/globex-desk/versions"):
                assert (await acme.get(path)).status_code == 404, path
            assert (await acme.get("/api/agents/globex-desk/versions/1")).status_code == 404
            made = await acme.post("/api/agents", json={"id": "acme-two", "tenant": "globex"})
            assert made.status_code == 422 and made.json()["detail"][0]["loc"] == ["body", "tenant"]
            assert (await acme.post("/api/agents", json={"id": "acme-two", "tenant": "acme"})).status_code == 201
            taken = await acme.put("/api/agents/globex-desk", json={"id": "globex-desk", "tenant": "acme"})
            assert taken.status_code == 404  # cannot adopt another tenant's agent either
            assert (await acme.delete("/api/agents/globex-desk")).status_code == 404


async def test_a_tenants_key_lists_and_reads_only_its_agents_calls(database: Database) -> None:
    calls = CallRecords(database)
    async with admin_client(database, api_keys=KEYS) as admin:
        assert (await admin.post("/api/agents", json={"id": "acme-desk", "tenant": "acme"})).status_code == 201
        assert (await admin.post("/api/agents", json={"id": "globex-desk", "tenant": "globex"})).status_code == 201
        await calls.start("CAacme1", agent_id="acme-desk", from_number="+15550001", to_number="+15550100")
        await calls.start("CAglobex1", agent_id="globex-desk", from_number="+15550002", to_number="+15550200")
        async with admin_client(database, key=ACME, api_keys=KEYS) as acme:
            assert [c["call_sid"] for c in (await acme.get("/api/calls")).json()["items"]] == ["CAacme1"]
            assert (await acme.get("/api/calls/CAacme1")).status_code == 200
            assert (await acme.get("/api/calls/CAglobex1")).status_code == 404
            assert (await acme.get("/api/calls/CAglobex1/recording")).status_code == 404
            assert (await acme.get("/api/calls", params={"number": "+15550002"})).json()["items"] == []
        everyone = [c["call_sid"] for c in (await admin.get("/api/calls")).json()["items"]]
        assert sorted(everyone) == ["CAacme1", "CAglobex1"]
