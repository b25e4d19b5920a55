"""The transcript guard: Whisper loops and runaway text are cut, ordinary speech passes untouched."""

from __future__ import annotations

import pytest

from agents.conversation.record import CallRecord
from agents.conversation.transcript_guard import (
    KEPT_REPEATS,
    MAX_COMPRESSION_RATIO,
    MIN_WORDS_ALLOWED,
    compression_ratio,
    cut_repetitions,
    guard_transcript,
    guarded,
    keep_segment,
    words_allowed,
)
from agents.engines.protocols import Transcript
from agents.testing.fake_engines import FakeEngines, Reply
from tests.support.fake_call import fake_call
from tests.support.waiting import until

LOOP = "No, " + ", ".join(["no"] * 120) + ","
"""What Whisper tiny.en made of "No, no, that's wrong." on a noisy line (the issue's example)."""
LONG = (
    "Hi, I ordered a blue jacket and a pair of gloves last Tuesday, the order number is one two three four five, "
    "and the tracking page has said out for delivery for three days now, so I would like to know where it is "
    "and whether you can send a replacement or give me a refund instead."
)


def test_the_no_no_loop_is_cut_to_three_repeats() -> None:
    result = guard_transcript(LOOP, audio_ms=2700)
    assert result.text == "No, no, no"
    assert "repetition" in result.cuts
    assert (result.words_before, result.words_after) == (121, KEPT_REPEATS)


def test_a_normal_long_sentence_is_untouched() -> None:
    result = guard_transcript(LONG, audio_ms=18_000)
    assert result.text == LONG
    assert not result.cut
    assert result.words_before == result.words_after == len(LONG.split())


def test_short_real_repeats_are_kept() -> None:
    for text in ("No, no, that's wrong.", "My PIN is one one one one.", "Yes yes yes, that's it."):
        assert guard_transcript(text, audio_ms=2500).text == text


def test_a_looped_phrase_is_cut_and_what_follows_kept() -> None:
    text = "I want to " * 9 + "go home"
    result = guard_transcript(text, audio_ms=5000)
    assert result.text == "I want to I want to I want to go home"
    assert result.cuts == ("repetition",)


def test_repetition_ignores_case_and_punctuation() -> None:
    tokens = ["Thank", "you.", "thank", "you!", "Thank", "you", "THANK", "you.", "thank", "you,", "bye"]
    assert cut_repetitions(tokens) == ["Thank", "you.", "thank", "you!", "Thank", "you", "bye"]


def test_cut_repetitions_refuses_bad_bounds() -> None:
    with pytest.raises(ValueError, match="kept"):
        cut_repetitions(["a"], max_repeats=2, kept=3)


def test_words_beyond_what_the_audio_can_hold_are_cut() -> None:
    words = [f"word{i}" for i in range(40)]  # all different: no loop, only too many for 2 s
    result = guard_transcript(" ".join(words), audio_ms=2000)
    assert result.cuts == ("words_per_second",)
    assert result.text.split() == words[: words_allowed(2000)]
    assert words_allowed(2000) == 12


def test_short_audio_may_always_carry_a_few_words() -> None:
    assert words_allowed(0) == MIN_WORDS_ALLOWED
    assert words_allowed(-5) == MIN_WORDS_ALLOWED
    assert guard_transcript("yes that is right", audio_ms=300).text == "yes that is right"


def test_non_consecutive_repetition_is_cut_by_compression_ratio() -> None:
    text = " ".join(f"my order number {w} is late" for w in ["one", "two"] * 12)
    result = guard_transcript(text, audio_ms=60_000)
    assert result.cuts == ("compression_ratio",)
    assert compression_ratio(result.text) <= MAX_COMPRESSION_RATIO
    assert text.startswith(result.text)
    assert 0 < result.words_after < result.words_before


def test_empty_and_blank_text() -> None:
    assert guard_transcript("", audio_ms=0) == guard_transcript("   ", audio_ms=1000).__class__("", (), 0, 0)
    assert compression_ratio("") == 1.0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        guard_transcript("hello", 1000, max_words_per_second=0)
    with pytest.raises(ValueError):
        guard_transcript("hello", 1000, max_compression_ratio=1.0)


def test_whisper_silence_rule_needs_both_signs() -> None:
    assert not keep_segment(no_speech_prob=0.9, avg_logprob=-1.5)
    assert keep_segment(no_speech_prob=0.9, avg_logprob=-0.3)  # confident words over a quiet line
    assert keep_segment(no_speech_prob=0.1, avg_logprob=-1.5)  # speech, badly heard


def test_guarded_counts_and_records_a_cut() -> None:
    record = CallRecord("CA1", "agent", "+15550001", "+15550002", "inbound")
    assert guarded(Transcript(LOOP, 2700, 10.0), record) == "No, no, no"
    assert guarded(Transcript("What is the status of my order?", 2000, 10.0), record) == (
        "What is the status of my order?"
    )
    assert record.transcripts_cut == 1
    assert [line.role for line in record.transcript] == ["system"]
    assert "repetition" in record.transcript[0].text and "121 -> 3" in record.transcript[0].text


async def test_a_loop_never_reaches_the_model_in_a_call() -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text="Sorry, what is wrong?"))
    async with fake_call(fakes=fakes) as call:
        call.say(LOOP, ms=2700)
        await until(lambda: len(call.record.turns) >= 1, what="the answer")
        (request,) = fakes.chat.requests
        assert request.messages[-1] == {"role": "user", "content": "No, no, no"}
        assert call.record.transcripts_cut == 1
        assert any(line.role == "system" and "transcript cut" in line.text for line in call.record.transcript)
