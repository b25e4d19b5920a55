"""The pod: everything one Switchboard process serves calls with, assembled in one place.

`open_pod(settings)` is the composition root. It builds the memory guard (sampler, shedder),
admission, drain, metrics and the call registry; connects the database (or takes an open one);
routes numbers; loads the voice engines and builds the agents (built-ins, the agents file, stored
agents on demand); makes the Twilio REST client and starts the campaign dialer. It yields a
complete `Pod` (handlers reach it as `request.app.state.pod`) and tears everything down in
reverse order. Nothing is rewired after start. The app's lifespan, the demo, the test harnesses and
the benchmarks all open their pods here; each collaborator a test or benchmark needs to replace
is a keyword argument.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agents.echo import EchoAgent
from agents.port import Agent, AgentCatalog
from telephony.outage import DatabaseOutage
from telephony.pod_health.active_calls import ActiveCalls
from telephony.pod_health.admission import PodAdmission
from telephony.pod_health.capacity import Capacity, CapacityLimits
from telephony.pod_health.dependency import TolerantCheck
from telephony.pod_health.drain import Drain
from telephony.pod_health.guard import MemorySampler
from telephony.pod_health.heap_snapshot import HeapSnapshots, install_signal
from telephony.pod_health.memory import MemoryReader
from telephony.pod_health.metrics import Metrics
from telephony.pod_health.shedding import LoadShedder
from telephony.routing import (
    AgentDirectory,
    CachedNumberDirectory,
    InMemoryNumberDirectory,
    LayeredNumberDirectory,
    NumberDirectory,
)
from telephony.settings import Settings, require_secure_secrets
from telephony.twilio.outcomes import CallOutcomes
from telephony.twilio.replay import SeenCalls
from telephony.twilio.rest import TwilioRest
from telephony.twilio.stream_door import StreamDoor

if TYPE_CHECKING:
    from agents.config import AgentConfig
    from agents.engines.protocols import ChatModel
    from agents.voice_agent import VoiceAgent
    from db import Database, SafeQuery
    from db.recordings import RecordingStore
    from telephony.data import DatabaseCallStore
    from telephony.post_call_queue import PostCallQueue
    from telephony.recording.recorder import Recorders
    from telephony.voice import VoiceStack
    from tools import ToolExecutor

log = logging.getLogger("switchboard.pod")

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises (or times out) when what it checks is unreachable; its name is the readiness reason."""


@dataclass
class VoiceAgents:
    """The pod's voice engines and how an agent is built on them: the agents file's at start-up,
    stored ones on demand, a test's own. Each agent's calls are recorded in the database (when
    there is one) and observed by the pod's metrics."""

    stack: VoiceStack
    settings: Settings
    database: Database | None
    metrics: Metrics
    shedding: Callable[[], bool] | None = None
    store: DatabaseCallStore | None = None
    """Where the agents' call records and tool audit go (the pod's record writer), with a database."""

    async def tools(self, config: AgentConfig) -> ToolExecutor | None:
        """The agent's tools, built-in and declared, on the database (a configuration error without one)."""
        from telephony.agent_tools import tools_for

        return await tools_for(config, self.database, self.settings, self.shedding, audit=self.store)

    async def build(
        self,
        config: AgentConfig,
        tools: ToolExecutor | None = None,
        version: int | None = None,
        records: SafeQuery | None = None,
    ) -> VoiceAgent:
        """`records`: where callers are identified; default the pod's database (as its tools read)."""
        from db import SafeQuery
        from telephony.post_call_queue import with_post_call
        from telephony.voice import build_voice_agent

        queue = self.store.post_call if self.store is not None else None
        store = with_post_call(self.store, queue, config.post_call, self.stack.engines.chat)
        if records is None and self.database is not None:
            records = SafeQuery(self.database)
        return await build_voice_agent(
            config, self.stack, self.settings, tools, store, observer=self.metrics, version=version, records=records
        )

    async def build_stored(self, config: AgentConfig, version: int) -> Agent:
        """A stored agent, with the tools its config names."""
        return await self.build(config, await self.tools(config), version)


@dataclass
class Pod:
    """What handlers reach: settings and the collaborators every request needs."""

    settings: Settings
    directory: AgentDirectory
    """Which agent answers a number (the voice webhook) or a call token's agent id (the stream)."""
    agents: AgentCatalog
    """The agents built at start-up, by id (built-ins, the agents file)."""
    calls: ActiveCalls
    admission: PodAdmission
    """The pod's one answer to "may it take a call?": webhooks, `/readyz` and the dialer ask it."""
    outcomes: CallOutcomes
    memory: MemorySampler
    drain: Drain
    metrics: Metrics
    shedder: LoadShedder
    stream_door: StreamDoor
    """Media streams waiting for a valid `start` (bounded: strangers cannot crowd out calls)."""
    seen_calls: SeenCalls
    """CallSids answered with a call token: a replayed webhook gets no second one."""
    heap_snapshots: HeapSnapshots | None = None
    """On-demand bounded heap snapshots (`POST /api/ops/heap-snapshot`); set by `open_pod`."""
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    """Dependencies `/readyz` checks, by name (`database` when the pod has one)."""
    database: Database | None = None
    """MongoDB, when configured; the admin API and campaigns need it."""
    twilio: TwilioRest | None = None
    """Twilio's REST API, for outbound calls (when `twilio_account_sid` is set)."""
    clock: Callable[[], float] = time.time
    """Wall-clock epoch seconds for campaign times (leases, retries, calling windows); tests move it."""
    voice: VoiceAgents | None = None
    """The voice engines, when this pod serves voice agents (None: the built-ins only)."""
    call_store: DatabaseCallStore | None = None
    """Writes call records as calls go (with a database); the media stream ends a record its session left open."""
    recorders: Recorders | None = None
    """Records the calls of agents with `record: true` (with a database, or a `recording_store`)."""


def builtin_agents(settings: Settings) -> AgentCatalog:
    """The agents this build ships, by id."""
    return AgentCatalog({"echo": EchoAgent(transfer_number=settings.transfer_number)})


def memory_sampler(settings: Settings, reader: MemoryReader | None = None) -> MemorySampler:
    """The memory guard's sampler with the settings' thresholds, over `reader` (default: this
    process's cgroup, with the configured limit where the cgroup sets none)."""
    return MemorySampler(
        reader or MemoryReader(settings.memory_limit_bytes),
        soft=settings.memory_soft_percent / 100,
        hard=settings.memory_hard_percent / 100,
        interval_s=settings.memory_sample_interval_seconds,
    )


def _capacity(settings: Settings, calls: ActiveCalls) -> Capacity:
    """Admission by capacity: the process's inference pools, speech clients and CPU over the settings'
    window."""
    limits = CapacityLimits(
        max_engine_load=settings.admission_max_engine_load,
        max_queued_jobs=settings.admission_max_queued_jobs,
        max_cpu_load=settings.admission_max_cpu_load,
        max_speech_latency_s=settings.admission_max_speech_latency_seconds,
        max_speech_failure_share=settings.admission_max_speech_failure_share,
        window_s=settings.admission_load_window_seconds,
    )
    return Capacity(limits, calls)


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


@asynccontextmanager
async def open_pod(
    settings: Settings,
    *,
    database: Database | None = None,
    agents: AgentCatalog | None = None,
    agent_configs: Sequence[AgentConfig] = (),
    chat: ChatModel | None = None,
    stack: VoiceStack | None = None,
    memory_reader: MemoryReader | None = None,
    twilio: TwilioRest | None = None,
    clock: Callable[[], float] = time.time,
    recording_store: RecordingStore | None = None,
) -> AsyncIterator[Pod]:
    """A started pod from `settings`; stopped when the block exits. The keyword arguments replace
    what settings would build (tests, benchmarks, the demo):

    - `database`: an open one instead of connecting to `mongodb_uri` (e.g. the in-memory fake);
      its caller closes it.
    - `agents`: the catalog instead of the built-ins (the agents file's agents join it).
    - `agent_configs`: voice agents to build besides the agents file's.
    - `chat`: the chat model for the engines loaded from settings (e.g. one on a scripted server);
      giving one loads the engines even when no voice agent is configured yet.
    - `stack`: engines already loaded (its caller closes them).
    - `memory_reader`: where the memory guard reads usage (e.g. a fake cgroup).
    - `twilio`: the REST client instead of one from the settings (its caller closes it).
    - `clock`: wall-clock time for campaigns.
    - `recording_store`: where recordings go instead of the database's GridFS bucket.
    """
    for problem in require_secure_secrets(settings, settings.allow_insecure_secrets):  # raises unless allowed
        log.warning("insecure secret allowed by SWITCHBOARD_ALLOW_INSECURE_SECRETS: %s", problem)
    if recording_store is None and settings.recording_store == "s3" and (missing := settings.s3_missing()):
        raise ValueError(f"SWITCHBOARD_RECORDING_STORE=s3 needs {', '.join(missing)} set")
    async with AsyncExitStack() as exits:
        calls = ActiveCalls(settings.max_concurrent_calls, reservation_ttl=settings.call_token_ttl_seconds)
        memory = memory_sampler(settings, memory_reader)
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
        memory.start()
        exits.push_async_callback(memory.stop)

        if database is None and settings.mongodb_uri is not None:
            from db import connect

            database = connect(settings.db_settings())
            exits.push_async_callback(database.close)
        readiness_checks: dict[str, ReadinessCheck] = {}
        numbers: NumberDirectory = InMemoryNumberDirectory(settings.numbers)
        outage = DatabaseOutage(
            settings.db_call_path_timeout_ms / 1000,
            settings.db_outage_retry_seconds,
            on_stale=lambda what: metrics.db_stale_reads.labels(what).inc(),
        )
        exits.push_async_callback(outage.close)
        if database is not None:
            from db import PhoneNumbers, ensure_indexes

            await ensure_indexes(database)
            readiness_checks["database"] = TolerantCheck(
                database.ping,
                settings.readiness_check_timeout_seconds,
                settings.readiness_database_unready_after_seconds,
            )
            routes = CachedNumberDirectory(PhoneNumbers(database), outage, settings.db_routes_cached)
            numbers = LayeredNumberDirectory(routes, numbers)

        call_store = _call_store(settings, database, metrics, exits) if database is not None else None
        if twilio is None and settings.twilio_account_sid is not None:
            twilio = twilio_client(settings)
            exits.push_async_callback(twilio.close)

        catalog = agents if agents is not None else builtin_agents(settings)
        directory = AgentDirectory(numbers, catalog, outage=outage)
        voice = await _voice_agents(
            settings, exits, catalog, directory, database, metrics, memory, agent_configs, chat, stack, call_store
        )

        pod = Pod(
            settings=settings,
            directory=directory,
            agents=catalog,
            calls=calls,
            admission=PodAdmission(calls, memory, draining, _capacity(settings, calls)),
            outcomes=CallOutcomes(settings.call_outcomes_max, settings.call_outcome_ttl_seconds),
            memory=memory,
            drain=draining,
            metrics=metrics,
            shedder=shedder,
            stream_door=StreamDoor(settings.stream_pending_max),
            seen_calls=SeenCalls(settings.webhook_replay_max_calls, settings.webhook_replay_window_seconds),
            readiness_checks=readiness_checks,
            database=database,
            twilio=twilio,
            clock=clock,
            voice=voice,
            call_store=call_store,
            recorders=_recorders(settings, database, recording_store, exits),
        )
        _start_memory_report(pod, exits)
        if settings.dialer_enabled:
            _start_dialer(pod, exits)
        yield pod


async def _voice_agents(
    settings: Settings,
    exits: AsyncExitStack,
    catalog: AgentCatalog,
    directory: AgentDirectory,
    database: Database | None,
    metrics: Metrics,
    memory: MemorySampler,
    agent_configs: Sequence[AgentConfig],
    chat: ChatModel | None,
    stack: VoiceStack | None,
    call_store: DatabaseCallStore | None = None,
) -> VoiceAgents | None:
    """Load the engines (models included, warmed) when the pod serves voice agents, build the
    configured ones into the catalog, and let the directory build stored ones on demand."""
    from telephony.agent_tools import tools_for
    from telephony.stored_agents import StoredAgents
    from telephony.voice import load_voice_stack, read_agents_file, warm_up, warm_up_agent

    configs = read_agents_file(settings.agents_file) if settings.agents_file is not None else []
    configs += agent_configs
    serve_stored = database is not None and settings.serve_stored_agents
    if stack is None and not (configs or serve_stored or chat is not None):
        return None
    shedding = memory.shedding
    # config errors before models
    tools = {c.id: await tools_for(c, database, settings, shedding, audit=call_store) for c in configs}
    warm = stack is None  # a stack handed in is the caller's, warmed (or not) by them
    if stack is None:
        stack = await asyncio.to_thread(load_voice_stack, settings, chat)
        exits.push_async_callback(stack.aclose)
        stack.shedding = shedding
        await warm_up(stack)
    voice = VoiceAgents(stack, settings, database, metrics, shedding, call_store)
    for config in configs:
        catalog.agents[config.id] = await voice.build(config, tools[config.id])
    if configs and warm:
        await warm_up_agent(stack, configs[0], tools[configs[0].id], settings)  # the first agent's prompt
    if configs:
        log.info("voice agents ready", extra={"agents": ",".join(c.id for c in configs)})
    if serve_stored:
        assert database is not None
        directory.stored = StoredAgents(
            database, catalog, voice.build_stored, settings.stored_agents_max, outage=directory.outage
        )
    return voice


def _call_store(settings: Settings, database: Database, metrics: Metrics, exits: AsyncExitStack) -> DatabaseCallStore:
    """The pod's call-record writer, started; at shutdown it writes what is queued, within its deadline."""
    from db import CallRecords
    from telephony.call_records import CallRecordWriter
    from telephony.data import DatabaseCallStore

    post_call = _post_call_queue(settings, database, metrics, exits)
    writer = CallRecordWriter(
        CallRecords(database),
        on_ended=post_call.ended,
        flush_seconds=settings.call_record_flush_seconds,
        max_entries=settings.call_record_queue_entries,
        max_bytes=settings.call_record_queue_bytes,
        on_failed=metrics.call_record_writes_failed.inc,
        on_dropped=metrics.call_record_entries_dropped.inc,
    )
    metrics.call_record_queue.set_function(lambda: writer.entries)
    writer.start_task()
    exits.push_async_callback(writer.close, settings.call_record_shutdown_seconds)
    store = DatabaseCallStore(writer)
    store.post_call = post_call
    return store


def _post_call_queue(settings: Settings, database: Database, metrics: Metrics, exits: AsyncExitStack) -> PostCallQueue:
    """The bounded queue of post-call jobs, its workers started; closed after the record writer
    (whose last ends may still queue jobs), marking what never ran as failed."""
    from db import CallRecords
    from telephony.post_call_queue import PostCallQueue

    queue = PostCallQueue(
        CallRecords(database),
        max_jobs=settings.post_call_queue,
        workers=settings.post_call_workers,
        timeout_s=settings.post_call_timeout_seconds,
        on_outcome=lambda outcome: metrics.post_call_jobs.labels(outcome).inc(),
    )
    metrics.post_call_queue.set_function(lambda: queue.queued)
    queue.start()
    exits.push_async_callback(queue.close)
    return queue


def _recorders(
    settings: Settings, database: Database | None, store: RecordingStore | None, exits: AsyncExitStack
) -> Recorders | None:
    """Call recording on `store`, else the S3 bucket of the settings (`recording_store: s3`), else the
    database's GridFS bucket; at shutdown recordings finish within their deadline."""
    from db.recordings import GridFsRecordings
    from telephony.recording.recorder import SHUTDOWN_SECONDS, Recorders

    if store is None and settings.recording_store == "s3":
        from telephony.recording.s3_store import S3Location, S3Recordings

        store = s3 = S3Recordings(S3Location.from_settings(settings))
        exits.push_async_callback(s3.aclose)  # after the recordings have finished (exits run last first)
    if store is None:
        if database is None:
            return None
        store = GridFsRecordings(database)
    recorders = Recorders(store, settings.call_retention_days)
    exits.push_async_callback(recorders.close, SHUTDOWN_SECONDS)
    return recorders


def _start_memory_report(pod: Pod, exits: AsyncExitStack) -> None:
    """Tracemalloc when configured (stopped at close if this pod started it), and the periodic
    memory breakdown with the pod's bounded stores."""
    import tracemalloc

    from telephony.pod_health.memory_report import MemoryReporter, start_tracemalloc

    settings = pod.settings
    pod.heap_snapshots = HeapSnapshots(pod.memory, settings.memory_report_top)
    exits.callback(install_signal(pod.heap_snapshots))  # SIGUSR2: a snapshot in the log
    if start_tracemalloc(settings.tracemalloc_frames):
        exits.callback(tracemalloc.stop)

    def buffers() -> dict[str, tuple[int, int]]:
        return {
            "calls": (pod.calls.count, pod.calls.limit),
            "call_outcomes": (len(pod.outcomes), settings.call_outcomes_max),
            "streams_pending_start": (pod.stream_door.pending, pod.stream_door.limit),
            "seen_calls": (len(pod.seen_calls), pod.seen_calls.max_calls),
        }

    reporter = MemoryReporter(
        lambda: pod.memory.reading,  # the sampler's latest: the report adds no cgroup reads
        interval_s=settings.memory_report_interval_seconds,
        top_n=settings.memory_report_top,
        buffers=buffers,
    )
    reporter.start()
    exits.push_async_callback(reporter.stop)


def _start_dialer(pod: Pod, exits: AsyncExitStack) -> None:
    """The campaign dialer, held back by the pod's own admission (`pod.admission.hold_reason`):
    draining, memory pressure and the call limit, the same object that refuses inbound calls."""
    from telephony.campaigns.dialer import Dialer

    if pod.database is None or pod.twilio is None or pod.settings.public_url is None:
        raise ValueError(
            "SWITCHBOARD_DIALER_ENABLED needs SWITCHBOARD_MONGODB_URI, SWITCHBOARD_TWILIO_ACCOUNT_SID and "
            "SWITCHBOARD_PUBLIC_URL"
        )
    dialer = Dialer(pod)
    log.info("campaign dialer started", extra={"owner": dialer.owner})
    task = asyncio.create_task(dialer.run(), name="dialer")

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    exits.push_async_callback(stop)
