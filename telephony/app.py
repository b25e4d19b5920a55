"""The Starlette application: routes and the composition of the call edge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute

from agents.echo import EchoAgent
from agents.port import AgentCatalog
from telephony.admin import API_PREFIX, build_admin_api
from telephony.edge import CallEdge
from telephony.pod_health.active_calls import ActiveCalls
from telephony.pod_health.admission import Admission, GuardedAdmission
from telephony.pod_health.drain import Drain
from telephony.pod_health.guard import MemorySampler
from telephony.pod_health.health import drain, healthz, metrics, readyz
from telephony.pod_health.memory import MemoryReader
from telephony.pod_health.metrics import Metrics
from telephony.pod_health.shedding import LoadShedder
from telephony.routing import InMemoryNumberDirectory, NumberDirectory
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
from telephony.twilio.outcomes import CallOutcomes
from telephony.twilio.rest import TwilioRest
from telephony.twilio.webhooks import CONNECT_ACTION_PATH, MEDIA_PATH, VOICE_PATH, connect_action, voice

if TYPE_CHECKING:
    from agents.config import AgentConfig
    from agents.port import Agent
    from db import Database
    from telephony.voice import VoiceStack

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
    memory: MemorySampler | None = None,
) -> CallEdge:
    """The edge from settings; each collaborator can be replaced (tests, benchmarks, the demo).
    `memory` defaults to a sampler over this process's cgroup."""
    calls = ActiveCalls(settings.max_concurrent_calls, reservation_ttl=settings.call_token_ttl_seconds)
    memory = memory or memory_sampler(settings)
    draining = Drain()
    metrics = Metrics()
    shedder = LoadShedder(
        memory,
        calls,
        cooldown_s=settings.shed_cooldown_seconds,
        on_shed=lambda _call_sid: metrics.calls_shed.inc(),
        on_relief=metrics.memory_reliefs.inc,
    )
    memory.after_sample.append(shedder.check)
    return CallEdge(
        settings=settings,
        numbers=numbers or InMemoryNumberDirectory(settings.numbers),
        agents=agents or builtin_agents(settings),
        calls=calls,
        admission=admission or GuardedAdmission(calls, memory, draining),
        outcomes=CallOutcomes(settings.call_outcomes_max, settings.call_outcome_ttl_seconds),
        memory=memory,
        drain=draining,
        metrics=metrics,
        shedder=shedder,
    )


def memory_sampler(settings: Settings, reader: MemoryReader | None = None) -> MemorySampler:
    """The memory guard's sampler with the settings' thresholds, over `reader` (default: this
    process's cgroup, with the configured limit where the cgroup sets none)."""
    return MemorySampler(
        reader or MemoryReader(settings.memory_limit_bytes),
        soft=settings.memory_soft_percent / 100,
        hard=settings.memory_hard_percent / 100,
        interval_s=settings.memory_sample_interval_seconds,
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Sample memory, connect the database and load the voice agents (models included) before
    taking calls."""
    edge: CallEdge = app.state.edge
    settings = edge.settings
    owned = edge.database is None and settings.mongodb_uri is not None
    stack = None
    twilio = None
    dialer_task = None
    edge.memory.start()
    try:
        if owned:
            from db import connect

            edge.database = connect(settings.db_settings())
        database = edge.database
        if database is not None:
            from db import ensure_indexes
            from telephony.data import LayeredNumberDirectory, database_directory

            await ensure_indexes(database)
            edge.readiness_checks["database"] = database.ping
            edge.numbers = LayeredNumberDirectory(database_directory(database), edge.numbers)
        if settings.twilio_account_sid is not None and edge.twilio is None:
            twilio = edge.twilio = twilio_client(settings)
        if settings.agents_file is not None or (database is not None and settings.serve_stored_agents):
            stack = await _load_voice_agents(edge, database)
        if settings.dialer_enabled:
            dialer_task = _start_dialer(edge)
        yield
    finally:
        if dialer_task is not None:
            dialer_task.cancel()
            await asyncio.gather(dialer_task, return_exceptions=True)
        if twilio is not None:
            await twilio.close()
            edge.twilio = None
        await edge.memory.stop()
        if stack is not None:
            await stack.aclose()
        edge.readiness_checks.pop("database", None)
        if owned and edge.database is not None:
            await edge.database.close()
            edge.database = None


def twilio_client(settings: Settings) -> TwilioRest:
    assert settings.twilio_account_sid is not None
    return TwilioRest(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        base_url=str(settings.twilio_api_base_url).rstrip("/") if settings.twilio_api_base_url else None,
        timeout=settings.twilio_api_timeout_seconds,
        max_retries=settings.twilio_api_max_retries,
        backoff=settings.twilio_api_backoff_seconds,
        backoff_max=settings.twilio_api_backoff_max_seconds,
    )


def _start_dialer(edge: CallEdge) -> asyncio.Task[None]:
    """The campaign dialer, held back by the pod's guard: draining, memory pressure and the call
    limit (`GuardedAdmission.hold_reason`), the same reasons that refuse inbound calls."""
    from telephony.campaigns.dialer import Dialer

    if edge.database is None or edge.twilio is None or edge.settings.public_url is None:
        raise ValueError(
            "SWITCHBOARD_DIALER_ENABLED needs SWITCHBOARD_MONGODB_URI, SWITCHBOARD_TWILIO_ACCOUNT_SID and "
            "SWITCHBOARD_PUBLIC_URL"
        )
    dialer = Dialer(edge, GuardedAdmission(edge.calls, edge.memory, edge.drain))
    log.info("campaign dialer started", extra={"owner": dialer.owner})
    return asyncio.create_task(dialer.run(), name="dialer")


async def _load_voice_agents(edge: CallEdge, database: Database | None) -> VoiceStack:
    from telephony.data import DatabaseCallStore, tools_for
    from telephony.voice import build_voice_agent, load_voice_stack, read_agents_file, warm_up

    settings = edge.settings
    configs = read_agents_file(settings.agents_file) if settings.agents_file is not None else []
    shedding = edge.memory.shedding
    tools = {config.id: tools_for(config, database, settings, shedding) for config in configs}  # errors first
    stack = await asyncio.to_thread(load_voice_stack, settings)
    stack.shedding = shedding
    await warm_up(stack)
    store = DatabaseCallStore(database) if database is not None else None
    for config in configs:
        edge.agents.agents[config.id] = await build_voice_agent(
            config, stack, settings, tools[config.id], store, observer=edge.metrics
        )
    log.info("voice agents ready", extra={"agents": ",".join(c.id for c in configs)})
    if database is not None and settings.serve_stored_agents and edge.stored_agents is None:
        from telephony.stored_agents import StoredAgents

        async def build(config: AgentConfig, version: int) -> Agent:
            tools = tools_for(config, database, settings, shedding)
            return await build_voice_agent(
                config, stack, settings, tools, store, observer=edge.metrics, version=version
            )

        edge.stored_agents = StoredAgents(database, edge.agents, build, settings.stored_agents_max)
    return stack


def create_app(settings: Settings, edge: CallEdge | None = None, database: Database | None = None) -> Starlette:
    """The pod. `database` is an open one to use instead of connecting to `mongodb_uri` (the
    benchmarks' in-memory fake); its caller closes it."""
    edge = edge or build_edge(settings)
    if database is not None:
        edge.database = database
    app = Starlette(
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
            Route("/metrics", metrics, methods=["GET"]),
            Mount(API_PREFIX, app=build_admin_api(edge)),
        ],
    )
    app.state.edge = edge
    return app
