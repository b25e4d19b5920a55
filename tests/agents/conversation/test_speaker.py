"""The speaker and its phrase cache, on the real Kokoro engine and an in-memory port."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from agents.conversation.history import AssistantReply
from agents.conversation.phrases import PhraseCache
from agents.conversation.speaker import Speaker
from agents.engines.local.kokoro import KokoroTextToSpeech
from agents.port import MarkHeard
from tests.support.memory_port import MemoryPort


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
