"""The Starlette application: the routes, and a lifespan that opens the pod they serve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute

from telephony.admin import API_PREFIX, build_admin_api
from telephony.admin.auth import KeyRing
from telephony.console.app import CONSOLE_PREFIX, build_console
from telephony.pod import open_pod
from telephony.pod_health.health import drain, healthz, metrics, readyz, undrain
from telephony.settings import Settings
from telephony.twilio.media_stream import media_stream
from telephony.twilio.outbound import (
    AMD_STATUS_PATH,
    CALL_STATUS_PATH,
    OUTBOUND_ANSWER_PATH,
    amd_status,
    call_status,
    outbound_answer,
)
from telephony.twilio.webhooks import CONNECT_ACTION_PATH, MEDIA_PATH, VOICE_PATH, connect_action, voice


def create_app(settings: Settings, **pod_overrides: Any) -> Starlette:
    """The pod's web app. Its lifespan opens the pod (`open_pod(settings, **pod_overrides)`: the
    memory guard, database, engines and agents, models included, before taking calls) and closes
    it at shutdown; handlers reach it as `request.app.state.pod`."""
    admin = build_admin_api(settings)
    console = build_console(settings, admin, KeyRing(settings.api_key_scopes()), pod=lambda: admin.state.pod)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_pod(settings, **pod_overrides) as pod:
            app.state.pod = admin.state.pod = pod
            yield

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route(VOICE_PATH, voice, methods=["POST"]),
            Route(CONNECT_ACTION_PATH, connect_action, methods=["POST"]),
            WebSocketRoute(MEDIA_PATH, media_stream),
            Route(OUTBOUND_ANSWER_PATH, outbound_answer, methods=["POST"]),
            Route(CALL_STATUS_PATH, call_status, methods=["POST"]),
            Route(AMD_STATUS_PATH, amd_status, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/drain", drain, methods=["POST"]),
            Route("/undrain", undrain, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
            Mount(API_PREFIX, app=admin),
            Mount(CONSOLE_PREFIX, app=console),
        ],
    )
