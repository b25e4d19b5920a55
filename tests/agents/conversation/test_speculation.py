"""Speculative replies and the slow-first-token filler, on the fake engines and an in-memory port.

The listener says `TurnPending` once `pending_ms` (200 ms) of a pause has passed and ends the turn
after the fake detector's 300 ms of silence: a caller who says something and then 240 ms of silence
has a pending turn, not yet a confirmed one. The session's clock is a `FakeClock` the test moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import pytest
from pydantic import StringConstraints

from agents.config import AgentConfig
from agents.conversation import session as session_module
from agents.conversation.listener import ListenerConfig
from agents.conversation.phrases import PhraseCache
from agents.conversation.record import CallRecord
from agents.conversation.session import CallSession
from agents.testing.fake_engines import FakeEngines, read_text, silence, speech
from agents.testing.scripted_llm import Reply, ScriptedToolCall
from agents.voice_agent import FALLBACK_TONE, VoiceAgent
from tests.support.clock import FakeClock
from tests.support.memory_port import MemoryPort
from tests.support.waiting import until
from tools import Tool, ToolArguments, ToolContext, ToolExecutor

REST_OF_SILENCE_S = (300 - ListenerConfig().pending_ms) / 1000
"""The fake detector's end-of-turn silence (300 ms) left when the listener says `TurnPending`."""

GREETING = "Hello, how can I help?"
QUESTION = "What is the status of my order?"
MORE = "It is order A1001."
REPLY = "The order shipped yesterday."
FILLER = "One moment please."
DIGITS_GRACE_MS = AgentConfig(id="voice").digits_grace_ms


@dataclass
class Speculations:
    """A `CallObserver` that keeps what it is told about speculative replies (the pod's metrics)."""

    ended: list[bool] = field(default_factory=list)

    def turn_ended(self, metrics: object) -> None:
        return None

    def barged_in(self) -> None:
        return None

    def reply_resumed(self) -> None:
        return None

    def tool_called(self, name: str, ok: bool, error: str | None) -> None:
        return None

    def speculation_ended(self, used: bool) -> None:
        self.ended.append(used)


@dataclass
class Call:
    port: MemoryPort
    fakes: FakeEngines
    session: CallSession
    clock: FakeClock
    observed: Speculations
    task: asyncio.Task[None]

    @property
    def record(self) -> CallRecord:
        return self.session.record

    def speak(self, text: str, then_ms: int) -> None:
        """The caller says `text` (for a second), then is quiet for `then_ms` (240: a pending turn; 500: an
        ended one)."""
        self.port.push_audio(speech(text, 1000) + silence(then_ms))

    def quiet(self, ms: int) -> None:
        self.port.push_audio(silence(ms))

    def heard(self) -> list[str]:
        return read_text(b"".join(self.port.played))

    async def hang_up(self) -> None:
        self.port.hang_up_caller()
        await asyncio.wait_for(asyncio.shield(self.task), 5.0)


StartCall = Callable[..., Awaitable[Call]]


@pytest.fixture
async def start_call() -> AsyncIterator[StartCall]:
    calls: list[Call] = []

    async def start(*, tools: ToolExecutor | None = None, speculate: bool = True, **config: Any) -> Call:
        values: dict[str, Any] = {"greeting": GREETING, "silence_timeout_seconds": 120.0, "filler_phrases": [FILLER]}
        agent = AgentConfig(id="voice", **(values | config))
        fakes = FakeEngines()
        phrases = PhraseCache(fakes.tts)
        await VoiceAgent(agent, fakes.engines, phrases, fakes.listener).prepare()
        port, clock, observed = MemoryPort(), FakeClock(), Speculations()
        session = CallSession(
            port,
            agent,
            listener=fakes.listener(),
            chat=fakes.chat,
            speaker=fakes.speaker(port, phrases, clock),
            tools=tools,
            fallback_audio=FALLBACK_TONE,
            observer=observed,
            clock=clock,
            speculate=speculate,
        )
        call = Call(port, fakes, session, clock, observed, asyncio.create_task(session.run()))
        calls.append(call)
        await until(lambda: call.heard() == [GREETING], what="the greeting")
        clock.now = session.speaker.playing_until  # the caller has heard it
        return call

    yield start
    for call in calls:
        if not call.task.done():
            call.task.cancel()
        await asyncio.gather(call.task, return_exceptions=True)


def pending(call: Call, count: int = 1) -> Callable[[], bool]:
    return lambda: call.record.speculation_started >= count


def user_messages(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "user"]


# -- speculation -----------------------------------------------------------------------------


async def test_a_confirmed_pending_turn_plays_the_reply_prepared_in_the_pause(start_call: StartCall) -> None:
    call = await start_call()
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY))

    call.speak(QUESTION, then_ms=240)
    await until(lambda: REPLY in fakes.tts.texts, what="the reply's first piece synthesized during the pause")
    [request] = fakes.chat.requests
    assert request.outcome == "completed" and user_messages(request.messages) == [QUESTION]
    assert call.heard() == [GREETING]  # held: nothing played, no mark placed
    assert call.port.kinds().count("mark") == 1  # the greeting's
    assert call.record.turns == [] and [line.role for line in call.record.transcript] == ["agent", "caller"]

    call.clock.now += REST_OF_SILENCE_S
    call.quiet(260)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    assert call.heard() == [GREETING, REPLY]
    assert len(fakes.chat.requests) == 1  # the speculative request was the answer: no second one
    [turn] = call.record.turns
    assert turn.speculative and turn.early_transcript
    assert turn.endpoint_ms == 300  # the fake detector's end-of-turn silence
    # From the end of the caller's speech: the end-of-turn silence, and nothing after it (the clock
    # only moved with the silence, and the reply was ready when the turn was confirmed).
    assert turn.voice_to_voice_ms == 300.0 and turn.stt_ms == 0.0
    assert (call.record.speculation_started, call.record.speculation_used, call.record.speculation_wasted) == (1, 1, 0)
    assert call.observed.ended == [True]
    assert [(line.role, line.text) for line in call.record.transcript] == [
        ("agent", GREETING),
        ("caller", QUESTION),
        ("agent", REPLY),
    ]


@pytest.mark.parametrize("model", ["still thinking", "first piece synthesized"])
async def test_speech_after_the_pause_drops_the_speculative_reply(start_call: StartCall, model: str) -> None:
    call = await start_call()
    fakes = call.fakes
    dropped = "This answer came too early."
    if model == "still thinking":
        fakes.chat.push(Reply(text=dropped, delay_first_s=30.0))
    else:
        fakes.chat.push(Reply(text=dropped))
    fakes.chat.push(Reply(text=REPLY))

    call.speak(QUESTION, then_ms=240)
    await until(lambda: fakes.chat.requests, what="the speculative request")
    if model == "first piece synthesized":
        await until(lambda: dropped in fakes.tts.texts, what="the first piece synthesized")
    call.speak(MORE, then_ms=500)  # the caller goes on: the pause was not the end
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    first, second = fakes.chat.requests
    if model == "still thinking":
        assert first.outcome == "cancelled"  # the model request was dropped at once
    assert user_messages(second.messages) == [f"{QUESTION} {MORE}"]  # the caller's words, once, in full
    assert call.heard() == [GREETING, REPLY]  # nothing of the dropped reply
    assert [(line.role, line.text) for line in call.record.transcript] == [
        ("agent", GREETING),
        ("caller", f"{QUESTION} {MORE}"),
        ("agent", REPLY),
    ]
    assert [turn.turn for turn in call.record.turns] == [1]
    assert (call.record.speculation_started, call.record.speculation_used, call.record.speculation_wasted) == (2, 1, 1)
    assert call.observed.ended == [False, True]


async def test_words_said_before_a_dropped_speculation_are_still_answered(start_call: StartCall) -> None:
    """The first utterance's turn is replaced before it could answer (the caller went on); the
    second pause speculates on both utterances and is dropped mid-request; the third answers all
    of the caller's words, each once."""
    call = await start_call()
    fakes = call.fakes
    fakes.stt.gate = asyncio.Event()  # transcription is slow: the first turn cannot answer yet
    fakes.chat.push(Reply(text="This answer came too early.", delay_first_s=30.0), Reply(text=REPLY))

    call.speak(QUESTION, then_ms=500)
    await until(lambda: fakes.stt.started == 1, what="the first utterance sent for transcription")
    call.speak(MORE, then_ms=240)
    await until(pending(call, 2), what="the second pause speculated on")
    fakes.stt.gate.set()
    await until(lambda: fakes.chat.requests, what="the speculative request, on both utterances")
    call.speak("Thanks.", then_ms=500)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    first, second = fakes.chat.requests
    assert user_messages(first.messages) == [f"{QUESTION} {MORE}"] and first.outcome == "cancelled"
    assert user_messages(second.messages) == [f"{QUESTION} {MORE} Thanks."]
    assert call.heard() == [GREETING, REPLY]
    assert call.record.speculation_wasted == 1


async def test_a_caller_who_hangs_up_in_the_pause_leaves_nothing_running(start_call: StartCall) -> None:
    call = await start_call()
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY, delay_first_s=30.0))

    call.speak(QUESTION, then_ms=240)
    await until(lambda: fakes.chat.requests, what="the speculative request")
    await call.hang_up()

    assert fakes.chat.requests[0].outcome == "cancelled"
    assert call.heard() == [GREETING] and call.record.turns == []
    assert (call.record.speculation_started, call.record.speculation_wasted) == (1, 1)
    assert [line.role for line in call.record.transcript] == ["agent"]


class OrderId(ToolArguments):
    order_id: str


async def test_no_tool_runs_before_the_turn_is_confirmed(start_call: StartCall) -> None:
    looked_up: list[str] = []

    async def lookup(args: OrderId, context: ToolContext) -> dict[str, str]:
        looked_up.append(args.order_id)
        return {"status": "shipped"}

    tools = ToolExecutor([Tool("get_order_status", "Look up an order.", OrderId, lookup)])
    call = await start_call(tools=tools)
    fakes = call.fakes
    fakes.chat.push(
        Reply(tool_calls=[ScriptedToolCall("get_order_status", '{"order_id": "A1"}')]),
        Reply(tool_calls=[ScriptedToolCall("get_order_status", '{"order_id": "A1001"}')]),
        Reply(text=REPLY),
    )

    call.speak(QUESTION, then_ms=240)
    await until(lambda: fakes.chat.requests and fakes.chat.requests[0].outcome, what="the speculative tool call")
    await asyncio.sleep(0.05)  # (a tool run now would be a bug)
    assert looked_up == []
    call.speak(MORE, then_ms=500)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    assert looked_up == ["A1001"]  # the dropped reply's call never ran
    assert call.heard() == [GREETING, REPLY]


async def test_a_number_read_out_in_the_pause_reaches_the_model_only_with_the_whole_turn(
    start_call: StartCall,
) -> None:
    """A caller reading out a card pauses between digit groups: a speculative request then would
    hand the model the first digits, too few to be recognised (and redacted) as a card."""
    call = await start_call()
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY))

    call.speak("My card number is 4539 1488 0343", then_ms=240)
    await until(lambda: fakes.stt.transcripts and call.record.speculation_started == 1, what="the pause transcribed")
    await asyncio.sleep(0.05)  # (a model request now would be the leak)
    assert fakes.chat.requests == []
    call.speak("6467", then_ms=500 + DIGITS_GRACE_MS)  # the rest: the speculation is dropped, nothing was asked
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    [request] = fakes.chat.requests
    assert user_messages(request.messages) == ["My card number is [card number 1]"]
    assert "4539" not in str(request.messages)
    assert call.heard() == [GREETING, REPLY]
    assert (call.record.speculation_started, call.record.speculation_used, call.record.speculation_wasted) == (2, 1, 1)


async def test_a_number_read_out_to_its_end_is_answered_once_the_turn_is_confirmed(start_call: StartCall) -> None:
    call = await start_call()
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY))

    call.speak("My order number is 7742 9160", then_ms=240)
    await until(lambda: call.record.speculation_started == 1, what="the pending turn")
    await asyncio.sleep(0.05)
    assert fakes.chat.requests == []
    call.clock.now += REST_OF_SILENCE_S
    call.quiet(260)  # the turn ends, and then the caller stays quiet for the digits' grace
    await until(lambda: call.record.speculation_used == 1, what="the turn confirmed")
    await asyncio.sleep(0.05)
    assert fakes.chat.requests == []  # the caller may still go on reading out the number
    call.quiet(DIGITS_GRACE_MS)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    [request] = fakes.chat.requests
    assert user_messages(request.messages) == ["My order number is 7742 9160"]
    assert call.heard() == [GREETING, REPLY]
    assert (call.record.speculation_used, call.record.speculation_wasted) == (1, 0)


class OrderNumber(ToolArguments):
    order_number: Annotated[str, StringConstraints(pattern=r"^\d{8}$")]


async def _no_lookup(args: OrderNumber, context: ToolContext) -> dict[str, str]:
    raise AssertionError("no tool is called in this call")


@pytest.mark.parametrize("known_from", ["config", "tool"])
async def test_a_number_of_the_agents_known_length_needs_no_digits_grace(
    start_call: StartCall, monkeypatch: pytest.MonkeyPatch, known_from: str
) -> None:
    """`number_lengths`, or a tool argument `order_number` that takes exactly 8 digits: an order
    number read out to its length is finished, so the confirmed turn is answered at once instead of
    after `digits_grace_ms` more of the caller's silence (which never comes here: without the known
    length the wait would outlast the test)."""
    monkeypatch.setattr(session_module, "STALLED_AUDIO_S", 600.0)
    if known_from == "config":
        call = await start_call(number_lengths={"order number": 8})
    else:
        tool = Tool("get_order_status", "Look up an order.", OrderNumber, _no_lookup)
        call = await start_call(tools=ToolExecutor([tool]))
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY))

    call.speak("My order number is 7742 9160", then_ms=240)
    await until(lambda: call.record.speculation_started == 1, what="the pending turn")
    call.clock.now += REST_OF_SILENCE_S
    call.quiet(260)  # the turn ends; no more audio comes
    await until(lambda: call.record.turns, what="the answer, with no grace waited for")
    await call.hang_up()

    [request] = fakes.chat.requests
    assert user_messages(request.messages) == ["My order number is 7742 9160"]
    assert call.heard() == [GREETING, REPLY]
    assert (call.record.speculation_used, call.record.speculation_wasted) == (1, 0)


@pytest.mark.parametrize("speculate", [True, False])
async def test_a_card_read_out_over_two_turns_reaches_the_model_whole_and_redacted(
    start_call: StartCall, speculate: bool
) -> None:
    """The caller pauses longer than the end-of-turn silence between the card's groups: the turn
    on the first group waits for more digits, and the second group's turn answers both at once."""
    call = await start_call(speculate=speculate)
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY))

    call.speak("My card number is 4539 1488", then_ms=500)  # a whole turn by the end-of-turn rule
    await until(lambda: len(fakes.stt.transcripts) >= 1, what="the first group transcribed")
    await asyncio.sleep(0.05)
    assert fakes.chat.requests == []
    call.speak("0343 6467", then_ms=500 + DIGITS_GRACE_MS)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    [request] = fakes.chat.requests
    assert user_messages(request.messages) == ["My card number is [card number 1]"]
    assert call.heard() == [GREETING, REPLY]
    assert [(line.role, line.text) for line in call.record.transcript] == [
        ("agent", GREETING),
        ("caller", "My card number is [card number 1]"),
        ("agent", REPLY),
    ]


async def test_a_stalled_stream_does_not_hold_a_number_turn_for_ever(
    start_call: StartCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "STALLED_AUDIO_S", 0.2)
    call = await start_call(speculate=False)
    call.fakes.chat.push(Reply(text=REPLY))

    call.speak("My order number is 7742 9160", then_ms=500)  # and then no more audio comes
    await until(lambda: call.record.turns, what="the answer, once the wait gave up")
    await call.hang_up()
    assert call.heard() == [GREETING, REPLY]


async def test_no_wait_for_digits_when_the_grace_is_off(start_call: StartCall) -> None:
    call = await start_call(speculate=False, digits_grace_ms=0)
    call.fakes.chat.push(Reply(text=REPLY))

    call.speak("My order number is 7742 9160", then_ms=500)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()
    assert call.heard() == [GREETING, REPLY]


async def test_no_speculation_while_the_agent_is_speaking(start_call: StartCall) -> None:
    call = await start_call()
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY))
    call.session.speaker.playing_until = call.clock.now + 60  # the agent is still talking

    call.speak(QUESTION, then_ms=240)
    await until(lambda: call.session.listener.early_started == 1, what="the pause's early transcription")
    assert call.record.speculation_started == 0 and fakes.chat.requests == []
    await call.hang_up()


async def test_speculation_can_be_switched_off(start_call: StartCall) -> None:
    call = await start_call(speculate=False)
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY))

    call.speak(QUESTION, then_ms=240)
    await until(lambda: call.session.listener.early_started == 1, what="the pause's early transcription")
    assert fakes.chat.requests == []
    call.quiet(260)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    assert call.heard() == [GREETING, REPLY]
    assert not call.record.turns[0].speculative and call.record.speculation_started == 0


# -- a slow first token ------------------------------------------------------------------------


async def test_a_slow_first_token_plays_one_filler(start_call: StartCall) -> None:
    call = await start_call(slow_first_token_ms=200)
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY, delay_first_s=1.5))

    call.speak(QUESTION, then_ms=500)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    assert call.heard() == [GREETING, FILLER, REPLY]
    [turn] = call.record.turns
    assert turn.slow_token_filler and turn.voice_to_voice_ms is not None
    assert [line.text for line in call.record.transcript if line.role == "agent"] == [GREETING, REPLY]


async def test_a_fast_first_token_plays_no_filler(start_call: StartCall) -> None:
    call = await start_call(slow_first_token_ms=2000)
    fakes = call.fakes
    fakes.chat.push(Reply(text="Sure. " + REPLY, chunk_chars=4, delay_between_s=0.05))

    call.speak(QUESTION, then_ms=500)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    assert call.heard() == [GREETING, "Sure.", REPLY]
    assert not call.record.turns[0].slow_token_filler


async def test_no_filler_once_the_answer_has_started(start_call: StartCall) -> None:
    """The first words came at once; the rest of the answer is slow: that silence is the answer's own."""
    call = await start_call(slow_first_token_ms=200)
    fakes = call.fakes
    fakes.chat.push(Reply(text="Let me see. " + REPLY, chunk_chars=12, delay_between_s=0.4))

    call.speak(QUESTION, then_ms=500)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    assert FILLER not in call.heard()
    assert not call.record.turns[0].slow_token_filler


async def test_the_filler_waits_for_a_speculative_reply_to_be_confirmed(start_call: StartCall) -> None:
    call = await start_call(slow_first_token_ms=200)
    fakes = call.fakes
    fakes.chat.push(Reply(text=REPLY, delay_first_s=30.0))

    call.speak(QUESTION, then_ms=240)
    await until(lambda: fakes.chat.requests, what="the speculative request")
    await asyncio.sleep(0.5)  # well past the bound since the request: still nothing may play
    assert call.heard() == [GREETING]
    call.quiet(260)
    await until(lambda: FILLER in call.heard(), what="the filler, counted from the confirmation")
    await call.hang_up()

    assert call.heard() == [GREETING, FILLER]


async def test_after_a_slow_first_token_the_tool_fillers_go_on_from_the_next_phrase(start_call: StartCall) -> None:
    answered = asyncio.Event()

    async def lookup(args: OrderId, context: ToolContext) -> dict[str, str]:
        await answered.wait()  # a slow backend: the test says when it answers
        return {"status": "shipped"}

    tools = ToolExecutor([Tool("get_order_status", "Look up an order.", OrderId, lookup, timeout_s=10.0)])
    still = "Still checking."
    call = await start_call(
        tools=tools, slow_first_token_ms=200, max_tool_silence_ms=200, filler_phrases=[FILLER, still]
    )
    fakes = call.fakes
    lookup_call = ScriptedToolCall("get_order_status", '{"order_id": "A1001"}')
    fakes.chat.push(Reply(tool_calls=[lookup_call], delay_first_s=1.0), Reply(text=REPLY))

    call.speak(QUESTION, then_ms=500)
    await until(lambda: FILLER in call.heard(), what="the filler for the slow first token")
    call.clock.now = call.session.speaker.playing_until  # it has played; the tool still runs
    await until(lambda: still in call.heard(), what="the tool's filler")
    answered.set()
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    assert call.heard() == [GREETING, FILLER, still, REPLY]
    assert call.record.turns[0].slow_token_filler


async def test_a_runaway_transcript_answered_after_a_dropped_speculation_is_cut_and_counted_once(
    start_call: StartCall,
) -> None:
    """The dropped turn guarded the loop too; only the turn that answers it notes the cut."""
    call = await start_call()
    call.fakes.chat.push(Reply(text="This answer came too early.", delay_first_s=30.0), Reply(text=REPLY))
    call.speak("No no no no no no no no.", then_ms=240)
    await until(lambda: call.fakes.chat.requests, what="the speculative request")
    call.speak("Thanks.", then_ms=500)
    await until(lambda: call.record.turns, what="the answer")
    await call.hang_up()

    first, second = call.fakes.chat.requests
    assert first.outcome == "cancelled" and user_messages(second.messages) == ["No no no Thanks."]
    assert call.record.transcripts_cut == 1
    assert [line.text for line in call.record.transcript if line.role == "system"] == [
        "transcript cut (repetition): 9 -> 4 words"
    ]


# -- learned openers -------------------------------------------------------------------------


async def test_a_reply_that_opens_like_an_earlier_one_plays_its_opener_without_synthesis(
    start_call: StartCall,
) -> None:
    call = await start_call()
    fakes = call.fakes
    fakes.chat.push(Reply(text=f"Of course. {REPLY}"))
    fakes.chat.push(Reply(text="Of course. It arrives on Friday."))

    for turn in (1, 2):
        call.speak(QUESTION, then_ms=240)  # a held reply: its opener is asked for during the pause
        await until(lambda: fakes.chat.requests, what="the speculative request")
        call.clock.now += REST_OF_SILENCE_S
        call.quiet(260)
        await until(lambda turn=turn: len(call.record.turns) == turn, what="the answer")
        await until(lambda turn=turn: call.heard().count("Of course.") == turn, what="the opener played")
        call.clock.now = call.session.speaker.playing_until
    await call.hang_up()

    assert fakes.tts.texts.count("Of course.") == 1  # spoken once, then played from memory
    assert [turn.opener_cached for turn in call.record.turns] == [False, True]
    assert [turn.speculative for turn in call.record.turns] == [True, True]
    assert call.heard() == [GREETING, "Of course.", REPLY, "Of course.", "It arrives on Friday."]
