"""The per-call turn listener on the real VAD and Whisper: turns, transcripts, early transcription."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from agents.conversation.end_of_turn import known_lengths
from agents.conversation.listener import ListenerConfig, TurnListener, TurnPending, UtteranceReady
from agents.engines.local.pool import InferenceOverloaded, InferencePool
from agents.engines.local.silero import SileroVoiceActivity, VadConfig
from agents.engines.local.smart_turn import SmartTurnModel
from agents.engines.local.whisper import WhisperSpeechToText
from agents.engines.protocols import SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted, VadEvent
from agents.testing.fake_engines import FakeSpeechToText, FakeVoiceActivity
from agents.testing.fake_engines import silence as fake_silence
from agents.testing.fake_engines import speech as fake_speech
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


def feed_all(listen: TurnListener, pcm: bytes) -> list[VadEvent | TurnPending | UtteranceReady]:
    return [event for frame in frames(pcm) for event in listen.feed(frame)]


def ready(events: list[VadEvent | TurnPending | UtteranceReady]) -> list[UtteranceReady]:
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
    kinds = [type(event) for event in events if not isinstance(event, (SpeechPaused, SpeechResumed, TurnPending))]
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


async def test_smart_turn_on_the_real_models_ends_a_question_before_the_bound(
    activity: SileroVoiceActivity, stt: WhisperSpeechToText
) -> None:
    """Silero with the long bound as its own silence, Whisper, Smart Turn: the question ends the turn
    once the silence adds enough evidence, before the bound, with the early transcript. Frames go in
    faster than real time, so the test waits for the pending transcript and the model run as a call
    (20 ms a frame) would have."""
    config = ListenerConfig(end_of_turn="smart_turn")
    vad = SileroVoiceActivity(VadConfig(end_of_turn_silence_ms=config.smart_turn_max_wait_ms))
    model = SmartTurnModel()
    listen = TurnListener(vad.detector(), stt, config, end_of_turn_model=model)
    events, judged = [], 0
    for frame in frames(silence(300) + load("order_status") + silence(2000)):
        fed = listen.feed(frame)
        events += fed
        for pending in (event for event in fed if isinstance(event, TurnPending)):
            await pending.transcript
        if listen.judged > judged:  # the model started on this frame (it may come after the transcript's start)
            judged = listen.judged
            await asyncio.sleep(0.5)  # the model's run (tens of ms) on its thread
    [utterance] = ready(events)
    assert utterance.early and listen.judged == 1 and listen.smart_ends == 1
    assert utterance.ended_at_ms - utterance.speech_end_ms < config.smart_turn_max_wait_ms
    assert normalise((await utterance.transcript).text) == normalise(TEXTS["order_status"])
    model.close()


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValidationError, match="history_ms"):
        ListenerConfig(preroll_ms=1000, history_ms=500)
    with pytest.raises(ValidationError):
        ListenerConfig(max_utterance_ms=10)


# -- semantic end of turn, on the fake detector and speech-to-text ---------------------------


class ScriptedTurnModel:
    """An `EndOfTurnModel` that answers each run with the next scripted probability (or raises it)."""

    def __init__(self, *answers: float | Exception) -> None:
        self.answers = list(answers)
        self.heard_ms: list[int] = []

    async def completion(self, pcm16k: bytes) -> float:
        self.heard_ms.append(len(pcm16k) // 32)
        await asyncio.sleep(0)
        answer = self.answers.pop(0) if self.answers else 0.5
        if isinstance(answer, Exception):
            raise answer
        return answer


DETECTOR_END_MS = 1600
"""The fake detector's own end-of-turn silence: the long bound, as voice.py wires it for smart_turn."""


def smart_listener(model: ScriptedTurnModel | None, **config: object) -> TurnListener:
    settings = {"end_of_turn": "smart_turn", "smart_turn_model_weight": 1.0, **config}
    return TurnListener(
        FakeVoiceActivity(min_speech_ms=60, end_of_turn_ms=DETECTOR_END_MS).detector(),
        FakeSpeechToText(),
        ListenerConfig(**settings),  # type: ignore[arg-type]
        end_of_turn_model=model,
    )


async def feed_live(listen: TurnListener, pcm: bytes) -> list[VadEvent | TurnPending | UtteranceReady]:
    """Feed 20 ms frames, letting the loop run the listener's tasks between frames as a call does."""
    events = []
    for frame in frames(pcm):
        events += listen.feed(frame)
        for _ in range(3):
            await asyncio.sleep(0)
    return events


def of(kind: type, events: list[VadEvent | TurnPending | UtteranceReady]) -> list:
    return [event for event in events if isinstance(event, kind)]


async def test_a_complete_turn_ends_early_with_the_pending_transcript() -> None:
    model = ScriptedTurnModel(0.9)
    listen = smart_listener(model)
    events = await feed_live(listen, fake_silence(200) + fake_speech("What time do you open?") + fake_silence(2500))
    assert [type(e) for e in events] == [SpeechStarted, SpeechPaused, TurnPending, SpeechEnded, UtteranceReady]
    [pending], [ended], [utterance] = of(TurnPending, events), of(SpeechEnded, events), of(UtteranceReady, events)
    assert utterance.transcript is pending.transcript and utterance.early
    assert pending.speech_end_ms == utterance.speech_end_ms == ended.at_ms
    # judged once, on the turn up to smart_turn_silence_ms into the pause; ended well before the bound
    assert len(model.heard_ms) == 1 and listen.smart_ends == 1
    assert utterance.ended_at_ms - utterance.speech_end_ms < listen.config.smart_turn_max_wait_ms
    assert (await utterance.transcript).text == "What time do you open?"
    # the detector's own SpeechEnded came later (2500 ms of silence > 1600) and was ignored


async def test_unfinished_words_wait_for_the_silence_bound() -> None:
    model = ScriptedTurnModel(0.9)  # the model is fooled; the words are not
    listen = smart_listener(model)
    events = await feed_live(listen, fake_speech("my account number is seven seven four") + fake_silence(2500))
    [ended], [utterance] = of(SpeechEnded, events), of(UtteranceReady, events)
    waited = utterance.ended_at_ms - utterance.speech_end_ms
    assert listen.config.smart_turn_max_wait_ms <= waited < listen.config.smart_turn_max_wait_ms + 40
    assert listen.smart_ends == 0 and utterance.early and ended.at_ms == utterance.speech_end_ms


async def test_an_unsure_model_waits_for_the_bound() -> None:
    listen = smart_listener(ScriptedTurnModel(0.1))
    events = await feed_live(listen, fake_speech("I received it") + fake_silence(2500))
    [utterance] = of(UtteranceReady, events)
    assert utterance.ended_at_ms - utterance.speech_end_ms >= listen.config.smart_turn_max_wait_ms


async def test_speech_after_a_smart_end_is_a_new_turn() -> None:
    model = ScriptedTurnModel(0.95, 0.95)
    listen = smart_listener(model)
    pcm = fake_speech("Yes.") + fake_silence(500) + fake_speech("Sounds good.") + fake_silence(2500)
    events = await feed_live(listen, pcm)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechPaused, TurnPending, SpeechEnded, UtteranceReady] * 2
    texts = [(await u.transcript).text for u in of(UtteranceReady, events)]
    assert texts == ["Yes.", "Sounds good."]
    assert listen.smart_ends == 2


async def test_a_cough_after_a_smart_end_is_not_a_turn() -> None:
    """The detector is still in its pause, so a click resumes it at once: the listener asks the
    resumed speech to last `resume_min_speech_ms`, as a fresh start would."""
    listen = smart_listener(ScriptedTurnModel(0.95))
    pcm = fake_speech("Yes.") + fake_silence(400) + fake_speech("k", ms=60) + fake_silence(2500)
    events = await feed_live(listen, pcm)
    assert SpeechResumed not in [type(e) for e in events]
    assert [type(e) for e in events] == [SpeechStarted, SpeechPaused, TurnPending, SpeechEnded, UtteranceReady]
    # and after the detector's own late end, speech starts turns as usual
    events = await feed_live(listen, fake_speech("Hello?") + fake_silence(1000))
    assert [type(e) for e in events][:1] == [SpeechStarted]


async def test_a_resumed_pause_is_judged_again() -> None:
    model = ScriptedTurnModel(0.1, 0.9)
    listen = smart_listener(model)
    pcm = fake_speech("I would like") + fake_silence(400) + fake_speech("a refund.") + fake_silence(1500)
    events = await feed_live(listen, pcm)
    assert SpeechResumed in [type(e) for e in events]
    # "I would like" is unfinished: that pause is no likely end (no TurnPending), and its job is dead
    [pending] = of(TurnPending, events)
    assert listen.early_abandoned == 1
    [utterance] = of(UtteranceReady, events)
    assert utterance.transcript is pending.transcript
    assert (await utterance.transcript).text == "I would like a refund."
    assert len(model.heard_ms) == 2 and model.heard_ms[0] < model.heard_ms[1]


async def test_a_failed_model_run_leaves_the_words_to_decide() -> None:
    listen = smart_listener(ScriptedTurnModel(InferenceOverloaded("busy")))
    events = await feed_live(listen, fake_speech("Can you hear me?") + fake_silence(1500))
    [utterance] = of(UtteranceReady, events)
    assert listen.smart_ends == 1 and utterance.ended_at_ms - utterance.speech_end_ms < 1000


async def test_without_early_transcription_the_model_alone_decides() -> None:
    listen = smart_listener(ScriptedTurnModel(0.95), early_transcription=False)
    events = await feed_live(listen, fake_speech("my number is four") + fake_silence(1500))
    assert of(TurnPending, events) == []
    [utterance] = of(UtteranceReady, events)
    assert not utterance.early and listen.smart_ends == 1


async def test_with_the_calibrated_weights_a_statement_ends_after_a_middle_wait() -> None:
    """Model weight 0 (the calibration's): a full stop ends the turn once the silence has added
    enough evidence, well before the long bound; unfinished words wait for the bound."""
    listen = smart_listener(ScriptedTurnModel(0.01, 0.99), smart_turn_model_weight=0.0)
    config = listen.config
    events = await feed_live(listen, fake_speech("I received the wrong item.") + fake_silence(2500))
    [utterance] = of(UtteranceReady, events)
    waited = utterance.ended_at_ms - utterance.speech_end_ms
    assert config.smart_turn_silence_ms < waited < config.smart_turn_max_wait_ms and listen.smart_ends == 1
    events = await feed_live(listen, fake_speech("I ordered a jacket and") + fake_silence(2500))
    [utterance] = of(UtteranceReady, events)
    assert utterance.ended_at_ms - utterance.speech_end_ms >= config.smart_turn_max_wait_ms


async def test_silence_rule_also_says_turn_pending() -> None:
    listen = TurnListener(FakeVoiceActivity(end_of_turn_ms=600).detector(), FakeSpeechToText(), ListenerConfig())
    events = await feed_live(listen, fake_speech("Where is my order?") + fake_silence(1000))
    assert [type(e) for e in events] == [SpeechStarted, SpeechPaused, TurnPending, SpeechEnded, UtteranceReady]
    [pending], [utterance] = of(TurnPending, events), of(UtteranceReady, events)
    assert utterance.transcript is pending.transcript
    assert utterance.ended_at_ms - utterance.speech_end_ms >= 600


async def test_a_comma_s_pause_starts_a_transcription_but_no_turn_pending() -> None:
    """A pause longer than `tail_ms` and shorter than `pending_ms` costs a Whisper run, never a
    speculative reply: a model request the caller's next words would drop."""
    config = ListenerConfig()
    assert config.tail_ms < 160 < config.pending_ms
    listen = TurnListener(FakeVoiceActivity(end_of_turn_ms=600).detector(), FakeSpeechToText(), config)
    pcm = fake_speech("I would like to speak to a person,") + fake_silence(160) + fake_speech("please.")
    events = await feed_live(listen, pcm + fake_silence(1000))
    [pending], [utterance] = of(TurnPending, events), of(UtteranceReady, events)
    assert listen.early_started == 2 and listen.early_abandoned == 1
    assert utterance.transcript is pending.transcript and utterance.early
    assert pending.speech_end_ms == utterance.speech_end_ms  # the pause after "please", not the comma's


async def test_the_words_rule_needs_no_model_and_ends_a_question_soonest() -> None:
    """`words`: the early transcript and the silence decide, from `smart_turn_silence_ms` on: a
    question soonest, a statement after a middle wait, unfinished words only at the bound."""
    config = ListenerConfig(end_of_turn="words", smart_turn_threshold=0.8, smart_turn_max_wait_ms=750)
    detector = FakeVoiceActivity(min_speech_ms=60, end_of_turn_ms=750).detector()
    listen = TurnListener(detector, FakeSpeechToText(), config)
    waited = []
    for text in ("What time do you open?", "I received the wrong item.", "I ordered a jacket and"):
        events = await feed_live(listen, fake_speech(text) + fake_silence(1500))
        [utterance] = of(UtteranceReady, events)
        waited.append(utterance.ended_at_ms - utterance.speech_end_ms)
        assert (await utterance.transcript).text == text
    question, statement, unfinished = waited
    assert config.smart_turn_silence_ms <= question < statement < config.smart_turn_max_wait_ms <= unfinished
    assert listen.smart_ends == 2 and listen.judged == 0  # no model asked
    # no transcript during the pause: the words say nothing either way, so even a question waits longer
    blind = TurnListener(
        FakeVoiceActivity(min_speech_ms=60, end_of_turn_ms=750).detector(),
        FakeSpeechToText(),
        config.model_copy(update={"early_transcription": False}),
    )
    events = await feed_live(blind, fake_speech("What time do you open?") + fake_silence(1500))
    [utterance] = of(UtteranceReady, events)
    assert statement < utterance.ended_at_ms - utterance.speech_end_ms < config.smart_turn_max_wait_ms


async def test_a_number_read_out_to_its_known_length_ends_as_a_sentence_does() -> None:
    """The agent's known lengths (`expect_numbers`): an order number of its length is finished, so
    the turn ends as a statement's would; one digit short, it waits for the bound as before."""
    config = ListenerConfig(end_of_turn="words", smart_turn_threshold=0.8, smart_turn_max_wait_ms=750)
    waited = {}
    for lengths in ({}, {"order number": 5}):
        detector = FakeVoiceActivity(min_speech_ms=60, end_of_turn_ms=750).detector()
        listen = TurnListener(detector, FakeSpeechToText(), config)
        listen.expect_numbers(known_lengths(lengths))
        for text in ("My order number is 12345.", "My order number is 1234."):
            events = await feed_live(listen, fake_speech(text) + fake_silence(1500))
            [utterance] = of(UtteranceReady, events)
            waited[len(lengths), text] = utterance.ended_at_ms - utterance.speech_end_ms
    bound = config.smart_turn_max_wait_ms
    assert waited[1, "My order number is 12345."] < bound <= waited[0, "My order number is 12345."]
    assert waited[1, "My order number is 1234."] >= bound and waited[0, "My order number is 1234."] >= bound


async def test_unfinished_words_are_a_likely_end_only_near_the_bound() -> None:
    """A pause after "and" cannot end the turn before the bound, so no speculative reply is started
    on it at `pending_ms` (the caller usually goes on): it is announced `unfinished_pending_lead_ms`
    before the bound instead; a question is announced at `pending_ms`, as under the silence rule."""
    config = ListenerConfig(end_of_turn="words", smart_turn_threshold=0.8, smart_turn_max_wait_ms=750)
    announced = {}
    for text in ("What time do you open?", "I ordered a jacket and"):
        listen = TurnListener(
            FakeVoiceActivity(min_speech_ms=60, end_of_turn_ms=750).detector(), FakeSpeechToText(), config
        )
        for frame in frames(fake_speech(text) + fake_silence(1500)):
            for event in listen.feed(frame):
                if isinstance(event, TurnPending):
                    announced[text] = listen.audio_ms - event.speech_end_ms
            for _ in range(3):
                await asyncio.sleep(0)
    lead_start = config.smart_turn_max_wait_ms - config.unfinished_pending_lead_ms
    assert config.pending_ms <= announced["What time do you open?"] < config.pending_ms + 40
    assert lead_start <= announced["I ordered a jacket and"] < lead_start + 40


def test_smart_turn_needs_a_model_and_sane_bounds() -> None:
    with pytest.raises(ValueError, match="end_of_turn_model"):
        smart_listener(None)
    with pytest.raises(ValidationError, match="smart_turn_silence_ms"):
        ListenerConfig(end_of_turn="smart_turn", smart_turn_silence_ms=800, smart_turn_max_wait_ms=600)
    with pytest.raises(ValidationError, match="smart_turn_silence_ms"):
        ListenerConfig(end_of_turn="words", smart_turn_silence_ms=800, smart_turn_max_wait_ms=600)
    with pytest.raises(ValidationError):
        ListenerConfig(end_of_turn="semantic")  # type: ignore[arg-type]
