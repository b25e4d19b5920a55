"""Who may call the admin API: API keys with scopes, checked before anything else is read.

A pure ASGI middleware in front of every `/api` route: no key or an unknown key -> 401, a key
without the route's scope -> 403 (`GET` needs `<resource>:read`, anything else `<resource>:write`,
the OpenAPI document any valid key). Keys come as `Authorization: Bearer <key>` or `X-API-Key`,
are compared as SHA-256 digests with `hmac.compare_digest` against every configured key (no early
exit on a match), and are never logged. The body is read here too, up to its bound (413 past it),
so a huge body costs nothing before the caller is known. Every write that reaches a route is then
handed to the audit log with the key's id (a digest prefix, never the key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RESOURCE_OF = {
    "agents": "agents",
    "tools": "tools",
    "numbers": "numbers",
    "calls": "calls",
    "campaigns": "campaigns",
    "do-not-call": "campaigns",
    "audit": "audit",
    "ops": "ops",
}
KEY_ID_HEX = 12
"""Hex digits of a key's SHA-256 that name it in the audit log (never enough to recover it)."""
AuditHook = Callable[[str, str, str, bytes, int], Awaitable[None]]
"""(key id, method, path, body, status) of a write that reached a route."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()[:KEY_ID_HEX]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", errors="replace")).digest()


PRINCIPAL_SCOPE_KEY = "switchboard.principal"
"""The ASGI scope entry through which an in-process caller (the console, after its own session check) names the
key it acts for. Only code in this process can set it: no header or cookie reaches it."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: a configured key's id (a digest prefix, never the key) and its scopes."""

    key_id: str
    scopes: frozenset[str]

    @property
    def tenant(self) -> str | None:
        """The tenant this key is restricted to (`tenant:<name>`), or None for an unrestricted key."""
        return next((scope.partition(":")[2] for scope in self.scopes if scope.startswith("tenant:")), None)

    def allows(self, scope: str | None) -> bool:
        return scope is None or scope in self.scopes or "*" in self.scopes


class KeyRing:
    def __init__(self, keys: Mapping[str, frozenset[str]]) -> None:
        self._keys = [(_digest(key), scopes) for key, scopes in keys.items()]
        self._by_id = {key_id(key): scopes for key, scopes in keys.items()}

    def principal(self, presented: str | None) -> Principal | None:
        scopes = self.scopes(presented)
        return None if scopes is None or presented is None else Principal(key_id(presented), scopes)

    def by_id(self, id_: str) -> Principal | None:
        """The key with this id, if it is still configured (a console session dies with its key)."""
        scopes = self._by_id.get(id_)
        return None if scopes is None else Principal(id_, scopes)

    def scopes(self, presented: str | None) -> frozenset[str] | None:
        """The scopes of `presented`, or None if it is no key of ours (constant time in the key)."""
        if not presented:
            return None
        digest = _digest(presented)
        found: frozenset[str] | None = None
        for known, scopes in self._keys:
            if hmac.compare_digest(known, digest):
                found = scopes
        return found


def required_scope(method: str, path: str) -> str | None:
    """The scope a request needs (None: any valid key)."""
    resource = RESOURCE_OF.get(path.strip("/").split("/")[0])
    if resource is None:
        return None
    return f"{resource}:{'read' if method in ('GET', 'HEAD') else 'write'}"


def presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


class ApiKeyAuth:
    def __init__(
        self,
        app: ASGIApp,
        keys: Callable[[], KeyRing],
        max_body: Callable[[str], int],
        audit: AuditHook | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.max_body = max_body
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = (
            scope["path"][len(scope.get("root_path", "")) :]
            if scope["path"].startswith(scope.get("root_path", ""))
            else scope["path"]
        )
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        if not isinstance(principal, Principal):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            principal = self.keys().principal(presented_key(headers))
        if principal is None:
            await _json(send, 401, "missing or invalid API key", {"www-authenticate": "Bearer"})
            return
        needed = required_scope(scope["method"], path)
        if not principal.allows(needed):
            await _json(send, 403, f"this key lacks the scope {needed}")
            return
        scope = {**scope, "state": {**scope.get("state", {}), "principal": principal}}
        body = await _read_body(receive, self.max_body(path))
        if body is None:
            await _json(send, 413, "request body too large")
            return
        if self.audit is None or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, _replay(body, receive), send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), sending)
        finally:
            await self.audit(principal.key_id, scope["method"], path, body, status)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(body)
        body.extend(message.get("body", b""))
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, then: Receive) -> Receive:
    """The body read already, then the connection's own messages (its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then()

    return receive


async def _json(send: Send, status: int, detail: str, extra: Mapping[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
