"""Running the app under uvicorn: in the foreground (`switchboard serve`) or on a background
thread with its own event loop (the demo, tests and benchmarks)."""

from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn
from starlette.applications import Starlette

from telephony.settings import Settings


def uvicorn_config(app: Starlette, settings: Settings, **overrides: object) -> uvicorn.Config:
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "ws_max_size": settings.ws_max_frame_bytes,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]


def serve(app: Starlette, settings: Settings) -> None:
    uvicorn.Server(uvicorn_config(app, settings)).run()


class BackgroundServer:
    """uvicorn on a loopback port in a thread of its own; `with BackgroundServer(app) as url:`."""

    def __init__(self, app: Starlette, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        """`port` 0 picks a free one; a given port lets a test stop a server and start it again there."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._server = uvicorn.Server(uvicorn_config(app, settings, host=host, port=self.port))
        self._thread = threading.Thread(target=self._run, name="uvicorn", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def __enter__(self) -> str:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("server failed to start")
            threading.Event().wait(0.01)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
