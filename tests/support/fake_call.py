"""A `CallSession` on the fake engines and an in-memory port, for tests of the conversation.

The session's clock is a `FakeClock` the test moves: audio "plays" until the test says the caller
has heard it (`played_out`, or `port.hear` when marks are held back), and silence lasts as long
as the test says it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from agents.config import AgentConfig
from agents.conversation.phrases import PhraseCache
from agents.conversation.record import CallRecord, TurnMetrics
from agents.conversation.session import CallSession
from agents.testing.fake_engines import FakeEngines, read_text, silence, speech
from agents.voice_agent import FALLBACK_TONE, VoiceAgent
from tests.support.clock import FakeClock
from tests.support.memory_port import MemoryPort
from tests.support.waiting import until

GREETING = "Hello, how can I help?"
MAX_CALL_SECONDS = 5.0
"""Bound on how long a test waits for a call it hung up to end."""


@dataclass
class Observed:
    """A `CallObserver` that keeps what it is told (the pod's metrics, in a list)."""

    turns: list[TurnMetrics] = field(default_factory=list)
    barge_ins: int = 0
    resumed: int = 0
    tool_calls: list[tuple[str, bool, str | None]] = field(default_factory=list)
    speculations: list[bool] = field(default_factory=list)
    engine_failures: list[str] = field(default_factory=list)

    def turn_ended(self, metrics: TurnMetrics) -> None:
        self.turns.append(metrics)

    def barged_in(self) -> None:
        self.barge_ins += 1

    def reply_resumed(self) -> None:
        self.resumed += 1

    def tool_called(self, name: str, ok: bool, error: str | None) -> None:
        self.tool_calls.append((name, ok, error))

    def speculation_ended(self, used: bool) -> None:
        self.speculations.append(used)

    def engine_failed(self, kind: str) -> None:
        self.engine_failures.append(kind)


@dataclass
class FakeCall:
    port: MemoryPort
    fakes: FakeEngines
    session: CallSession
    clock: FakeClock
    observed: Observed
    task: asyncio.Task[None]

    @property
    def record(self) -> CallRecord:
        return self.session.record

    def say(self, text: str, ms: int = 600, then_ms: int = 500) -> None:
        """The caller says `text` for `ms`, then is quiet for `then_ms` (enough to end the turn)."""
        self.port.push_audio(speech(text, ms) + silence(then_ms))

    def heard(self, after: int = 0) -> list[str]:
        """The lines put on the line, from the `after`-th piece of audio played on."""
        return read_text(b"".join(self.port.played[after:]))

    def plays_before(self, kind: str, nth: int = 0) -> int:
        """How many pieces of audio were played before the `nth` action of `kind` (a "clear")."""
        kinds = self.port.kinds()
        index = [i for i, k in enumerate(kinds) if k == kind][nth]
        return kinds[:index].count("play")

    def played_out(self) -> None:
        """Time passes until the caller has heard all the audio queued so far."""
        self.clock.now = max(self.clock.now, self.session.speaker.playing_until)

    async def hang_up(self) -> None:
        self.port.hang_up_caller()
        await asyncio.wait_for(asyncio.shield(self.task), MAX_CALL_SECONDS)


def agent_config(**overrides: Any) -> AgentConfig:
    values: dict[str, Any] = {"id": "voice", "greeting": GREETING, "silence_timeout_seconds": 120.0}
    values.update(overrides)
    return AgentConfig(**values)


@asynccontextmanager
async def fake_call(
    config: AgentConfig | None = None, *, fakes: FakeEngines | None = None, auto_heard: bool = True
) -> AsyncIterator[FakeCall]:
    """A call, started as `VoiceAgent.run` starts one, past its greeting (heard); cancelled at exit."""
    config = config or agent_config()
    fakes = fakes or FakeEngines()
    phrases = PhraseCache(fakes.tts)
    await VoiceAgent(config, fakes.engines, phrases, fakes.listener).prepare()
    port = MemoryPort(auto_heard=auto_heard)
    clock = FakeClock()
    observed = Observed()
    session = CallSession(
        port,
        config,
        listener=fakes.listener(),
        chat=fakes.chat,
        speaker=fakes.speaker(port, phrases, clock),
        fallback_audio=FALLBACK_TONE,
        observer=observed,
        clock=clock,
    )
    call = FakeCall(port, fakes, session, clock, observed, asyncio.create_task(session.run()))
    try:
        if config.greeting:
            await until(lambda: call.heard() == [config.greeting], what="the greeting")
            port.hear()
            call.played_out()
        yield call
    finally:
        if not call.task.done():
            call.task.cancel()
        await asyncio.gather(call.task, return_exceptions=True)
