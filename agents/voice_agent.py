"""A configured agent on the pod's shared engines: what the media stream runs for each call."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping

from agents.config import AgentConfig
from agents.conversation.echo_guard import EchoGuard
from agents.conversation.listener import TurnListener
from agents.conversation.phrases import PhraseCache
from agents.conversation.record import CallObserver, CallRecord, CallStore
from agents.conversation.session import CallSession
from agents.conversation.speaker import Speaker
from agents.echo import beep
from agents.engines.protocols import Engines
from agents.port import CallPort
from db.safe_query import SafeQuery
from tools import ToolExecutor

log = logging.getLogger("switchboard.agents")

FALLBACK_TONE = (beep(16000, hz=440.0, ms=300, count=1), 16000)
"""Played when even the pre-rendered apology is missing and TTS fails: the caller hears something."""

FIXED_LINES = ("Let me transfer you now.", "Thank you for calling. Goodbye.")


class VoiceAgent:
    """Implements `Agent`: one `CallSession` per call, all sharing engines and rendered phrases."""

    def __init__(
        self,
        config: AgentConfig,
        engines: Engines,
        phrases: PhraseCache,
        listener_factory: Callable[[], TurnListener],
        *,
        tools: ToolExecutor | None = None,
        transfer_number: str | None = None,
        store: CallStore | None = None,
        observer: CallObserver | None = None,
        version: int | None = None,
        records: SafeQuery | None = None,
        speculate: bool = True,
    ) -> None:
        """`records`: the business database, where each caller's identity is checked (None: no
        caller is ever identified, so caller-scoped tools refuse); `speculate`: start replies
        during the caller's pause, held until the turn is confirmed (the pod's setting)."""
        self.config = config
        self.version = version
        """The stored config version this agent was built from (None: not from the database)."""
        self.engines = engines
        self.phrases = phrases
        self.listener_factory = listener_factory
        self.tools = tools
        self.transfer_number = transfer_number
        self.store = store
        self.observer = observer
        """Told about every call's turns, barge-ins and tool calls as they happen (metrics)."""
        self.speculate = speculate
        self.caller_records = config.identity.records(records) if records is not None else None
        self._starting: set[asyncio.Task[None]] = set()
        """Calls' record starts still being stored (at most one per call in progress)."""
        self.records: list[CallRecord] = []
        """The last few call records, newest last (bounded by `MAX_RECENT_RECORDS`)."""

    async def prepare(self) -> None:
        """Render the fixed lines now, so the greeting plays the moment a call connects."""
        c = self.config
        await self.phrases.prepare(
            [
                *([c.recording_consent] if c.recording_consent else []),
                c.greeting,
                *c.filler_phrases,
                c.reprompt,
                c.silence_goodbye,
                c.apology,
                c.say_again,
                c.time_limit_goodbye,
                c.identity.cannot_verify,
                *FIXED_LINES,
            ]
        )

    async def run(self, port: CallPort) -> None:
        started: asyncio.Task[None] | None = None

        async def keep(record: CallRecord) -> None:
            if started is not None:
                await asyncio.wait([started])  # the end is stored after the start
            await self._keep(record)

        speaker = Speaker(port, self.engines.tts, self.phrases)
        config = self.config
        echo = self.engines.echo
        echo_guard = EchoGuard(echo(), speaker.clock) if echo is not None and config.echo_guard else None
        if port.info.variables:
            config = config.model_copy(update={"system_prompt": fill_in(config.system_prompt, port.info.variables)})
        session = CallSession(
            port,
            config,
            listener=self.listener_factory(),
            chat=self.engines.chat,
            speaker=speaker,
            tools=self.tools,
            transfer_number=self.transfer_number,
            fallback_audio=FALLBACK_TONE,
            on_record=keep,
            observer=self.observer,
            caller_records=self.caller_records,
            echo_guard=echo_guard,
            speculate=self.speculate,
        )
        session.record.agent_version = self.version
        # The greeting never waits on the database: the record's start is stored beside the call,
        # and its end only after its start.
        if self.store is not None:
            started = asyncio.create_task(self._store_start(session.record))
            self._starting.add(started)  # held until done: the loop keeps only a weak reference
            started.add_done_callback(self._starting.discard)
        await session.run()

    async def _store_start(self, record: CallRecord) -> None:
        assert self.store is not None
        try:
            await self.store.call_started(record)
        except Exception:
            log.exception("could not store the call's start")

    async def _keep(self, record: CallRecord) -> None:
        self.records.append(record)
        del self.records[:-MAX_RECENT_RECORDS]
        if self.store is not None:
            await self.store.call_ended(record)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")


def fill_in(prompt: str, variables: Mapping[str, str]) -> str:
    """`{name}` -> the call's value for `name`; unknown names and other braces stay as written."""
    return _PLACEHOLDER.sub(lambda m: str(variables.get(m.group(1), m.group(0))), prompt)


MAX_RECENT_RECORDS = 32
"""Bound on call records an agent keeps in memory (for tests, the demo and debugging)."""
