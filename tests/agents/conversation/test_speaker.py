"""The speaker and its phrase cache, on the real Kokoro engine and an in-memory port; holding a
reply, on fake speech."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from agents.conversation import speaker as speaker_module
from agents.conversation.history import AssistantReply
from agents.conversation.phrases import PhraseCache
from agents.conversation.speaker import Speaker
from agents.engines.local.kokoro import KokoroTextToSpeech
from agents.port import MarkHeard
from agents.testing.fake_engines import FakeTextToSpeech, read_text
from tests.support.memory_port import MemoryPort
from tests.support.waiting import until


@pytest.fixture(scope="module")
def tts() -> Iterator[KokoroTextToSpeech]:
    engine = KokoroTextToSpeech.load()
    yield engine
    engine.close()


async def test_each_text_is_played_then_marked_and_the_mark_says_if_it_was_heard(tts: KokoroTextToSpeech) -> None:
    port = MemoryPort(auto_heard=False)
    speaker = Speaker(port, tts, PhraseCache(tts))
    reply = AssistantReply()
    part = await speaker.say("Hello there.", reply)
    assert port.kinds()[-1] == "mark" and set(port.kinds()[:-1]) == {"play"}
    assert reply.parts == [part] and part.heard is None
    assert speaker.speaking
    speaker.on_mark(MarkHeard(part.mark, heard=True))
    assert part.heard is True


async def test_clear_reports_outstanding_parts_unheard(tts: KokoroTextToSpeech) -> None:
    port = MemoryPort(auto_heard=False)
    speaker = Speaker(port, tts, PhraseCache(tts))
    reply = AssistantReply(interrupted=True)
    await speaker.say("First sentence.", reply)
    await speaker.say("Second sentence.", reply)
    speaker.on_mark(MarkHeard(reply.parts[0].mark))  # the caller heard the first one
    await speaker.clear()
    for event in port.drain():  # the port reports what the clear dropped
        assert isinstance(event, MarkHeard)
        speaker.on_mark(event)
    assert [p.heard for p in reply.parts] == [True, False]
    assert reply.heard_text() == "First sentence."
    assert not speaker.speaking


async def test_a_filler_and_an_answer_never_interleave(tts: KokoroTextToSpeech) -> None:
    port = MemoryPort()
    phrases = PhraseCache(tts)
    await phrases.prepare(["One moment."])
    speaker = Speaker(port, tts, phrases)
    await asyncio.gather(speaker.say("The answer is yes, and here is why."), speaker.say_phrase("One moment."))
    kinds = port.kinds()
    marks = [i for i, kind in enumerate(kinds) if kind == "mark"]
    assert len(marks) == 2 and marks[1] == len(kinds) - 1
    assert all(kind == "play" for kind in kinds[marks[0] + 1 : marks[1]])  # the second text's audio is whole


async def test_the_phrase_cache_is_bounded_and_keeps_recent_phrases(tts: KokoroTextToSpeech) -> None:
    phrases = PhraseCache(tts, max_phrases=2, max_phrase_chars=20)
    for text in ["One.", "Two.", "Three."]:
        await phrases.render(text)
    assert phrases.cached("One.") is None
    assert phrases.cached("Two.") and phrases.cached("Three.")
    await phrases.render("This line is longer than twenty characters.")
    assert phrases.cached("This line is longer than twenty characters.") is None  # not a fixed phrase


# -- holding a reply (fake speech) -------------------------------------------------------------


class GatedSpeech(FakeTextToSpeech):
    """Fake speech whose second and later chunks of `gated` wait for `gate`: a part still being synthesized."""

    def __init__(self, gated: str) -> None:
        super().__init__(chunk_ms=100)
        self.gated = gated
        self.gate = asyncio.Event()

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        chunks = 0
        async for pcm in super().synthesize(text):
            if chunks and text == self.gated:
                await self.gate.wait()
            chunks += 1
            yield pcm


def after_clear(port: MemoryPort) -> list[str]:
    kinds = port.kinds()
    return kinds[kinds.index("clear") + 1 :]


async def test_a_hold_mid_part_puts_nothing_on_the_line_then_resume_replays_the_part_from_its_start() -> None:
    tts = GatedSpeech("This part was cut short.")
    port = MemoryPort(auto_heard=False)
    speaker = Speaker(port, tts, PhraseCache(tts))
    reply = AssistantReply()
    await speaker.say("Before.", reply)
    before = len(port.played)
    saying = asyncio.create_task(speaker.say("This part was cut short.", reply))
    await until(lambda: len(port.played) == before + 1, what="the part's first chunk on the line")

    await speaker.hold()
    for event in port.drain():  # the clear reported the first part unheard
        assert isinstance(event, MarkHeard)
        speaker.on_mark(event)
    tts.gate.set()
    await asyncio.sleep(0.01)  # the part's synthesis goes on meanwhile
    assert after_clear(port) == [] and speaker.held and speaker.resumable and not saying.done()

    assert await speaker.resume()
    part = await saying
    played = port.played[port.kinds()[: port.kinds().index("clear")].count("play") :]
    assert read_text(b"".join(played)) == ["Before.", "This part was cut short."]  # each once, whole
    assert after_clear(port).count("mark") == 2 and port.pending_marks == [reply.parts[0].mark, part.mark]
    assert [p.heard for p in reply.parts] == [None, None]  # replayed: waiting for the carrier again


async def test_a_held_reply_whose_audio_went_past_the_bound_cannot_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speaker_module, "MAX_KEPT_AUDIO_SECONDS", 1.0)
    tts = FakeTextToSpeech()
    port = MemoryPort(auto_heard=False)
    speaker = Speaker(port, tts, PhraseCache(tts))
    reply = AssistantReply()
    await speaker.say("A first sentence long enough to pass the bound.", reply)
    await speaker.say("A second one.", reply)

    await speaker.hold()
    assert not speaker.resumable
    assert not await speaker.resume()
    assert not speaker.held and after_clear(port) == []  # released: nothing replayed
