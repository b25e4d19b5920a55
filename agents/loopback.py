"""uvicorn on a loopback port: the one server runner of the demo, the tests, the benchmarks and the
test fakes (the pod, the speech service, a scripted model server).

`async with LoopbackServer(app) as url:` serves on the running event loop; `with LoopbackServer(app)
as url:` serves on a thread with a loop of its own (for sync callers). The socket is bound when the
object is made, so `port` and `url` are known before it starts (an app that must know its own URL
is made afterwards and handed over with `mount`), and a given port lets a test stop a server and
start another there. It never takes over Ctrl-C: that stays with the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

STOP_SECONDS = 10.0  # a thread's server gets this long to stop gracefully, then as long again forced


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LoopbackServer:
    def __init__(self, app: Any = None, *, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        """`port` 0 picks a free one. `options` go to `uvicorn.Config` (by default no log config of
        its own, no access log, lifespan "auto")."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        config = {"log_config": None, "access_log": False, **options, "host": host, "port": self.port}
        self._server = _QuietServer(uvicorn.Config(app, **config))
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def mount(self, app: Any) -> None:
        """Serve `app` (made after the port was known); before the server starts only."""
        if self._server.started:
            raise RuntimeError("the server has started")
        self._server.config.app = app

    # -- on the running loop ----------------------------------------------------------------------

    async def __aenter__(self) -> str:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name=f"uvicorn:{self.port}")
        while not self._server.started:
            if self._task.done():
                self._sock.close()
                await self._task  # raises what stopped it
                raise RuntimeError("server failed to start")
            await asyncio.sleep(0.01)
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()

    # -- on a thread of its own -------------------------------------------------------------------

    def __enter__(self) -> str:
        self._thread = threading.Thread(target=self._run, name="uvicorn", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                self._sock.close()
                raise RuntimeError("server failed to start")
            threading.Event().wait(0.01)
        return self.url

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def __exit__(self, *exc: object) -> None:
        """Stops gracefully, then cuts connections still open after `STOP_SECONDS`: a server thread
        left running would serve, and log, for the rest of the process."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STOP_SECONDS)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=STOP_SECONDS)
        self._sock.close()
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"the server on port {self.port} did not stop in {2 * STOP_SECONDS:g} s")
