"""A fake operator REST backend (Starlette) for the declared http tool tests: served on loopback by
`LoopbackServer`, it records every request it gets and answers the ways a real backend can go wrong
(redirects, 503s, oversize, slow, not JSON, echoing a header back)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

API_KEY = "sk-live-4f9a1c2e8b7d6053"
"""The secret the backend expects in `X-Api-Key` (and the tests hand the tool by name)."""
ORDERS = {
    "50001": {"id": "50001", "customer_id": "C-1001", "status": "shipped", "internal_note": "VIP, margin 40%"},
    "50004": {"id": "50004", "customer_id": "C-1002", "status": "processing", "internal_note": "fraud check"},
}


@dataclass
class SeenRequest:
    method: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeHttpBackend:
    slow_s: float = 30.0
    """How long /slow waits before it answers (unless `release` is set first)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    """Set it to let a waiting /slow answer at once (so the server can stop)."""
    redirect_to: str = "https://evil.example.net/steal"
    """Where /redirect sends the client."""
    requests: list[SeenRequest] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    """Requests per route name."""

    @property
    def app(self) -> Starlette:
        routes = [
            Route("/orders/{order_id}", self._order, methods=["GET"]),
            Route("/orders", self._orders, methods=["GET"]),
            Route("/admin", self._admin, methods=["GET", "POST"]),
            Route("/flaky", self._flaky, methods=["GET", "POST"]),
            Route("/notes", self._notes, methods=["POST"]),
            Route("/redirect", self._redirect, methods=["GET"]),
            Route("/big", self._big, methods=["GET"]),
            Route("/big-declared", self._big_declared, methods=["GET"]),
            Route("/slow", self._slow, methods=["GET"]),
            Route("/text", self._text, methods=["GET"]),
            Route("/echo", self._echo, methods=["GET"]),
            Route("/{anything:path}", self._unknown, methods=["GET", "POST", "PUT", "PATCH"]),
        ]
        return Starlette(routes=routes)

    async def _seen(self, request: Request, route: str) -> SeenRequest:
        self.hits[route] += 1
        seen = SeenRequest(
            method=request.method,
            raw_path=request.scope["raw_path"].decode("latin-1"),
            query=request.scope["query_string"].decode("latin-1"),
            headers={key.lower(): value for key, value in request.headers.items()},
            body=await request.body(),
        )
        self.requests.append(seen)
        return seen

    async def _unknown(self, request: Request) -> Response:
        await self._seen(request, "unknown")
        return JSONResponse({"error": "not found"}, status_code=404)

    async def _order(self, request: Request) -> Response:
        seen = await self._seen(request, "order")
        if seen.headers.get("x-api-key") != API_KEY:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        order = ORDERS.get(request.path_params["order_id"])
        if order is None or order["customer_id"] != request.query_params.get("customer_id"):
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse({"order": order, "served_by": "fake-backend"})

    async def _orders(self, request: Request) -> Response:
        await self._seen(request, "orders")
        customer = request.query_params.get("customer_id")
        return JSONResponse([order for order in ORDERS.values() if order["customer_id"] == customer])

    async def _admin(self, request: Request) -> Response:
        await self._seen(request, "admin")
        return JSONResponse({"order": {"status": "ADMIN AREA"}})

    async def _flaky(self, request: Request) -> Response:
        await self._seen(request, "flaky")
        if self.hits["flaky"] < 3:
            return JSONResponse({"error": "busy"}, status_code=503)
        return JSONResponse({"order": {"status": "shipped"}})

    async def _notes(self, request: Request) -> Response:
        await self._seen(request, "notes")
        return JSONResponse({"error": "busy"}, status_code=503)

    async def _redirect(self, request: Request) -> Response:
        await self._seen(request, "redirect")
        return RedirectResponse(self.redirect_to, status_code=302)

    async def _big(self, request: Request) -> Response:
        """About 200 KB of JSON, streamed without a Content-Length."""
        await self._seen(request, "big")

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"order": {"status": "shipped", "padding": "'
            for _ in range(200):
                yield b"x" * 1024
            yield b'"}}'

        return StreamingResponse(chunks(), media_type="application/json")

    async def _big_declared(self, request: Request) -> Response:
        await self._seen(request, "big-declared")
        return JSONResponse({"order": {"status": "shipped", "padding": "x" * 200_000}})

    async def _slow(self, request: Request) -> Response:
        await self._seen(request, "slow")
        try:
            await asyncio.wait_for(self.release.wait(), self.slow_s)
        except TimeoutError:
            pass
        return JSONResponse({"order": {"status": "late"}})

    async def _text(self, request: Request) -> Response:
        await self._seen(request, "text")
        return PlainTextResponse("<html>maintenance</html>")

    async def _echo(self, request: Request) -> Response:
        """A careless backend that echoes the request's headers in its answer."""
        seen = await self._seen(request, "echo")
        return JSONResponse({"order": {"status": "ok", "note": f"seen {json.dumps(seen.headers)}"}})
