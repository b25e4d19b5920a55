"""Streaming Silero VAD on the real model: turn events from caller speech, silence and noise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agents.engines.local.model_files import ModelFileError, package_dir
from agents.engines.local.silero import WINDOW_MS, SileroVoiceActivity, VadConfig
from agents.engines.protocols import SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted, VadEvent
from tests.support.speech import SAMPLE_RATE, frames, load, noise, silence, speech_span_ms

# Silero hears most of `interrupt.wav` ("Wait, stop. I have a question.") below 0.5, and whether
# the first words count depends on how the windows fall; the other three give one clean turn.
ONE_TURN = ["order_status", "speak_to_person", "order_number"]


@pytest.fixture(scope="module")
def activity() -> SileroVoiceActivity:
    return SileroVoiceActivity()


def run(activity: SileroVoiceActivity, pcm: bytes, frame_bytes: int = 640) -> list[VadEvent]:
    detector = activity.detector()
    events: list[VadEvent] = []
    for frame in frames(pcm, frame_bytes):
        events.extend(detector.feed(frame))
    return events


def kinds(events: list[VadEvent]) -> list[type]:
    return [type(event) for event in events]


def turns(events: list[VadEvent]) -> int:
    return kinds(events).count(SpeechEnded)


def assert_well_formed(events: list[VadEvent]) -> None:
    """Started, then pause/resume pairs, then a pause and the end, per turn; times never go back."""
    expected_next: dict[type, set[type]] = {
        SpeechStarted: {SpeechPaused},
        SpeechPaused: {SpeechResumed, SpeechEnded},
        SpeechResumed: {SpeechPaused},
        SpeechEnded: {SpeechStarted},
    }
    allowed: set[type] = {SpeechStarted}
    for event in events:
        assert type(event) in allowed, f"unexpected {event} in {events}"
        allowed = expected_next[type(event)]
    times = [event.at_ms for event in events]
    assert times == sorted(times)


def test_model_facts(activity: SileroVoiceActivity) -> None:
    assert activity.sample_rate == SAMPLE_RATE
    assert WINDOW_MS == 32
    assert activity.config.release == pytest.approx(0.35)


@pytest.mark.parametrize(
    "pcm",
    [silence(3000), noise(3000, rms=30), noise(3000, rms=1000, seed=1), b""],
    ids=["silence", "hiss", "loud-noise", "empty"],
)
def test_no_speech_gives_no_events(activity: SileroVoiceActivity, pcm: bytes) -> None:
    assert run(activity, pcm) == []


def test_steady_tone_is_not_speech(activity: SileroVoiceActivity) -> None:
    t = np.arange(SAMPLE_RATE * 3) / SAMPLE_RATE
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).tobytes()
    assert run(activity, tone) == []


@pytest.mark.parametrize("name", ONE_TURN)
def test_one_utterance_is_one_turn_at_the_right_place(activity: SileroVoiceActivity, name: str) -> None:
    pcm = silence(300) + load(name) + silence(1000)
    start, end = speech_span_ms(pcm)
    events = run(activity, pcm)
    assert_well_formed(events)
    assert kinds(events).count(SpeechStarted) == 1 and turns(events) == 1
    started, ended = events[0], events[-1]
    assert start - 100 <= started.at_ms <= start + 500  # the voice's first syllable can sit below 0.5
    assert end - 200 <= ended.at_ms <= end + 150


def test_turn_ends_only_after_the_end_of_turn_silence(activity: SileroVoiceActivity) -> None:
    config = VadConfig(end_of_turn_silence_ms=800)
    detector = SileroVoiceActivity(config).detector()
    ended_at: list[tuple[SpeechEnded, int]] = []
    for frame in frames(load("order_status") + silence(1500)):
        ended_at += [(e, detector.audio_ms) for e in detector.feed(frame) if isinstance(e, SpeechEnded)]
    [(event, audio_ms)] = ended_at
    assert audio_ms - event.at_ms >= 800
    assert audio_ms - event.at_ms < 800 + 2 * WINDOW_MS


def test_long_pause_splits_turns_and_short_pause_does_not(activity: SileroVoiceActivity) -> None:
    first, second = load("order_status"), load("order_number")
    apart = run(activity, first + silence(1500) + second + silence(1000))
    assert_well_formed(apart)
    assert turns(apart) == 2
    # The fixtures carry ~0.5 s of silence between their speech: a pause, not an end of turn.
    together = run(activity, first + second + silence(1000))
    assert_well_formed(together)
    assert turns(together) == 1
    assert SpeechResumed in kinds(together)


def test_speech_shorter_than_min_speech_gives_no_events() -> None:
    pcm = load("order_status") + silence(1000)  # about 1.5 s of speech
    assert run(SileroVoiceActivity(VadConfig(min_speech_ms=3000)), pcm) == []
    assert turns(run(SileroVoiceActivity(VadConfig(min_speech_ms=1000)), pcm)) == 1


def test_detectors_keep_their_own_state(activity: SileroVoiceActivity) -> None:
    a_pcm = load("order_status") + silence(1000)
    b_pcm = silence(700) + load("order_number") + silence(1000)
    alone_a, alone_b = run(activity, a_pcm), run(activity, b_pcm)
    a, b = activity.detector(), activity.detector()
    mixed_a: list[VadEvent] = []
    mixed_b: list[VadEvent] = []
    for frame_a, frame_b in zip(frames(a_pcm), frames(b_pcm), strict=False):
        mixed_a += a.feed(frame_a)
        mixed_b += b.feed(frame_b)
    for frame_b in frames(b_pcm)[len(frames(a_pcm)) :]:
        mixed_b += b.feed(frame_b)
    assert (mixed_a, mixed_b) == (alone_a, alone_b)
    assert alone_a and alone_b and alone_a != alone_b


PCM = silence(200) + load("order_status") + silence(800)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(min_value=1, max_value=3001), min_size=1, max_size=40))
def test_frame_lengths_do_not_change_events(activity: SileroVoiceActivity, sizes: list[int]) -> None:
    """Any split of the same bytes, odd lengths included, gives the same events."""
    reference = run(activity, PCM)
    detector = activity.detector()
    events: list[VadEvent] = []
    position, index = 0, 0
    while position < len(PCM):
        size = sizes[index % len(sizes)]
        events += detector.feed(PCM[position : position + size])
        position, index = position + size, index + 1
    assert events == reference
    assert detector.audio_ms == len(PCM) // (WINDOW_MS * 32) * WINDOW_MS


def test_oversized_frame_is_refused_and_the_detector_goes_on(activity: SileroVoiceActivity) -> None:
    detector = SileroVoiceActivity(VadConfig(max_frame_ms=1000)).detector()
    with pytest.raises(ValueError, match="max_frame_ms"):
        detector.feed(silence(1001))
    events = [e for frame in frames(load("order_status") + silence(1000)) for e in detector.feed(frame)]
    assert turns(events) == 1


@pytest.mark.parametrize(
    "values",
    [
        {"threshold": 0.5, "negative_threshold": 0.5},
        {"threshold": 0.1},
        {"threshold": 1.5},
        {"min_speech_ms": 10},
        {"end_of_turn_silence_ms": 0},
        {"thresold": 0.5},
    ],
)
def test_bad_config_is_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VadConfig(**values)  # type: ignore[arg-type]


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "vad.onnx"
    garbage.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelFileError, match="cannot load VAD model"):
        SileroVoiceActivity(model_path=garbage)


@pytest.mark.skipif(importlib.util.find_spec("silero_vad") is None, reason="silero-vad (--no-deps) not installed")
def test_a_model_with_other_inputs_is_refused() -> None:
    """silero-vad's own export takes (input, state, sr): not the v6 graph this detector drives."""
    other = package_dir("silero_vad", "silero-vad==6.2.3 --no-deps") / "data" / "silero_vad.onnx"
    with pytest.raises(ModelFileError, match="not Silero VAD v6"):
        SileroVoiceActivity(model_path=other)
