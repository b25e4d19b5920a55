"""Running the app under uvicorn: in the foreground (`switchboard serve`) or on a loopback port
(the demo, tests and benchmarks: `agents.loopback`, the one server runner)."""

from __future__ import annotations

import uvicorn
from starlette.applications import Starlette

from agents.loopback import LoopbackServer
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


class BackgroundServer(LoopbackServer):
    """The app on a loopback port with the pod's uvicorn options (frame bound, lifespan on), on a
    thread of its own (`with BackgroundServer(app, settings) as url:`) or on the running loop
    (`async with`)."""

    def __init__(self, app: Starlette, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        """`port` 0 picks a free one; a given port lets a test stop a server and start it again there."""
        super().__init__(app, host=host, port=port, ws_max_size=settings.ws_max_frame_bytes, lifespan="on")
