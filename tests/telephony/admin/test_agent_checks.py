"""What `agents:write` may store: transfer targets on the allow-list, voices the pod has, tools that
exist; each refusal a 422 that names the field and the bad value (never a stored agent that fails
every call)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from db import AgentConfigs, Database, ensure_indexes, in_memory
from tests.support.admin_api import admin_client

pytestmark = pytest.mark.mongodb


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    db = in_memory()
    await ensure_indexes(db)
    yield db
    await db.close()


def refused(response: httpx.Response) -> tuple[tuple[str | int, ...], str]:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    return tuple(error["loc"]), error["msg"]


@pytest.mark.parametrize("target", ["+19005550123", "+447700900123", "+18765550123", "sip:x@evil.example"])
async def test_a_transfer_target_off_the_allow_list_is_refused_on_create_and_update(
    database: Database, target: str
) -> None:
    async with admin_client(database) as api:
        loc, msg = refused(await api.post("/api/agents", json={"id": "sales", "transfer_number": target}))
        assert loc == ("body", "transfer_number") and target in msg
        allowed = await api.post("/api/agents", json={"id": "sales", "transfer_number": "+12125550123"})
        assert allowed.status_code == 201
        loc, msg = refused(await api.put("/api/agents/sales", json={"id": "sales", "transfer_number": target}))
        assert loc == ("body", "transfer_number") and target in msg
    stored = await AgentConfigs(database).current("sales")
    assert stored is not None and stored.version == 1 and stored.config["transfer_number"] == "+12125550123"


async def test_the_allow_list_is_a_setting(database: Database) -> None:
    async with admin_client(database, transfer_allowed_numbers="+44*", transfer_number="+447700900999") as api:
        assert (await api.post("/api/agents", json={"id": "uk", "transfer_number": "+447700900123"})).status_code == 201
        loc, _ = refused(await api.post("/api/agents", json={"id": "us", "transfer_number": "+12125550123"}))
        assert loc == ("body", "transfer_number")


async def test_an_unknown_voice_is_refused_naming_it_and_the_known_ones(database: Database) -> None:
    async with admin_client(database) as api:
        loc, msg = refused(await api.post("/api/agents", json={"id": "a", "voice": "no_such_voice"}))
        assert loc == ("body", "voice") and "no_such_voice" in msg and "jf_nezumi" in msg
        assert (await api.post("/api/agents", json={"id": "a", "voice": "jf_nezumi"})).status_code == 201
        loc, _ = refused(await api.put("/api/agents/a", json={"id": "a", "voice": "af_heart"}))
        assert loc == ("body", "voice")
    async with admin_client(database, agent_voices="af_heart, jf_nezumi") as api:
        assert (await api.put("/api/agents/a", json={"id": "a", "voice": "af_heart"})).status_code == 200


async def test_an_unknown_tool_is_refused_naming_it(database: Database) -> None:
    async with admin_client(database) as api:
        loc, msg = refused(await api.post("/api/agents", json={"id": "a", "tools": ["get_order_status", "launch"]}))
        assert loc == ("body", "tools", 1) and "launch" in msg
    assert await AgentConfigs(database).current("a") is None
