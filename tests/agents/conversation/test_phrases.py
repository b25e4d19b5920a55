"""The phrase cache: fixed lines rendered once, and reply openers learned once spoken."""

from __future__ import annotations

import pytest

from agents.conversation.phrases import MAX_LEARNED_CHARS, PhraseCache, learnable
from agents.testing.fake_engines import FakeTextToSpeech, read_text


async def spoken(cache: PhraseCache, text: str, learn: bool = True) -> bytes:
    return b"".join([chunk async for chunk in cache.speak(text, learn=learn)])


def test_only_short_pieces_without_digits_are_learnable() -> None:
    assert learnable("Of course,") and learnable("Thank you.")
    assert not learnable("Your balance is 42 dollars.")  # what varies by caller is not kept
    assert not learnable("x" * (MAX_LEARNED_CHARS + 1))
    assert not learnable("   ")


async def test_an_opener_is_synthesized_once_then_played_from_memory() -> None:
    tts = FakeTextToSpeech()
    cache = PhraseCache(tts)

    first = await spoken(cache, "Of course,")
    again = await spoken(cache, "Of course,")

    assert tts.texts == ["Of course,"]
    assert again == first and read_text(again) == ["Of course,"]
    assert cache.learned_bytes == len(first)


async def test_pieces_not_learned_are_synthesized_every_time() -> None:
    tts = FakeTextToSpeech()
    cache = PhraseCache(tts)

    for _ in range(2):
        await spoken(cache, "Your order 1001 shipped.")  # digits
        await spoken(cache, "Of course,", learn=False)  # not a reply's opener
    await spoken(cache, "Of course,", learn=True)

    assert tts.texts == ["Your order 1001 shipped.", "Of course,"] * 2 + ["Of course,"]
    assert cache.cached("Your order 1001 shipped.") is None


async def test_a_stopped_synthesis_is_not_learned() -> None:
    tts = FakeTextToSpeech(chunk_ms=20)
    cache = PhraseCache(tts)
    stream = cache.speak("Of course,", learn=True)

    await anext(stream)
    await stream.aclose()  # a barge-in, or a dropped speculative reply

    assert cache.cached("Of course,") is None and cache.learned_bytes == 0


async def test_learned_audio_stays_under_its_byte_bound_and_never_pushes_out_a_fixed_line() -> None:
    tts = FakeTextToSpeech()
    one_opener = len(await spoken(PhraseCache(FakeTextToSpeech()), "Sure thing."))
    cache = PhraseCache(tts, max_learned_bytes=2 * one_opener + one_opener // 2)
    await cache.prepare(["Sorry, something went wrong."])

    for opener in ("Sure thing.", "Right away.", "Got it here.", "Happy to help."):
        await spoken(cache, opener)

    assert cache.learned_bytes <= cache.max_learned_bytes
    assert cache.cached("Sure thing.") is None and cache.cached("Right away.") is None  # oldest out first
    assert cache.cached("Happy to help.") is not None
    assert cache.cached("Sorry, something went wrong.") is not None


async def test_learning_can_be_switched_off_and_a_negative_bound_is_refused() -> None:
    tts = FakeTextToSpeech()
    cache = PhraseCache(tts, max_learned_bytes=0)

    await spoken(cache, "Of course,")
    await spoken(cache, "Of course,")

    assert tts.texts == ["Of course,", "Of course,"]
    with pytest.raises(ValueError, match="max_learned_bytes"):
        PhraseCache(tts, max_learned_bytes=-1)
