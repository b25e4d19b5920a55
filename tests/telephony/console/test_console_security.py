"""The console's doors, over real HTTP: nothing works without a session, the cookie's flags, CSRF on every write,
same-origin writes only, sessions that cannot be forged or outlive their key, and a bound on failed logins."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from telephony.console.app import build_console
from telephony.console.guard import MAX_FORM_BYTES
from telephony.console.session import COOKIE_NAME, SessionSigner
from telephony.simulator import SimulatedCall
from telephony.simulator.script import Pause, Press
from tests.support.console_client import console_login, page_csrf
from tests.support.console_pod import CALLS_ONLY_KEY, CONSOLE_SECRET, OTHER_TENANT_KEY, VIEWER_KEY, console_pod
from tests.support.fake_twilio import ACCOUNT_SID
from tests.support.live_pod import ADMIN_KEY
from tests.support.record_pod import AGENT
from tests.support.settings import AUTH_TOKEN

pytestmark = pytest.mark.mongodb

RECORDED = "+15550192"

PAGES = [
    "/console/",
    "/console/agents",
    "/console/agents/new",
    "/console/agents/x",
    "/console/agents/x/versions",
    "/console/calls",
    "/console/calls/live",
    "/console/calls/CA1",
    "/console/calls/CA1/live",
    "/console/campaigns",
    "/console/campaigns/c1",
    "/console/health",
]
ASSETS = ["/console/static/console.js", "/console/static/console.css", "/console/health.json", "/console/api/calls"]
WRITES = [
    "/console/agents/new",
    "/console/agents/x",
    "/console/agents/x/rollback",
    "/console/calls/CA1/end",
    "/console/campaigns",
    "/console/campaigns/c1/pause",
    "/console/api/agents",
    "/console/logout",
]


async def test_no_page_asset_or_write_works_without_a_session() -> None:
    async with console_pod(console_secure_cookie=False) as pod, httpx.AsyncClient(base_url=pod.url) as client:
        for path in PAGES:
            answer = await client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/console/login?next="), path
        for path in ASSETS:
            assert (await client.get(path)).status_code == 401, path
        for path in WRITES:
            assert (await client.post(path, data={"csrf_token": "x"})).status_code == 401, path
        client.cookies.set(COOKIE_NAME, "eyJrIjoiMWIzYWY3ZDJmMWYzIn0.c2lnbmF0dXJl")
        assert (await client.get("/console/agents")).status_code == 303
        client.cookies.clear()
        login = await client.get("/console/login")
        assert login.status_code == 200
        assert "<script" not in login.text and "<link" not in login.text  # the one public page loads nothing


async def test_the_session_cookie_is_httponly_samesite_strict_secure_and_scoped_to_the_console() -> None:
    async with console_pod() as pod, httpx.AsyncClient(base_url=pod.url) as client:
        form = await client.get("/console/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert token
        client.cookies.set("switchboard_console_login", token.group(1))  # httpx keeps no Secure cookie over http
        answer = await client.post("/console/login", data={"api_key": ADMIN_KEY, "login_csrf": token.group(1)})
        assert answer.status_code == 303
        cookie = next(v for v in answer.headers.get_list("set-cookie") if v.startswith(f"{COOKIE_NAME}="))
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=strict", "path=/console"} <= flags, cookie
        assert ADMIN_KEY not in cookie  # the key itself never leaves the form
        headers = answer.headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"


async def test_every_write_needs_the_csrf_token_and_this_origin() -> None:
    async with console_pod(console_secure_cookie=False) as pod, httpx.AsyncClient(base_url=pod.url) as client:
        assert (await console_login(client, ADMIN_KEY)).status_code == 303
        csrf = await page_csrf(client)
        body = {"id": "sales", "greeting": "Hi", "advanced": "{}"}
        assert (await client.post("/console/agents/new", data=body)).status_code == 403
        assert (await client.post("/console/agents/new", data=body | {"csrf_token": "wrong"})).status_code == 403
        assert (await client.post("/console/api/agents", json={"id": "sales"})).status_code == 403
        evil = {"origin": "http://evil.example"}
        assert (
            await client.post("/console/agents/new", data=body | {"csrf_token": csrf}, headers=evil)
        ).status_code == 403
        assert (await pod.api.get("/api/agents/sales")).status_code == 404  # none of them wrote anything
        made = await client.post("/console/agents/new", data=body | {"csrf_token": csrf})
        assert made.status_code == 303 and made.headers["location"] == "/console/agents/sales"
        via_api = await client.post("/console/api/agents", json={"id": "sales-two"}, headers={"x-csrf-token": csrf})
        assert via_api.status_code == 201
        audit = (await pod.api.get("/api/audit")).json()["items"]
        assert any(entry["path"] == "/agents" and entry["status"] == 201 for entry in audit)  # the API's audit log


async def test_a_read_only_key_is_refused_writes_by_the_api_itself() -> None:
    async with console_pod(console_secure_cookie=False) as pod, httpx.AsyncClient(base_url=pod.url) as client:
        assert (await pod.api.post("/api/agents", json={"id": "billing"})).status_code == 201
        assert (await console_login(client, VIEWER_KEY)).status_code == 303
        csrf = await page_csrf(client)
        answer = await client.post(
            "/console/agents/billing", data={"csrf_token": csrf, "greeting": "x", "advanced": "{}"}
        )
        assert answer.status_code == 403
        assert "agents:write" in answer.text


async def test_a_session_ends_with_its_key_and_cannot_be_extended() -> None:
    signer = SessionSigner(CONSOLE_SECRET, lifetime_s=60)
    cookie, session = signer.issue("0123456789ab")
    assert signer.read(cookie) == session
    payload, signature = cookie.split(".")
    assert signer.read(payload[:-2] + "xx." + signature) is None
    assert SessionSigner("another-secret-0123456789", 60).read(cookie) is None
    expired = SessionSigner(CONSOLE_SECRET, lifetime_s=-1).issue("0123456789ab")[0]
    assert signer.read(expired) is None
    async with console_pod(console_secure_cookie=False) as pod, httpx.AsyncClient(base_url=pod.url) as client:
        await console_login(client, VIEWER_KEY)
        assert (await client.get("/console/agents")).status_code == 200
        cookies = dict(client.cookies)
    async with (
        console_pod(console_secure_cookie=False, api_keys=f"{ADMIN_KEY}:*") as pod,
        httpx.AsyncClient(base_url=pod.url, cookies=cookies) as client,
    ):
        assert (await client.get("/console/agents")).status_code == 303  # the viewer key is gone: so is its session


async def test_failed_logins_are_bounded_per_address() -> None:
    async with (
        console_pod(console_secure_cookie=False, console_login_failures_per_minute=3) as pod,
        httpx.AsyncClient(base_url=pod.url) as client,
    ):
        statuses = [(await console_login(client, "not-a-key-0123456789")).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        assert (await console_login(client, ADMIN_KEY)).status_code == 429  # even the right key waits the minute


async def test_without_a_secret_the_console_says_what_to_set() -> None:
    async with console_pod(console_secret=None) as pod, httpx.AsyncClient(base_url=pod.url) as client:
        answer = await client.get("/console/login")
        assert answer.status_code == 503 and "SWITCHBOARD_CONSOLE_SECRET" in answer.text


def test_every_asset_ships_with_the_package_no_cdn() -> None:
    folder = Path(build_console.__code__.co_filename).parent
    for path in [*folder.glob("templates/*.html"), *folder.glob("static/*")]:
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert "@import" not in text and "url(http" not in text, path


async def test_a_recording_is_served_only_to_a_session_whose_key_reads_that_tenants_calls() -> None:
    async with console_pod(console_secure_cookie=False) as pod:
        config = AGENT.model_dump(mode="json") | {"id": "recorded-calls", "record": True}
        assert (await pod.api.post("/api/agents", json=config)).status_code == 201
        assert (await pod.api.put(f"/api/numbers/{RECORDED}", json={"agent_id": "recorded-calls"})).status_code == 200
        script = [Pause(1.0), Press("1#"), Pause(1.5)]
        call = SimulatedCall(pod.url, AUTH_TOKEN, to=RECORDED, script=script, account_sid=ACCOUNT_SID)
        report = await call.run()
        path = f"/api/calls/{report.call_sid}/recording"
        for _ in range(100):  # the recording's last chunk is stored as the call ends
            if (await pod.api.get(path, headers={"range": "bytes=0-3"})).status_code == 206:
                break
            await asyncio.sleep(0.1)
        whole = await pod.api.get(path)
        assert whole.status_code == 200 and whole.content[:4] == b"RIFF"
        answers = {}
        for name, key in [
            ("admin", ADMIN_KEY),
            ("viewer", VIEWER_KEY),
            ("other", OTHER_TENANT_KEY),
            ("no-read", CALLS_ONLY_KEY),
        ]:
            async with httpx.AsyncClient(base_url=pod.url) as client:
                assert (await console_login(client, key)).status_code == 303
                fetched = await client.get(f"/console{path}", headers={"range": "bytes=0-43"})
                answers[name] = (fetched.status_code, fetched.content[:4])
            async with pod.client(key) as direct:
                ranged = await direct.get(path, headers={"range": "bytes=0-43"})
                assert ranged.status_code == answers[name][0], name  # the API itself agrees
        assert answers["admin"] == (206, b"RIFF") and answers["viewer"] == (206, b"RIFF")
        assert answers["other"][0] == 404  # another tenant's key cannot even learn that the call exists
        assert answers["no-read"][0] == 403  # a key without calls:read


async def test_no_console_form_can_grow_without_bound_the_login_form_included() -> None:
    huge = {"api_key": "x" * (MAX_FORM_BYTES + 1), "login_csrf": "t"}
    async with console_pod(console_secure_cookie=False) as pod, httpx.AsyncClient(base_url=pod.url) as client:
        assert (await client.post("/console/login", data=huge)).status_code == 413
        assert (await console_login(client, ADMIN_KEY)).status_code == 303
        csrf = await page_csrf(client)
        big = {"csrf_token": csrf, "id": "big", "advanced": "{}", "system_prompt": "x" * MAX_FORM_BYTES}
        assert (await client.post("/console/agents/new", data=big)).status_code == 413
        files = {"advanced": ("a.json", b"{}" + b" " * MAX_FORM_BYTES)}
        multipart = await client.post("/console/agents/new", files=files, headers={"x-csrf-token": csrf})
        assert multipart.status_code == 413
        assert (await pod.api.get("/api/agents/big")).status_code == 404
