"""The admin REST API under `/api`: agents, tools, numbers, calls, campaigns, the do-not-call list and the
audit log of admin writes.

Built with FastAPI on the same pydantic models that validate everything else, so the OpenAPI
document at `/api/openapi.json` is generated from the routes and cannot drift from them.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from telephony.admin import agents, audit, calls, campaigns, live_calls, ops, recordings, tools
from telephony.admin.auth import ApiKeyAuth, KeyRing
from telephony.admin.common import ERRORS
from telephony.settings import Settings

log = logging.getLogger("switchboard.api")
API_PREFIX = "/api"


def build_admin_api(settings: Settings) -> FastAPI:
    """The API app, mounted at `/api` by `create_app` (whose lifespan sets `api.state.pod`)."""
    api = FastAPI(
        title="Switchboard admin API",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        servers=[{"url": API_PREFIX}],
        root_path_in_servers=False,
    )
    routers = (
        *(agents.router, tools.router, live_calls.router, calls.router, recordings.router),
        *(campaigns.router, audit.router, ops.router),
    )
    for router in routers:  # live_calls before calls: `/calls/live` is no call sid
        api.include_router(router, responses=ERRORS)
    keys = KeyRing(settings.api_key_scopes())

    def max_body(path: str) -> int:
        if path.rstrip("/").endswith("/contacts"):
            return settings.campaign_upload_max_bytes
        return settings.api_max_body_bytes

    async def audited(key: str, method: str, path: str, body: bytes, status: int) -> None:
        await audit.record(api.state.pod, audit.Write(key, method, path, body, status))

    api.add_middleware(ApiKeyAuth, keys=lambda: keys, max_body=max_body, audit=audited)

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("admin API request failed", extra={"path": request.url.path})
        return JSONResponse({"detail": "internal error"}, status_code=500)

    def openapi() -> dict[str, object]:
        if api.openapi_schema is None:
            schema = get_openapi(title=api.title, version=api.version, routes=api.routes, servers=api.servers)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            schema["security"] = [{"bearer": []}, {"apiKey": []}]
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


__all__ = ["API_PREFIX", "build_admin_api"]
