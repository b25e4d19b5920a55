"""The operator console under `/console`: server-rendered pages over the admin API, in the pod's own process.

Pages are Jinja2 templates; the few live parts (a call's transcript as it happens, the recording player, a contact
upload's progress, charts that refresh) are one small script of our own, `static/console.js`, so there is no build
step, no npm and no CDN: everything the browser loads ships in this package. `ConsoleGuard` checks the session,
its key and CSRF before any page runs; pages act through `ApiBridge`, so the API's validation and scopes apply.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from telephony.admin.auth import KeyRing
from telephony.console import agents, calls, campaigns, health, live, login
from telephony.console.api_bridge import ApiBridge
from telephony.console.guard import Console, ConsoleGuard
from telephony.console.login_limit import LoginLimit
from telephony.console.session import SessionSigner
from telephony.console.state import ConsoleState
from telephony.settings import Settings

if TYPE_CHECKING:
    from telephony.pod import Pod

CONSOLE_PREFIX = "/console"
STATIC = Path(__file__).with_name("static")


class _ApiPassthrough:
    """`/console/api/<path>`: the browser's own API requests, as the session's key (streamed both ways)."""

    def __init__(self, bridge: ApiBridge) -> None:
        self.bridge = bridge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        console: Console = scope["state"]["console"]
        root = scope.get("root_path", "")
        path = scope["path"][len(root) :] if scope["path"].startswith(root) else scope["path"]
        await self.bridge.forward(console.principal, path.removeprefix("/api") or "/", scope, receive, send)


async def home(request: Request) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}/calls/live", status_code=303)


def build_console(settings: Settings, admin: ASGIApp, keys: KeyRing, pod: Callable[[], Pod]) -> ASGIApp:
    secret = settings.console_secret.get_secret_value() if settings.console_secret is not None else ""
    signer = SessionSigner(secret, settings.console_session_hours * 3600) if len(secret) >= 16 else None
    bridge = ApiBridge(admin)
    passthrough = _ApiPassthrough(bridge)
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login.login_form, methods=["GET"]),
            Route("/login", login.login, methods=["POST"]),
            Route("/logout", login.logout, methods=["POST"]),
            Route("/agents", agents.list_agents),
            Route("/agents/new", agents.new_agent, methods=["GET"]),
            Route("/agents/new", agents.create_agent, methods=["POST"]),
            Route("/agents/{agent_id}", agents.show_agent, methods=["GET"]),
            Route("/agents/{agent_id}", agents.update_agent, methods=["POST"]),
            Route("/agents/{agent_id}/versions", agents.versions),
            Route("/agents/{agent_id}/rollback", agents.rollback, methods=["POST"]),
            Route("/agents/{agent_id}/tools/{name}/dry-run", agents.dry_run, methods=["POST"]),
            Route("/calls/live", live.live_calls),
            Route("/calls/{call_sid}/live", live.live_call),
            Route("/calls/{call_sid}/end", live.end_call, methods=["POST"]),
            Route("/calls/{call_sid}/transfer", live.transfer_call, methods=["POST"]),
            Route("/calls", calls.history),
            Route("/calls/{call_sid}", calls.call_page),
            Route("/campaigns", campaigns.list_campaigns, methods=["GET"]),
            Route("/campaigns", campaigns.create_campaign, methods=["POST"]),
            Route("/campaigns/{campaign_id}", campaigns.campaign_page),
            Route("/campaigns/{campaign_id}/{action}", campaigns.campaign_action, methods=["POST"]),
            Route("/health", health.health_page),
            Route("/health.json", health.health_json),
            Route("/api/{rest:path}", passthrough, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
        ],
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.console = ConsoleState(
        bridge=bridge,
        keys=lambda: keys,
        signer=lambda: signer,
        pod=pod,
        login_limit=LoginLimit(settings.console_login_failures_per_minute),
        secure_cookie=settings.console_secure_cookie,
    )
    return ConsoleGuard(app, signer=lambda: signer, keys=lambda: keys)
