"""Every admin write leaves an audit entry: which key (an id, never the secret), what (method, path,
resource, the fields sent, the status), when; read back through `GET /api/audit` with `audit:read`."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator

import pytest

from db import Database
from tests.support.admin_api import admin_client
from tests.support.db import open_test_database
from tests.support.db_outage import cuttable

pytestmark = pytest.mark.mongodb

ADMIN = "admin-key-0123456789abcdef"
AUDITOR = "auditor-key-0123456789abcdef"
WRITER = "writer-key-0123456789abcdef"
KEYS = f"{ADMIN}:*;{AUDITOR}:audit:read;{WRITER}:agents:write,agents:read"


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as db:
        yield db


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


async def test_writes_are_audited_with_the_key_id_and_the_fields_never_the_secret(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        admin_client(database, WRITER, api_keys=KEYS) as writer,
        admin_client(database, AUDITOR, api_keys=KEYS) as auditor,
    ):
        assert (await writer.post("/api/agents", json={"id": "sales", "greeting": "Hi"})).status_code == 201
        assert (await writer.put("/api/agents/sales", json={"id": "sales", "voice": "nope"})).status_code == 422
        assert (await writer.get("/api/agents/sales")).status_code == 200  # reads are not audited
        assert (await writer.delete("/api/agents/sales")).status_code == 204
        assert (await writer.post("/api/tools", json={})).status_code == 403  # refused before the app: no scope
        page = await auditor.get("/api/audit?limit=10")
        assert page.status_code == 200, page.text
        entries = page.json()["items"]
        assert [(e["method"], e["path"], e["status"]) for e in entries] == [
            ("DELETE", "/agents/sales", 204),
            ("PUT", "/agents/sales", 422),
            ("POST", "/agents", 201),
        ]
        created = entries[-1]
        assert created["key_id"] == key_id(WRITER) and created["resource"] == "agents"
        assert created["resource_id"] == "sales" and created["fields"] == ["greeting", "id"]
        assert entries[1]["fields"] == ["id", "voice"]
        assert all(e["at"] for e in entries)
        cursor = (await auditor.get("/api/audit?limit=1")).json()["next"]
        older = await auditor.get(f"/api/audit?limit=10&cursor={cursor}")
        assert [e["method"] for e in older.json()["items"]] == ["PUT", "POST"]
        assert (await auditor.get("/api/audit?cursor=not-a-cursor")).status_code == 422
    everything = page.text + "".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert WRITER not in everything and AUDITOR not in everything


async def test_reading_the_audit_log_needs_its_scope(database: Database) -> None:
    async with admin_client(database, WRITER, api_keys=KEYS) as writer, admin_client(database, api_keys=KEYS) as admin:
        assert (await writer.get("/api/audit")).status_code == 403
        assert (await admin.get("/api/audit")).status_code == 200


async def test_an_audit_entry_the_database_refuses_is_counted_and_never_fails_the_write(database: Database) -> None:
    down, client = cuttable(database)
    async with admin_client(down, api_keys=KEYS) as admin:
        client.cut = True
        mismatch = await admin.put("/api/agents/sales", json={"id": "other"})  # answered without the database
        assert mismatch.status_code == 422
        exported = (await admin.get("/metrics")).text.splitlines()
        assert "switchboard_admin_audit_writes_failed_total 1.0" in exported
        client.cut = False
        assert (await admin.get("/api/audit")).json()["items"] == []
