"""The voice agent's call start: the greeting never waits on the database (where call records go)."""

from __future__ import annotations

import asyncio

from agents.config import AgentConfig
from agents.conversation.phrases import PhraseCache
from agents.conversation.record import CallRecord
from agents.testing.fake_engines import FakeEngines, FakeTextToSpeech, read_text
from agents.voice_agent import VoiceAgent
from tests.support.memory_port import MemoryPort
from tests.support.waiting import until

GREETING = "Hello, how can I help?"


class StuckStore:
    """A `CallStore` whose database does not answer until the test says so (a FAKE slow database)."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.events: list[str] = []

    async def call_started(self, record: CallRecord) -> None:
        self.events.append("start asked")
        await self.answer.wait()
        self.events.append("start stored")

    async def call_ended(self, record: CallRecord) -> None:
        self.events.append("end stored")


async def test_the_greeting_plays_while_the_records_database_hangs() -> None:
    fakes = FakeEngines(tts=FakeTextToSpeech(ms_per_char=0.5))
    store = StuckStore()
    config = AgentConfig(id="voice", greeting=GREETING, silence_timeout_seconds=120.0)
    agent = VoiceAgent(config, fakes.engines, PhraseCache(fakes.tts), fakes.listener, store=store)
    await agent.prepare()
    port = MemoryPort()
    task = asyncio.create_task(agent.run(port))

    await until(lambda: port.played, timeout=5.0, what="the greeting, with the record's start still unanswered")
    assert read_text(port.played[0]) == [GREETING]
    assert store.events == ["start asked"]

    port.hang_up_caller()
    await asyncio.sleep(0.1)
    assert "end stored" not in store.events  # the end waits for the start
    store.answer.set()
    await asyncio.wait_for(task, 5.0)
    await until(lambda: "end stored" in store.events, what="the end, after the start")
    assert store.events == ["start asked", "start stored", "end stored"]
