"""The one loopback server runner: the same app served on the running loop and on a thread of its own."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from agents.loopback import LoopbackServer


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", hello)])


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
