"""The Starlette application: routes and the composition of the call edge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from agents.echo import EchoAgent
from agents.port import AgentCatalog
from telephony.active_calls import ActiveCalls
from telephony.admission import Admission, CallLimitAdmission
from telephony.call_outcomes import CallOutcomes
from telephony.edge import CallEdge
from telephony.media_stream import media_stream
from telephony.routing import InMemoryNumberDirectory, NumberDirectory
from telephony.settings import Settings
from telephony.webhooks import CONNECT_ACTION_PATH, MEDIA_PATH, VOICE_PATH, connect_action, voice

log = logging.getLogger("switchboard.app")


def builtin_agents(settings: Settings) -> AgentCatalog:
    """The agents this build ships, by id."""
    return AgentCatalog({"echo": EchoAgent(transfer_number=settings.transfer_number)})


def build_edge(
    settings: Settings,
    *,
    agents: AgentCatalog | None = None,
    numbers: NumberDirectory | None = None,
    admission: Admission | None = None,
) -> CallEdge:
    calls = ActiveCalls(settings.max_concurrent_calls, reservation_ttl=settings.call_token_ttl_seconds)
    return CallEdge(
        settings=settings,
        numbers=numbers or InMemoryNumberDirectory(settings.numbers),
        agents=agents or builtin_agents(settings),
        calls=calls,
        admission=admission or CallLimitAdmission(calls),
        outcomes=CallOutcomes(settings.call_outcomes_max, settings.call_outcome_ttl_seconds),
    )


async def healthz(request: Request) -> JSONResponse:
    edge: CallEdge = request.app.state.edge
    return JSONResponse({"status": "ok", "active_calls": edge.calls.active, "counters": edge.stats})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Load the voice agents named in the agents file (models included) before taking calls."""
    edge: CallEdge = app.state.edge
    settings = edge.settings
    stack = None
    if settings.agents_file is not None:
        from telephony.voice import build_voice_agent, load_voice_stack, read_agents_file, warm_up

        configs = read_agents_file(settings.agents_file)
        stack = await asyncio.to_thread(load_voice_stack, settings)
        await warm_up(stack)
        for config in configs:
            edge.agents.agents[config.id] = await build_voice_agent(config, stack, settings)
        log.info("voice agents ready", extra={"agents": ",".join(c.id for c in configs)})
    try:
        yield
    finally:
        if stack is not None:
            stack.close()


def create_app(settings: Settings, edge: CallEdge | None = None) -> Starlette:
    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route(VOICE_PATH, voice, methods=["POST"]),
            Route(CONNECT_ACTION_PATH, connect_action, methods=["POST"]),
            WebSocketRoute(MEDIA_PATH, media_stream),
            Route("/healthz", healthz, methods=["GET"]),
        ],
    )
    app.state.edge = edge or build_edge(settings)
    return app
