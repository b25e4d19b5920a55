"""Every console request is checked here before a page runs: a session, a key that still exists, CSRF on writes.

- No page, asset or API call works without a session: pages redirect to the login form, everything else gets 401.
  Only the login form itself (`/login`) answers without one, and it loads no asset.
- A session names a key by id; if the key is gone from `SWITCHBOARD_API_KEYS`, the session is over.
- Every write (any method but GET/HEAD) carries the session's CSRF token, as the header `X-CSRF-Token` or the form
  field `csrf_token` (forms are url-encoded; uploads go through `/console/api` with the header), and an `Origin`,
  when the browser sends one, must be this host. The session cookie is HttpOnly and SameSite=Strict on top.
- Every answer gets a strict Content-Security-Policy (only this origin's scripts, styles and media), no framing, no
  referrer beyond this origin, and `no-store` caching.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telephony.admin.auth import KeyRing, Principal
from telephony.console.session import COOKIE_NAME, Session, SessionSigner

PUBLIC_PATHS = frozenset({"/login"})
MAX_FORM_BYTES = 256 * 1024
"""Bound on a console form's body, the login form's included (an agent config fits); uploads go to `/console/api`."""
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Console:
    """What a page knows about its visitor: the session (its CSRF token) and the key it acts for."""

    session: Session
    principal: Principal


def cookie_of(headers: Headers) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME:
            return value
    return None


class ConsoleGuard:
    def __init__(self, app: ASGIApp, signer: Callable[[], SessionSigner | None], keys: Callable[[], KeyRing]) -> None:
        self.app = app
        self.signer = signer
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(12)
        send = _with_security_headers(send, nonce)
        scope = {**scope, "state": {**scope.get("state", {}), "nonce": nonce}}
        signer = self.signer()
        if signer is None:
            await _answer(send, 503, "text/plain", b"the console needs SWITCHBOARD_CONSOLE_SECRET (16+ characters)")
            return
        path = _route_path(scope)
        headers = Headers(scope=scope)
        if path in PUBLIC_PATHS:
            if scope["method"] not in SAFE_METHODS:
                body, receive = await _buffered(receive, path)
                if body is None:
                    await _answer(send, 413, "application/json", b'{"detail": "form too large"}')
                    return
            await self.app(scope, receive, send)
            return
        session = signer.read(cookie_of(headers))
        principal = self.keys().by_id(session.key_id) if session is not None else None
        if session is None or principal is None:
            if path.startswith(("/api/", "/static/")) or path.endswith(".json") or scope["method"] not in SAFE_METHODS:
                await _answer(send, 401, "application/json", b'{"detail": "log in to the console first"}')
                return
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope.get("root_path", "") + path + (f"?{query}" if query else "")
            await _redirect(send, f"{scope.get('root_path', '')}/login?next={quote(target, safe='')}")
            return
        if scope["method"] not in SAFE_METHODS:
            if not _same_origin(headers):
                await _answer(send, 403, "application/json", b'{"detail": "cross-origin write refused"}')
                return
            body, receive = await _buffered(receive, path)
            if body is None:
                await _answer(send, 413, "application/json", b'{"detail": "form too large"}')
                return
            if not _csrf_ok(session, headers, body):
                await _answer(send, 403, "application/json", b'{"detail": "missing or wrong CSRF token"}')
                return
        scope["state"]["console"] = Console(session, principal)
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    root = scope.get("root_path", "")
    path: str = scope["path"]
    return path[len(root) :] if root and path.startswith(root) else path


def _same_origin(headers: Headers) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _csrf_ok(session: Session, headers: Headers, body: bytes) -> bool:
    token = headers.get("x-csrf-token")
    if token is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        token = (parse_qs(body.decode("utf-8", errors="replace")).get("csrf_token") or [None])[0]
    return token is not None and hmac.compare_digest(token.encode(), session.csrf.encode())


async def _buffered(receive: Receive, path: str) -> tuple[bytes | None, Receive]:
    """A console form's whole body, read up to `MAX_FORM_BYTES` (None past it) and replayed to the page, so no form
    can grow without bound and its CSRF token can be read. `/api/...` writes stream through: the API bounds them."""
    if path.startswith("/api/"):
        return b"", receive
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body.extend(message.get("body", b""))
        if len(body) > MAX_FORM_BYTES:
            return None, receive
        if not message.get("more_body", False):
            break
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}
        return await receive()

    return bytes(body), replay


def _with_security_headers(send: Send, nonce: str) -> Send:
    policy = (
        "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self'; "
        f"style-src 'self' 'nonce-{nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            extra = {
                b"content-security-policy": policy.encode(),
                b"x-frame-options": b"DENY",
                b"x-content-type-options": b"nosniff",
                b"referrer-policy": b"same-origin",
                b"cache-control": b"no-store",
            }
            headers += [(name, value) for name, value in extra.items() if name not in names]
            message = {**message, "headers": headers}
        await send(message)

    return sending


async def _answer(send: Send, status: int, content_type: str, body: bytes) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
