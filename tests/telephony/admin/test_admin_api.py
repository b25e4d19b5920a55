"""The admin API: auth everywhere, agents with versions, numbers, calls, campaigns, uploads, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import jsonschema
import pytest

from db import CallRecords, Database, ensure_indexes, in_memory
from telephony.app import create_app
from tests.support.admin_api import admin_client
from tests.support.settings import AGENT_NUMBER, make_settings

pytestmark = pytest.mark.mongodb

ADMIN = "admin-key-0123456789abcdef"
READER = "reader-key-0123456789abcdef"
KEYS = f"{ADMIN}:*;{READER}:agents:read,calls:read"


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    db = in_memory()
    await ensure_indexes(db)
    yield db
    await db.close()


@asynccontextmanager
async def client(database: Database, key: str | None = ADMIN, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    """The shared admin client (tests/support/admin_api.py) with this module's keys."""
    async with admin_client(database, key, **({"api_keys": KEYS} | settings)) as api:
        yield api


def operations(schema: dict) -> list[tuple[str, str]]:
    concrete = {
        "{agent_id}": "support",
        "{version}": "1",
        "{number}": "+15550100",
        "{call_sid}": "CA1",
        "{campaign_id}": "cmp_0123456789abcdef",
    }
    found = []
    for path, methods in schema["paths"].items():
        for key, value in concrete.items():
            path = path.replace(key, value)
        found += [(method.upper(), "/api" + path) for method in methods]
    return found


async def test_every_route_needs_a_key_and_the_right_scope(database: Database) -> None:
    async with (
        client(database) as admin,
        client(database, key=None) as anonymous,
        client(database, key="wrong-key-0123456789abcdef") as stranger,
        client(database, key=READER) as reader,
    ):
        schema = (await admin.get("/api/openapi.json")).json()
        ops = operations(schema)
        assert len(ops) >= 20
        for method, path in ops:
            assert (await anonymous.request(method, path)).status_code == 401, (method, path)
            assert (await stranger.request(method, path)).status_code == 401, (method, path)
            if method != "GET" or path.startswith(("/api/campaigns", "/api/numbers", "/api/do-not-call", "/api/audit")):
                response = await reader.request(method, path, json={})
                assert response.status_code == 403, (method, path)
        assert (await anonymous.get("/api/openapi.json")).status_code == 401
        assert (await anonymous.get("/api/agents", headers={"X-API-Key": ADMIN})).status_code == 200
    async with client(database, api_keys=None) as no_keys_configured:
        assert (await no_keys_configured.get("/api/agents")).status_code == 401


async def test_the_openapi_document_matches_the_routes(database: Database) -> None:
    async with client(database) as api:
        schema = (await api.get("/api/openapi.json")).json()
    assert schema["servers"] == [{"url": "/api"}]
    assert {"bearer", "apiKey"} <= set(schema["components"]["securitySchemes"])
    app = create_app(make_settings(api_keys=KEYS))
    (mount,) = [r for r in app.routes if getattr(r, "path", "") == "/api"]
    routes = []
    for route in mount.routes:  # FastAPI wraps each included router
        routes += getattr(route, "original_router", None).routes if hasattr(route, "original_router") else [route]
    served = {(m, r.path) for r in routes for m in getattr(r, "methods", ()) if m != "HEAD"}
    served -= {("GET", "/openapi.json")}
    documented = {(m.upper(), p) for p, methods in schema["paths"].items() for m in methods}
    assert served == documented


async def test_agents_are_versioned_and_errors_name_the_fields(database: Database) -> None:
    async with client(database) as api:
        created = await api.post("/api/agents", json={"id": "support", "greeting": "Hello", "language": "en-US"})
        assert created.status_code == 201 and created.json()["version"] == 1
        assert (await api.post("/api/agents", json={"id": "support"})).status_code == 409
        bad = await api.post(
            "/api/agents",
            json={"id": "Bad Id", "max_call_seconds": 1, "llm": {"temperature": 9}, "surprise": True},
        )
        assert bad.status_code == 422
        failing = {tuple(e["loc"]) for e in bad.json()["detail"]}
        assert {
            ("body", "id"),
            ("body", "max_call_seconds"),
            ("body", "llm", "temperature"),
            ("body", "surprise"),
        } <= failing
        updated = await api.put("/api/agents/support", json={"id": "support", "greeting": "Hi", "tts": {"speed": 1.2}})
        assert updated.status_code == 200 and updated.json()["version"] == 2
        stale = await api.put("/api/agents/support?expected_version=1", json={"id": "support"})
        assert stale.status_code == 409 and stale.json()["detail"][0]["loc"] == ["query", "expected_version"]
        mismatch = await api.put("/api/agents/support", json={"id": "other"})
        assert mismatch.status_code == 422 and mismatch.json()["detail"][0]["loc"] == ["body", "id"]
        assert (await api.put("/api/agents/missing", json={"id": "missing"})).status_code == 404
        assert (await api.get("/api/agents/support/versions")).json()["versions"] == [2, 1]
        assert (await api.get("/api/agents/support/versions/1")).json()["config"]["greeting"] == "Hello"
        assert (await api.get("/api/agents/support")).json()["config"]["tts"]["speed"] == 1.2
        listed = (await api.get("/api/agents?limit=1")).json()
        assert [a["id"] for a in listed["items"]] == ["support"] and listed["next"] == "support"
        assert (await api.put(f"/api/numbers/{AGENT_NUMBER}", json={"agent_id": "support"})).status_code == 200
        assert (await api.put("/api/numbers/+15550111", json={"agent_id": "nobody"})).status_code == 422
        assert (await api.get("/api/numbers")).json()["items"] == [{"number": AGENT_NUMBER, "agent_id": "support"}]
        assert (await api.delete("/api/agents/support")).status_code == 409  # a number still routes to it
        assert (await api.delete(f"/api/numbers/{AGENT_NUMBER}")).status_code == 204
        assert (await api.delete("/api/agents/support")).status_code == 204
        assert (await api.get("/api/agents/support")).status_code == 404
        assert (await api.get("/api/agents/support/versions/2")).status_code == 200  # history stays


async def test_calls_are_listed_in_pages_with_their_details(database: Database) -> None:
    calls = CallRecords(database)
    for i in range(5):
        await calls.start(f"CA{i}", agent_id="support", agent_version=2, from_number="+1", to_number="+2")
    await calls.add_turn("CA4", "caller", "Where is my order?")
    await calls.add_latency("CA4", {"turn": 1, "voice_to_voice_ms": 900.0})
    await calls.add_tool_audit("CA4", {"name": "get_order_status", "ok": True})
    async with client(database, key=READER) as api:
        first = (await api.get("/api/calls?limit=3")).json()
        second = (await api.get(f"/api/calls?limit=3&cursor={first['next']}")).json()
        sids = [c["call_sid"] for c in first["items"] + second["items"]]
        assert sorted(sids) == [f"CA{i}" for i in range(5)] and len(set(sids)) == 5 and second["next"] is None
        detail = (await api.get("/api/calls/CA4")).json()
        assert detail["agent_version"] == 2 and detail["transcript"][0]["text"] == "Where is my order?"
        assert (
            detail["latency"][0]["voice_to_voice_ms"] == 900.0 and detail["tool_audit"][0]["name"] == "get_order_status"
        )
        assert (await api.get("/api/calls/CA404")).status_code == 404
        bad = await api.get("/api/calls?cursor=%%%")
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_campaign_lifecycle_uploads_and_stats(database: Database) -> None:
    async with client(database) as api:
        bad = await api.post(
            "/api/campaigns",
            json={
                "name": "x",
                "agent_id": "echo",
                "caller_id": "555",
                "timezone": "Mars/Base",
                "calls_per_second": 0,
                "window": {"start": "20:00", "end": "09:00"},
                "voicemail": {"policy": "leave_message"},
            },
        )
        assert bad.status_code == 422
        fields = {tuple(e["loc"][:2]) for e in bad.json()["detail"]}
        assert {
            ("body", "caller_id"),
            ("body", "timezone"),
            ("body", "calls_per_second"),
            ("body", "window"),
            ("body", "voicemail"),
        } <= fields
        unknown = await api.post("/api/campaigns", json={"name": "x", "agent_id": "nobody", "caller_id": AGENT_NUMBER})
        assert unknown.status_code == 422
        created = await api.post(
            "/api/campaigns", json={"name": "spring", "agent_id": "echo", "caller_id": AGENT_NUMBER}
        )
        assert created.status_code == 201
        cid = created.json()["id"]
        csv = (
            "phone,timezone,first_name\n"
            "+15550001111,America/Denver,Ada\n"
            "not-a-number,,Bob\n"
            "+15550002222,Nowhere/Land,Cy\n"
            "+15550001111,,Dup\n"
            "+1 555 000 3333,,Eve\n"
        )
        report = await api.post(f"/api/campaigns/{cid}/contacts", content=csv, headers={"Content-Type": "text/csv"})
        assert report.status_code == 200
        body = report.json()
        assert body["inserted"] == 2 and body["rejected"] == 3
        assert [(e["row"], e["field"]) for e in body["errors"]] == [(3, "phone"), (4, "timezone"), (5, "phone")]
        again = await api.post(
            f"/api/campaigns/{cid}/contacts",
            json=[{"phone": "+15550001111"}, {"phone": "+15550004444", "variables": {"x": 1}}],
        )
        assert again.json()["inserted"] == 1 and again.json()["duplicates"] == 1
        assert (
            await api.post(f"/api/campaigns/{cid}/contacts", content="x", headers={"Content-Type": "text/plain"})
        ).status_code == 415
        assert (
            await api.post(f"/api/campaigns/{cid}/contacts", content="[1", headers={"Content-Type": "application/json"})
        ).status_code == 422
        assert (await api.post(f"/api/campaigns/{cid}/resume")).status_code == 409
        assert (await api.post(f"/api/campaigns/{cid}/start")).json()["status"] == "running"
        assert (await api.post(f"/api/campaigns/{cid}/pause")).json()["status"] == "paused"
        assert (await api.post(f"/api/campaigns/{cid}/resume")).json()["status"] == "running"
        cancelled = (await api.post(f"/api/campaigns/{cid}/cancel")).json()
        assert cancelled["status"] == "cancelled" and cancelled["stats"]["cancelled"] == 3
        assert (await api.post(f"/api/campaigns/{cid}/start")).status_code == 409
        assert (await api.post("/api/campaigns/cmp_0000000000000000/start")).status_code == 404
        assert (await api.post("/api/do-not-call", json={"numbers": ["+15550009999"]})).json() == {"added": 1}
        assert (await api.get("/api/do-not-call")).json()["items"][0]["number"] == "+15550009999"


async def test_campaigns_match_their_documented_schema_formats_included(database: Database) -> None:
    """Window times are zone-less: the document must not call them JSON Schema `time` (RFC 3339
    full-time, which needs an offset), or a strict client rejects every campaign the API returns."""
    async with client(database) as api:
        document = (await api.get("/api/openapi.json")).json()
        created = await api.post(
            "/api/campaigns",
            json={
                "name": "night",
                "agent_id": "echo",
                "caller_id": AGENT_NUMBER,
                "window": {"start": "08:30", "end": "17:45:30.25"},
            },
        )
        assert created.status_code == 201
        listed = (await api.get("/api/campaigns")).json()
    window = created.json()["spec"]["window"]
    assert (window["start"], window["end"]) == ("08:30:00", "17:45:30.250000")
    ref = {"$ref": "#/components/schemas/CampaignOut", "components": document["components"]}
    validator = jsonschema.Draft202012Validator(ref, format_checker=jsonschema.FormatChecker())
    assert list(validator.iter_errors(created.json())) == []
    assert list(validator.iter_errors(listed["items"][0])) == []
    assert not validator.is_valid(created.json() | {"spec": created.json()["spec"] | {"window": {"start": "9am"}}})


async def test_bodies_are_bounded(database: Database) -> None:
    async with client(database, api_max_body_bytes=2048) as api:
        response = await api.post("/api/agents", json={"id": "big", "system_prompt": "x" * 5000})
        assert response.status_code == 413
