"""The one loopback server runner: the same app served on the running loop and on a thread of its own."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from agents import loopback
from agents.loopback import LoopbackServer


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def endless(request: Request) -> StreamingResponse:
    async def ticks() -> AsyncIterator[bytes]:
        while True:
            yield b"tick\n"
            await asyncio.sleep(0.05)

    return StreamingResponse(ticks())


APP = Starlette(routes=[Route("/", hello), Route("/endless", endless)])


async def test_serves_on_the_running_loop_and_frees_the_port() -> None:
    server = LoopbackServer(APP)
    async with server as url:
        assert url == f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).text == "hello"
    async with LoopbackServer(APP, port=server.port) as again:  # the port can be taken again at once
        async with httpx.AsyncClient() as client:
            assert (await client.get(again)).text == "hello"


def test_serves_on_a_thread_for_sync_callers() -> None:
    with LoopbackServer(APP) as url:
        assert httpx.get(url).text == "hello"
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_a_thread_server_held_open_by_a_client_is_stopped_all_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """A response that never ends holds uvicorn's graceful shutdown for ever: after `STOP_SECONDS`
    the connection is cut, so no server thread outlives its `with`."""
    monkeypatch.setattr(loopback, "STOP_SECONDS", 0.5)
    before = set(threading.enumerate())
    with LoopbackServer(APP, timeout_graceful_shutdown=None) as url:
        port = int(url.rsplit(":", 1)[1])
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(b"GET /endless HTTP/1.1\r\nHost: test\r\n\r\n")
        assert held.recv(1024).startswith(b"HTTP/1.1 200")
    try:
        assert not [t for t in threading.enumerate() if t.name == "uvicorn" and t not in before and t.is_alive()]
    finally:
        held.close()
