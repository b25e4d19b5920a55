"""The per-call turn listener on the real VAD and Whisper: turns, transcripts, early transcription."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from agents.conversation.listener import ListenerConfig, TurnListener, UtteranceReady
from agents.engines.local.pool import InferenceOverloaded, InferencePool
from agents.engines.local.silero import SileroVoiceActivity
from agents.engines.local.whisper import WhisperSpeechToText
from agents.engines.protocols import SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted, VadEvent
from tests.support.speech import TEXTS, frames, load, normalise, silence

# The three fixtures Silero hears as one clean turn (see test_vad.py).
ONE_TURN = ["order_status", "speak_to_person", "order_number"]


@pytest.fixture(scope="module")
def activity() -> SileroVoiceActivity:
    return SileroVoiceActivity()


@pytest.fixture(scope="module")
def pool() -> InferencePool:
    return InferencePool("listener-test", max_workers=1, max_pending=4)


@pytest.fixture(scope="module")
def stt(pool: InferencePool) -> Iterator[WhisperSpeechToText]:
    engine = WhisperSpeechToText(pool=pool)
    asyncio.run(engine.warm_up())
    yield engine
    pool.close()


def listener(activity: SileroVoiceActivity, stt: WhisperSpeechToText, **config: object) -> TurnListener:
    return TurnListener(activity.detector(), stt, ListenerConfig(**config))  # type: ignore[arg-type]


def feed_all(listen: TurnListener, pcm: bytes) -> list[VadEvent | UtteranceReady]:
    return [event for frame in frames(pcm) for event in listen.feed(frame)]


def ready(events: list[VadEvent | UtteranceReady]) -> list[UtteranceReady]:
    return [event for event in events if isinstance(event, UtteranceReady)]


@pytest.mark.parametrize("early", [True, False], ids=["early", "late"])
@pytest.mark.parametrize("name", ONE_TURN)
async def test_a_turn_is_transcribed_exactly(
    activity: SileroVoiceActivity, stt: WhisperSpeechToText, name: str, early: bool
) -> None:
    listen = listener(activity, stt, early_transcription=early)
    events = feed_all(listen, silence(300) + load(name) + silence(1000))
    kinds = [type(event) for event in events]
    assert kinds[0] is SpeechStarted and kinds[-2:] == [SpeechEnded, UtteranceReady]
    [utterance] = ready(events)
    ended = events[-2]
    assert isinstance(ended, SpeechEnded)
    assert utterance.speech_start_ms == events[0].at_ms  # type: ignore[union-attr]
    assert utterance.speech_end_ms == ended.at_ms
    assert utterance.speech_end_ms < utterance.ended_at_ms <= listen.audio_ms
    assert utterance.early is early
    transcript = await utterance.transcript
    assert normalise(transcript.text) == normalise(TEXTS[name])
    # pre-roll before the start, tail after the end: the same audio on both paths
    config = listen.config
    assert transcript.audio_ms == pytest.approx(
        utterance.speech_end_ms + config.tail_ms - max(0, utterance.speech_start_ms - config.preroll_ms), abs=1
    )
    # a pause inside the sentence may start (and abandon) a job of its own; the last one is used
    assert listen.early_started == (listen.early_abandoned + 1 if early else 0)


async def test_two_turns_give_two_transcripts(activity: SileroVoiceActivity, stt: WhisperSpeechToText) -> None:
    listen = listener(activity, stt)
    pcm = load("order_status") + silence(1500) + load("order_number") + silence(1000)
    utterances = ready(feed_all(listen, pcm))
    texts = [normalise((await utterance.transcript).text) for utterance in utterances]
    assert texts == [normalise(TEXTS["order_status"]), normalise(TEXTS["order_number"])]
    assert utterances[0].ended_at_ms < utterances[1].speech_start_ms


async def test_resumed_speech_abandons_the_early_job(activity: SileroVoiceActivity, stt: WhisperSpeechToText) -> None:
    """~0.5 s between the two sentences: long enough to start an early job, too short to end the turn."""
    listen = listener(activity, stt)
    events = feed_all(listen, load("order_status") + load("speak_to_person") + silence(1000))
    [utterance] = ready(events)
    assert SpeechResumed in [type(event) for event in events]
    assert listen.early_abandoned >= 1
    assert listen.early_started == listen.early_abandoned + 1
    assert utterance.early
    text = normalise((await utterance.transcript).text)
    assert text == normalise(TEXTS["order_status"] + " " + TEXTS["speak_to_person"])


async def test_a_turn_over_max_utterance_is_cut(activity: SileroVoiceActivity, stt: WhisperSpeechToText) -> None:
    listen = listener(activity, stt, max_utterance_ms=1000)
    events = feed_all(listen, silence(300) + load("order_number") + silence(1000))
    utterances = ready(events)
    assert len(utterances) >= 2
    kinds = [type(event) for event in events if not isinstance(event, (SpeechPaused, SpeechResumed))]
    assert kinds == [SpeechStarted, SpeechEnded, UtteranceReady] * len(utterances)
    for utterance in utterances:
        assert (await utterance.transcript).audio_ms <= 1000
    assert listen.buffered_ms <= listen.config.history_ms


async def test_while_the_pod_sheds_load_a_turn_is_cut_at_the_shed_bound(
    activity: SileroVoiceActivity, stt: WhisperSpeechToText
) -> None:
    shedding = False
    listen = TurnListener(
        activity.detector(),
        stt,
        ListenerConfig(max_utterance_ms=30_000, shed_utterance_ms=1000),
        shedding=lambda: shedding,
    )
    speech = silence(300) + load("order_number") + silence(1000)
    [whole] = ready(feed_all(listen, speech))  # not shedding: one whole turn
    assert (await whole.transcript).audio_ms > 1000
    shedding = True
    cut = ready(feed_all(listen, speech))
    assert len(cut) >= 2
    for utterance in cut:
        assert (await utterance.transcript).audio_ms <= 1000


async def test_audio_between_turns_is_bounded(activity: SileroVoiceActivity, stt: WhisperSpeechToText) -> None:
    listen = listener(activity, stt, history_ms=800, preroll_ms=300)
    assert feed_all(listen, silence(5000)) == []
    assert listen.audio_ms == 5000
    assert listen.buffered_ms == 800


async def test_overload_surfaces_from_the_transcript(
    activity: SileroVoiceActivity, stt: WhisperSpeechToText, pool: InferencePool
) -> None:
    busy = [asyncio.create_task(stt.transcribe(load("order_number"))) for _ in range(pool.max_pending)]
    await asyncio.sleep(0)
    listen = listener(activity, stt, early_transcription=False)
    [utterance] = ready(feed_all(listen, load("order_status") + silence(1000)))
    with pytest.raises(InferenceOverloaded):
        await utterance.transcript
    await asyncio.gather(*busy)


async def test_close_cancels_transcription(activity: SileroVoiceActivity, stt: WhisperSpeechToText) -> None:
    listen = listener(activity, stt, early_transcription=False)
    [utterance] = ready(feed_all(listen, load("order_status") + silence(1000)))
    listen.close()
    await asyncio.wait([utterance.transcript])
    assert utterance.transcript.cancelled()


async def test_a_refused_frame_changes_nothing(activity: SileroVoiceActivity, stt: WhisperSpeechToText) -> None:
    listen = listener(activity, stt)
    with pytest.raises(ValueError, match="max_frame_ms"):
        listen.feed(silence(activity.config.max_frame_ms + 20))
    assert listen.audio_ms == 0
    [utterance] = ready(feed_all(listen, load("order_status") + silence(1000)))
    assert normalise((await utterance.transcript).text) == normalise(TEXTS["order_status"])


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValidationError, match="history_ms"):
        ListenerConfig(preroll_ms=1000, history_ms=500)
    with pytest.raises(ValidationError):
        ListenerConfig(max_utterance_ms=10)
