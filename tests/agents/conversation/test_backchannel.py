"""Backchannels and false interruptions: an "mhm" or a cough over the agent clears the line at once,
then the unheard rest of the reply resumes and nothing is answered; real words end the reply."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from agents.config import BACKCHANNEL_WORDS, MAX_BACKCHANNEL_WORDS
from agents.conversation.backchannel import MAX_TRANSCRIPT_WORDS, BackchannelWords, normalise
from agents.port import DtmfIn
from agents.testing.fake_engines import FakeEngines, FakeVoiceActivity, silence, speech
from agents.testing.scripted_llm import Reply
from tests.support.fake_call import GREETING, FakeCall, agent_config, fake_call
from tests.support.waiting import until

QUESTION = "Which plans do you have?"
SENTENCES = [
    "We have three plans for you to choose from today.",
    "The basic plan costs ten dollars a month and includes calls.",
    "The premium plan costs twenty dollars a month and adds messages.",
    "The business plan costs fifty dollars a month and adds everything else.",
]
LONG_REPLY = " ".join(SENTENCES)


def messages(call: FakeCall, request: int, role: str) -> list[str]:
    return [m["content"] for m in call.fakes.chat.requests[request].messages if m["role"] == role]


async def reply_playing(call: FakeCall, heard: int) -> None:
    """The caller asked; the whole reply is queued and the caller has heard its first `heard` sentences."""
    call.say(QUESTION, 1500)
    await until(lambda: len(call.port.pending_marks) == len(SENTENCES), what="the reply queued")
    call.port.hear(heard)


# -- what counts as a backchannel ------------------------------------------------------------


@pytest.mark.parametrize(
    "transcript",
    ["Mm-hmm.", "Mhm.", "Uh-huh.", "uh huh", "Yeah.", "Yeah, yeah. Right.", "Okay.", "OK", "I see.", "All right!"],
)
def test_whisper_spellings_of_backchannels_match_the_default_words(transcript: str) -> None:
    assert BackchannelWords(BACKCHANNEL_WORDS).only_backchannel(transcript)


@pytest.mark.parametrize(
    "transcript",
    [
        *["Uh-hoo.", "Mmhm.", "Hmmm...", "Uhh, uh-huh.", "Oh.", "Mm-mmm, yeah.", "And Mm-hmm.", "And mm."],
        *["And then, Mm-hmm.", "So, mm.", "Well, uh-huh."],  # fillers around a hum: nothing to answer
    ],
)
def test_hums_however_whisper_spells_them_are_backchannels(transcript: str) -> None:
    assert BackchannelWords(BACKCHANNEL_WORDS).only_backchannel(transcript)


@pytest.mark.parametrize(
    "transcript",
    ["Oh no, stop.", "Who is this?", "Hmm, how much?", "Ohio", "And then them.", "So then what?", "Well, mm, no."],
)
def test_a_hum_beside_real_words_or_a_word_that_looks_like_one_is_a_turn(transcript: str) -> None:
    assert not BackchannelWords(BACKCHANNEL_WORDS).only_backchannel(transcript)


@pytest.mark.parametrize("transcript", ["", "   ", "[coughs]", "(clears throat)", "*cough*", "♪", "..."])
def test_no_words_is_noise_and_counts_as_no_turn(transcript: str) -> None:
    assert BackchannelWords(BACKCHANNEL_WORDS).only_backchannel(transcript)


@pytest.mark.parametrize(
    "transcript",
    ["No wait, stop.", "Yeah, but what about my refund?", "Okay so my order number is 1234.", "Yes.", "Stop."],
)
def test_real_words_are_a_turn(transcript: str) -> None:
    assert not BackchannelWords(BACKCHANNEL_WORDS).only_backchannel(transcript)


def test_a_long_run_of_backchannel_words_is_still_a_turn() -> None:
    words = BackchannelWords(["yeah"])
    assert words.only_backchannel(" ".join(["yeah"] * MAX_TRANSCRIPT_WORDS))
    assert not words.only_backchannel(" ".join(["yeah"] * (MAX_TRANSCRIPT_WORDS + 1)))


def test_agent_words_are_normalised_like_transcripts() -> None:
    words = BackchannelWords(["Got It!", "sí", "  "])
    assert words.only_backchannel("got it.") and words.only_backchannel("Sí.")
    assert not words.only_backchannel("got")
    assert normalise("Mm-hmm, it\u2019s OK.") == ["mm", "hmm", "it's", "ok"]


# -- a call ------------------------------------------------------------------------------------


async def test_an_mhm_clears_the_line_then_the_unheard_rest_resumes_and_is_not_answered() -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=LONG_REPLY), Reply(text="You're welcome."))
    async with fake_call(fakes=fakes, auto_heard=False) as call:
        await reply_playing(call, heard=1)
        call.say("Mhm.", 300)
        await until(lambda: call.record.resumed_replies == 1, what="the reply resumed")
        await until(lambda: len(call.port.pending_marks) == 3, what="the rest replayed, marked anew")

        assert call.port.kinds().count("clear") == 1
        assert call.heard(after=call.plays_before("clear")) == SENTENCES[1:]  # from the first unheard one
        assert len(fakes.chat.requests) == 1  # the "mhm" never reached the model

        call.port.hear()  # the caller hears the rest this time
        call.played_out()
        call.say("Thank you.", 800)
        await until(lambda: len(fakes.chat.requests) == 2, what="the next turn's request")
        await call.hang_up()

    assert messages(call, 1, "assistant") == [GREETING, LONG_REPLY]  # all of it was heard in the end
    assert messages(call, 1, "user") == [QUESTION, "Thank you."]
    prompts = dict(fakes.stt.asked)  # only the speech over the agent is spelled as a likely backchannel
    assert prompts == {QUESTION: None, "Mhm.": call.session.config.backchannel_prompt, "Thank you.": None}
    assert call.record.barge_ins == 1 and call.observed.barge_ins == 1
    assert call.observed.resumed == 1
    lines = [(line.role, line.text) for line in call.record.transcript]
    assert ("system", "resumed after backchannel") in lines
    assert not [text for role, text in lines if role == "caller" and "Mhm" in text]


async def test_a_cough_with_no_words_resumes_the_reply() -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=LONG_REPLY))
    async with fake_call(fakes=fakes, auto_heard=False) as call:
        await reply_playing(call, heard=2)
        call.say("", 300)  # speech to the detector, no words to speech-to-text
        await until(lambda: call.record.resumed_replies == 1, what="the reply resumed")
        await until(lambda: len(call.port.pending_marks) == 2, what="the rest replayed")
        await call.hang_up()

    assert call.heard(after=call.plays_before("clear")) == SENTENCES[2:]
    assert len(fakes.chat.requests) == 1


async def test_real_words_end_the_reply_and_are_answered_with_the_history_cut_to_what_was_heard() -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=LONG_REPLY), Reply(text="Sure, go ahead."))
    async with fake_call(fakes=fakes, auto_heard=False) as call:
        await reply_playing(call, heard=1)
        call.say("No wait, stop.", 900)
        await until(lambda: len(fakes.chat.requests) == 2, what="the interruption answered")
        await until(lambda: call.heard()[-1] == "Sure, go ahead.", what="the answer played")
        await call.hang_up()

    assert call.heard(after=call.plays_before("clear")) == ["Sure, go ahead."]  # nothing more of the reply
    assert messages(call, 1, "assistant") == [GREETING, SENTENCES[0]]
    assert messages(call, 1, "user") == [QUESTION, "No wait, stop."]
    assert call.record.resumed_replies == 0 and call.observed.resumed == 0


async def test_a_held_reply_still_streaming_keeps_its_place_and_says_each_sentence_once() -> None:
    fakes = FakeEngines()
    first, rest = SENTENCES[0], " ".join(SENTENCES[1:])
    # The first sentence comes at once, the rest while the caller's "mhm" is being judged.
    fakes.chat.push(Reply(text=f"{first} {rest}", chunk_chars=len(first) + 4, delay_between_s=0.05))
    async with fake_call(fakes=fakes, auto_heard=False) as call:
        call.say(QUESTION, 1500)
        await until(lambda: call.port.pending_marks, what="the first sentence queued")
        call.say("Uh-huh.", 300)
        await until(lambda: call.record.resumed_replies == 1, what="the reply resumed")
        await until(lambda: len(call.port.pending_marks) == len(SENTENCES), what="the whole reply queued")
        call.port.hear()
        await until(lambda: call.record.turns, what="the turn's end")
        await call.hang_up()

    assert call.heard(after=call.plays_before("clear")) == SENTENCES
    assert len(fakes.chat.requests) == 1 and fakes.chat.requests[0].outcome == "completed"
    assert not call.record.turns[0].interrupted


async def test_long_speech_over_the_agent_ends_the_reply_without_waiting_for_its_transcript() -> None:
    fakes = FakeEngines()
    first = SENTENCES[0]
    fakes.chat.push(
        Reply(text=f"{first} {SENTENCES[1]}", chunk_chars=len(first) + 4, delay_between_s=30.0),
        Reply(text="Of course."),
    )
    async with fake_call(agent_config(max_backchannel_ms=400), fakes=fakes, auto_heard=False) as call:
        call.say(QUESTION, 1500)
        await until(lambda: call.port.pending_marks, what="the first sentence queued")
        fakes.stt.gate = asyncio.Event()  # no transcript comes until the test says so
        call.say("Hang on, I need to tell you something about my account first.", 1500)
        await until(lambda: fakes.chat.requests[0].outcome == "cancelled", what="the reply dropped")
        assert not call.session.speaker.held
        assert not [text for text in fakes.stt.transcripts if text.startswith("Hang on")]  # not transcribed yet
        fakes.stt.gate.set()
        await until(lambda: len(fakes.chat.requests) == 2, what="the interruption answered")
        await call.hang_up()

    assert messages(call, 1, "user")[-1].startswith("Hang on")
    hang_on = [prompt for words, prompt in fakes.stt.asked if words.startswith("Hang on")]
    assert hang_on == [None]  # past any backchannel's length: transcribed as a turn, not as a maybe-hum
    assert call.record.resumed_replies == 0


async def test_a_hold_without_a_verdict_in_time_is_dropped_and_the_utterance_answered() -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=LONG_REPLY), Reply(text="Yes?"))
    async with fake_call(agent_config(max_hold_ms=500), fakes=fakes, auto_heard=False) as call:
        await reply_playing(call, heard=1)
        fakes.stt.gate = asyncio.Event()  # speech-to-text is stuck
        call.say("Mhm.", 300)
        await until(lambda: call.port.kinds().count("clear") == 1, what="the barge-in")
        await until(lambda: not call.session.speaker.held, what="the hold dropped at its bound")
        fakes.stt.gate.set()
        await until(lambda: len(fakes.chat.requests) == 2, what="the utterance answered as a turn")
        await call.hang_up()

    assert call.record.resumed_replies == 0
    assert call.heard(after=call.plays_before("clear")) == ["Yes?"]


async def test_a_key_press_over_a_held_reply_is_a_real_interruption() -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=LONG_REPLY), Reply(text="Thanks."))
    async with fake_call(agent_config(dtmf_timeout_ms=200), fakes=fakes, auto_heard=False) as call:
        await reply_playing(call, heard=1)
        fakes.stt.gate = asyncio.Event()
        call.say("Mhm.", 300)
        await until(lambda: call.session.speaker.held, what="the reply held")
        call.port.push(DtmfIn("5"))
        await until(lambda: not call.session.speaker.held, what="the hold dropped")
        fakes.stt.gate.set()
        await until(lambda: len(fakes.chat.requests) >= 2, what="the key press answered")
        await call.hang_up()

    assert call.record.resumed_replies == 0
    assert call.port.kinds().count("clear") == 1  # the line was cleared once, at the speech


def onset_engines() -> FakeEngines:
    """Speech counts after 120 ms, and 40 ms of it over the agent already clears the line."""
    return FakeEngines(vad=FakeVoiceActivity(min_speech_ms=120, onset_ms=40))


async def test_the_line_is_cleared_on_the_onset_of_speech_before_it_counts_as_speech() -> None:
    fakes = onset_engines()
    fakes.chat.push(Reply(text=LONG_REPLY), Reply(text="Sure, go ahead."))
    async with fake_call(fakes=fakes, auto_heard=False) as call:
        await reply_playing(call, heard=1)
        call.port.push_audio(speech("No wait, stop.", 60))  # 60 ms: past the onset, not yet speech
        await until(lambda: call.port.kinds().count("clear") == 1, what="the clear on the onset")
        assert call.session.speaker.held
        call.port.push_audio(speech("No wait, stop.", 840) + silence(500))  # the words go on: a turn
        await until(lambda: len(fakes.chat.requests) == 2, what="the interruption answered")
        await until(lambda: call.heard()[-1] == "Sure, go ahead.", what="the answer played")
        await call.hang_up()

    assert call.port.kinds().count("clear") == 1
    assert call.record.barge_ins == 1 and call.record.resumed_replies == 0
    assert messages(call, 1, "assistant") == [GREETING, SENTENCES[0]]


async def test_a_sound_that_fades_before_it_is_speech_resumes_the_reply_without_a_transcript() -> None:
    fakes = onset_engines()
    fakes.chat.push(Reply(text=LONG_REPLY))
    async with fake_call(fakes=fakes, auto_heard=False) as call:
        await reply_playing(call, heard=2)
        fakes.stt.gate = asyncio.Event()  # no transcript could decide this one
        call.say("Bump.", 60)
        await until(lambda: call.record.resumed_replies == 1, what="the reply resumed")
        await until(lambda: len(call.port.pending_marks) == 2, what="the rest replayed")
        fakes.stt.gate.set()
        await call.hang_up()

    assert call.port.kinds().count("clear") == 1
    assert call.heard(after=call.plays_before("clear")) == SENTENCES[2:]
    assert len(fakes.chat.requests) == 1 and "Bump." not in fakes.stt.transcripts


async def test_an_onset_while_the_agent_is_only_thinking_does_not_touch_the_turn() -> None:
    fakes = onset_engines()
    fakes.chat.push(Reply(text="Let me see.", delay_first_s=0.3))
    async with fake_call(fakes=fakes) as call:
        call.say(QUESTION, 1500)
        await until(lambda: len(fakes.chat.requests) == 1, what="the question asked")
        call.say("Bump.", 60)  # before the answer's audio: nothing to clear or hold
        await until(lambda: "Let me see." in call.heard(), what="the answer")
        await call.hang_up()

    assert "clear" not in call.port.kinds() and call.record.barge_ins == 0


async def test_with_resuming_off_every_barge_in_ends_the_reply() -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=LONG_REPLY), Reply(text="Yes?"))
    async with fake_call(agent_config(resume_after_backchannel=False), fakes=fakes, auto_heard=False) as call:
        await reply_playing(call, heard=1)
        call.say("Mhm.", 300)
        await until(lambda: len(fakes.chat.requests) == 2, what="the mhm answered")
        await call.hang_up()

    assert messages(call, 1, "user") == [QUESTION, "Mhm."]
    assert call.record.resumed_replies == 0


async def test_a_real_interruption_during_the_replay_keeps_the_history_to_what_was_heard() -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=LONG_REPLY), Reply(text="Go ahead."))
    async with fake_call(fakes=fakes, auto_heard=False) as call:
        await reply_playing(call, heard=1)
        call.say("Yeah.", 300)
        await until(lambda: call.record.resumed_replies == 1, what="the reply resumed")
        await until(lambda: len(call.port.pending_marks) == 3, what="the rest replayed")
        call.port.hear(1)  # the second sentence is heard this time
        call.say("Stop, stop, I want the business plan.", 1000)
        await until(lambda: len(fakes.chat.requests) == 2, what="the interruption answered")
        await call.hang_up()

    assert messages(call, 1, "assistant") == [GREETING, " ".join(SENTENCES[:2])]
    assert call.port.kinds().count("clear") == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"backchannel_words": ["mhm"] * (MAX_BACKCHANNEL_WORDS + 1)},
        {"backchannel_words": ["x" * 41]},
        {"backchannel_words": [""]},
        {"max_backchannel_ms": 50},
        {"max_hold_ms": 60_000},
    ],
)
def test_unbounded_or_empty_backchannel_settings_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        agent_config(**overrides)
