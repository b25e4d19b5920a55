"""The console reaches the admin API in-process, as the logged-in key: same routes, same validation, same scopes.

Nothing is re-implemented for the console: a page that saves an agent sends the API's own request, so its 422 field
errors, 403 for a missing scope and the audit log of writes are the API's. The key is named through the ASGI scope
(`PRINCIPAL_SCOPE_KEY`), which only this process can set; the browser's own `/console/api/...` requests (the live
transcript's event stream, the recording, a contact upload) are forwarded the same way, streamed, not buffered.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from telephony.admin.auth import PRINCIPAL_SCOPE_KEY, Principal

INTERNAL_BASE_URL = "http://console.internal"
API_TIMEOUT_S = 30.0
"""Bound on one in-process API request a page makes."""


class ApiBridge:
    def __init__(self, admin: ASGIApp) -> None:
        self.admin = admin

    def _as(self, principal: Principal) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await self.admin({**scope, PRINCIPAL_SCOPE_KEY: principal}, receive, send)

        return app

    async def request(
        self,
        principal: Principal,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One API request (`path` as under `/api`, e.g. `/agents`), buffered: for pages, not streams."""
        transport = httpx.ASGITransport(app=self._as(principal))
        async with httpx.AsyncClient(transport=transport, base_url=INTERNAL_BASE_URL, timeout=API_TIMEOUT_S) as client:
            return await client.request(method, path, params=params, json=json, content=content, headers=headers)

    async def forward(self, principal: Principal, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """The browser's request to `/console/api<path>`, handed to the API as `<path>` and streamed back."""
        inner = {**scope, "path": path, "raw_path": path.encode(), "root_path": ""}
        await self._as(principal)(inner, receive, send)
