"""`CallSession` on the fake engines and an in-memory port: every path of a call, with no model file.

The paths `tests/e2e/test_voice_call.py` walks with real Whisper and Kokoro, here in seconds. The
session's clock is a `FakeClock` the test moves: audio "plays" until the test says the caller has
heard it (`played_out`), and silence lasts as long as the test says it does.
"""

from __future__ import annotations

import asyncio
import builtins
import io
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.config import AgentConfig
from agents.conversation.phrases import PhraseCache
from agents.conversation.record import CallRecord, TurnMetrics
from agents.conversation.session import CallSession
from agents.engines.protocols import TranscriptionError
from agents.port import DtmfIn, EndRequested
from agents.testing.fake_engines import FakeEngines, FakeTextToSpeech, read_text, silence, speech
from agents.testing.scripted_llm import Fail, Reply, ScriptedToolCall, Step
from agents.voice_agent import FALLBACK_TONE, VoiceAgent
from tests.support.clock import FakeClock
from tests.support.memory_port import MemoryPort
from tests.support.waiting import until
from tools import InMemoryToolAudit, Tool, ToolArguments, ToolContext, ToolExecutor

GREETING = "Hello, how can I help?"
QUESTION = "What is the status of my order?"
REPLY = "The order shipped yesterday and will arrive on Friday."
TRANSFER_TO = "+15550199"

MODEL_SUFFIXES = (".onnx", ".bin", ".gguf", ".npz", ".pt", ".safetensors")
ENGINE_MODULES = {"onnxruntime", "faster_whisper", "ctranslate2", "llama_cpp", "kokoro_onnx"}
ENGINE_CLASSES = [("onnxruntime", "InferenceSession"), ("faster_whisper", "WhisperModel"), ("llama_cpp", "Llama")]


@pytest.fixture(autouse=True)
def no_model_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every test here runs without opening a model file or starting an inference engine."""
    refused: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def model_file(path: object) -> bool:
        if isinstance(path, str | bytes | os.PathLike) and os.fsdecode(path).endswith(MODEL_SUFFIXES):
            refused.append(os.fsdecode(path))
            return True
        return False

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if model_file(file):
            raise AssertionError(f"a model file was opened: {file}")
        return real_open(file, *args, **kwargs)

    def guarded_os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        if model_file(path):
            raise AssertionError(f"a model file was opened: {path}")
        return real_os_open(path, *args, **kwargs)

    def engine(*args: Any, **kwargs: Any) -> Any:
        refused.append("an inference engine")
        raise AssertionError("an inference engine was started")

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    for module, name in ENGINE_CLASSES:
        if module in sys.modules:  # loaded by another test of the run: any use now is refused
            monkeypatch.setattr(sys.modules[module], name, engine)
    loaded = set(sys.modules)
    yield refused
    assert refused == []
    assert not {m for m in set(sys.modules) - loaded if m.split(".")[0] in ENGINE_MODULES}


# -- a call on the fakes -------------------------------------------------------------------


def agent_config(**overrides: Any) -> AgentConfig:
    values: dict[str, Any] = {"id": "voice", "greeting": GREETING, "silence_timeout_seconds": 120.0}
    values.update(overrides)
    return AgentConfig(**values)


@dataclass
class Observed:
    """A `CallObserver` that keeps what it is told (the pod's metrics, in a list)."""

    turns: list[TurnMetrics] = field(default_factory=list)
    barge_ins: int = 0
    tool_calls: list[tuple[str, bool, str | None]] = field(default_factory=list)
    speculations: list[bool] = field(default_factory=list)

    def turn_ended(self, metrics: TurnMetrics) -> None:
        self.turns.append(metrics)

    def barged_in(self) -> None:
        self.barge_ins += 1

    def speculation_ended(self, used: bool) -> None:
        self.speculations.append(used)

    def tool_called(self, name: str, ok: bool, error: str | None) -> None:
        self.tool_calls.append((name, ok, error))


@dataclass
class Call:
    port: MemoryPort
    fakes: FakeEngines
    session: CallSession
    clock: FakeClock
    observed: Observed
    task: asyncio.Task[None]
    stored: list[CallRecord]

    @property
    def record(self) -> CallRecord:
        return self.session.record

    def say(self, text: str, ms: int = 600) -> None:
        """The caller says `text`, then is quiet long enough for the turn to end."""
        self.port.push_audio(speech(text, ms) + silence(500))

    def press(self, keys: str) -> None:
        for key in keys:
            self.port.push(DtmfIn(key))

    def heard(self, after: int = 0) -> list[str]:
        """The lines the caller heard, from the `after`-th audio played on."""
        return read_text(b"".join(self.port.played[after:]))

    def played_out(self) -> None:
        """Time passes until the caller has heard all the audio queued so far."""
        self.clock.now = max(self.clock.now, self.session.speaker.playing_until)

    async def ended(self) -> None:
        await asyncio.wait_for(asyncio.shield(self.task), 5.0)

    async def hang_up(self) -> None:
        self.port.hang_up_caller()
        await self.ended()


StartCall = Callable[..., Awaitable[Call]]


@pytest.fixture
async def start_call() -> AsyncIterator[StartCall]:
    """Starts calls, like `VoiceAgent.run` does, on fresh fakes; none outlives its test."""
    calls: list[Call] = []

    async def start(
        config: AgentConfig | None = None,
        *,
        fakes: FakeEngines | None = None,
        tools: ToolExecutor | None = None,
        auto_heard: bool = True,
        greeted: bool = True,
    ) -> Call:
        config = config or agent_config()
        fakes = fakes or FakeEngines()
        phrases = PhraseCache(fakes.tts)
        await VoiceAgent(config, fakes.engines, phrases, fakes.listener).prepare()  # the agent's fixed lines
        port = MemoryPort(auto_heard=auto_heard)
        clock = FakeClock()
        observed = Observed()
        stored: list[CallRecord] = []

        async def store(record: CallRecord) -> None:
            stored.append(record)

        session = CallSession(
            port,
            config,
            listener=fakes.listener(),
            chat=fakes.chat,
            speaker=fakes.speaker(port, phrases, clock),
            tools=tools,
            transfer_number=TRANSFER_TO,
            fallback_audio=FALLBACK_TONE,
            on_record=store,
            observer=observed,
            clock=clock,
        )
        call = Call(port, fakes, session, clock, observed, asyncio.create_task(session.run()), stored)
        calls.append(call)
        if greeted and config.greeting:
            await until(lambda: call.heard() == [config.greeting], what="the greeting")
            port.hear()
            call.played_out()
        return call

    yield start
    for call in calls:
        if not call.task.done():
            call.task.cancel()
        await asyncio.gather(call.task, return_exceptions=True)


def turns(call: Call, count: int) -> Callable[[], bool]:
    return lambda: len(call.record.turns) >= count


def transcript_texts(call: Call) -> list[str]:
    return [line.text for line in call.record.transcript]


# -- greeting and turns --------------------------------------------------------------------


async def test_the_greeting_then_two_turns_each_answered_from_the_whole_history(start_call: StartCall) -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=REPLY), Reply(text="You're welcome. Anything else?"))
    call = await start_call(fakes=fakes)

    call.say(QUESTION)
    await until(turns(call, 1), what="the first answer")
    call.played_out()
    call.say("Thank you.")
    await until(turns(call, 2), what="the second answer")
    await call.hang_up()

    first, second = fakes.chat.requests
    assert first.messages[0]["role"] == "system"
    assert first.messages[1:] == [{"role": "assistant", "content": GREETING}, {"role": "user", "content": QUESTION}]
    assert second.messages[-3:] == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": REPLY},
        {"role": "user", "content": "Thank you."},
    ]
    assert {t["function"]["name"] for t in first.tools} == {"end_call", "transfer_call"}
    assert call.heard() == [GREETING, REPLY, "You're welcome.", "Anything else?"]
    assert [(line.role, line.text) for line in call.record.transcript] == [
        ("agent", GREETING),
        ("caller", QUESTION),
        ("agent", REPLY),
        ("caller", "Thank you."),
        ("agent", "You're welcome. Anything else?"),
    ]
    turn = call.record.turns[0]
    assert turn.transcript_ms is not None and turn.llm_ttft_ms is not None
    assert turn.tts_first_audio_ms is not None and turn.voice_to_voice_ms is not None
    assert call.observed.turns == call.record.turns
    assert call.record.end_reason == "caller hung up"
    assert call.stored == [call.record] and call.record.ended_at is not None
    assert fakes.chat.steps_left == 0


@pytest.mark.parametrize("greeting", [GREETING, ""])
async def test_the_recording_consent_line_is_said_first(start_call: StartCall, greeting: str) -> None:
    consent = "This call is recorded."
    call = await start_call(agent_config(greeting=greeting, recording_consent=consent), greeted=False)
    said = [consent, greeting] if greeting else [consent]
    await until(lambda: call.heard() == said, what="the consent line, then the greeting")
    assert [(line.role, line.text) for line in call.record.transcript] == [("agent", line) for line in said]
    await call.hang_up()


async def test_speech_while_the_agent_thinks_drops_the_unsaid_answer(start_call: StartCall) -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text="This answer comes too late.", delay_first_s=30.0), Reply(text="Let me look."))
    call = await start_call(fakes=fakes)

    call.say(QUESTION)
    await until(lambda: fakes.chat.requests, what="the first request")
    call.say("It is order A1001.")
    await until(turns(call, 2), what="the second answer")
    await call.hang_up()

    first, second = fakes.chat.requests
    assert first.outcome == "cancelled"  # the caller went on: that answer was dropped unsaid
    assert second.messages[-2:] == [
        {"role": "user", "content": QUESTION},
        {"role": "user", "content": "It is order A1001."},
    ]
    assert "clear" not in call.port.kinds()  # nothing was playing: nothing to clear, no barge-in
    assert call.record.barge_ins == 0
    assert call.heard() == [GREETING, "Let me look."]


async def test_words_said_before_the_transcript_is_ready_are_answered_together(start_call: StartCall) -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text="Let me look."))
    call = await start_call(fakes=fakes)
    fakes.stt.gate = asyncio.Event()  # the engine is slow: the caller goes on before it answers

    call.say(QUESTION)
    call.say("It is order A1001.")
    await until(lambda: fakes.stt.started == 2, what="both utterances sent for transcription")
    fakes.stt.gate.set()
    await until(turns(call, 1), what="the answer")
    await call.hang_up()

    [request] = fakes.chat.requests
    assert request.messages[-1] == {"role": "user", "content": f"{QUESTION} It is order A1001."}
    assert call.heard() == [GREETING, "Let me look."]


async def test_two_utterances_ready_at_once_are_both_answered(start_call: StartCall) -> None:
    """A burst of audio after a network stall can end two utterances in one read: the first turn is
    replaced before it ever ran, and its words must still reach the model."""
    fakes = FakeEngines()
    fakes.chat.push(Reply(text="Let me look."))
    call = await start_call(fakes=fakes)

    call.port.push_audio(speech(QUESTION, 600) + silence(500) + speech("It is order A1001.", 600) + silence(500), 2000)
    await until(turns(call, 1), what="the answer")
    await call.hang_up()

    [request] = fakes.chat.requests
    assert request.messages[-1] == {"role": "user", "content": f"{QUESTION} It is order A1001."}


async def test_a_barge_in_clears_the_line_and_the_history_keeps_only_what_was_heard(start_call: StartCall) -> None:
    sentences = [
        "We have three plans for you to choose from today.",
        "The basic plan costs ten dollars a month and includes calls.",
        "The premium plan costs twenty dollars a month and adds messages.",
        "The business plan costs fifty dollars a month and adds everything else.",
    ]
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=" ".join(sentences)), Reply(text="Sure, go ahead."))
    call = await start_call(fakes=fakes, auto_heard=False)

    call.say(QUESTION)
    await until(lambda: len(call.port.pending_marks) == len(sentences), what="the reply queued")
    call.port.hear(2)  # the caller has heard two sentences; the others are still playing
    call.say("Wait, stop, I have a question.")
    await until(turns(call, 2), what="the answer to the interruption")
    await call.hang_up()

    kinds = call.port.kinds()
    clear = kinds.index("clear")
    assert call.heard(after=kinds[:clear].count("play")) == ["Sure, go ahead."]  # nothing more of the reply
    _, second = fakes.chat.requests
    assistant = [m["content"] for m in second.messages if m["role"] == "assistant"]
    assert assistant == [GREETING, " ".join(sentences[:2])]
    assert second.messages[-1] == {"role": "user", "content": "Wait, stop, I have a question."}
    assert call.record.barge_ins == 1 and call.observed.barge_ins == 1
    assert any(line.role == "system" and line.text.startswith("barge-in") for line in call.record.transcript)


# -- tools ---------------------------------------------------------------------------------


class OrderId(ToolArguments):
    order_id: str


def order_tool(release: asyncio.Event | None = None) -> Tool[OrderId]:
    async def lookup(args: OrderId, context: ToolContext) -> dict[str, str]:
        if release is not None:
            await release.wait()  # a slow backend: the test says when it answers
        return {"order_id": args.order_id, "status": "shipped", "caller": context.caller_number}

    return Tool("get_order_status", "Look up an order's status by id.", OrderId, lookup, timeout_s=10.0)


LOOKUP = ScriptedToolCall("get_order_status", '{"order_id": "A1001"}', id="call_lookup")


async def test_a_tool_step_runs_the_tool_and_the_model_answers_from_its_result(start_call: StartCall) -> None:
    audit = InMemoryToolAudit()
    fakes = FakeEngines()
    fakes.chat.push(Reply(tool_calls=[LOOKUP]), Reply(text="Order A1001 has shipped."))
    call = await start_call(fakes=fakes, tools=ToolExecutor([order_tool()], audit))

    call.say(QUESTION)
    await until(turns(call, 1), what="the answer")
    await call.hang_up()

    first, second = fakes.chat.requests
    assert [t["function"]["name"] for t in first.tools] == ["get_order_status", "end_call", "transfer_call"]
    assert all(t["function"]["strict"] is True for t in first.tools)
    assistant, tool = second.messages[-2:]
    assert assistant["tool_calls"][0]["function"] == {"name": "get_order_status", "arguments": LOOKUP.arguments}
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_lookup"
    assert json.loads(tool["content"]) == {"order_id": "A1001", "status": "shipped", "caller": "+15005550006"}
    [entry] = audit.entries
    assert (entry.call_sid, entry.name, entry.ok) == ("CA-test", "get_order_status", True)
    assert call.record.turns[0].tool_calls == 1
    assert call.observed.tool_calls == [("get_order_status", True, None)]
    assert call.heard()[-1] == "Order A1001 has shipped."


async def test_fillers_keep_the_line_alive_while_a_slow_tool_runs(start_call: StartCall) -> None:
    release = asyncio.Event()
    fakes = FakeEngines(tts=FakeTextToSpeech(ms_per_char=5.0))
    fakes.chat.push(Reply(tool_calls=[LOOKUP]), Reply(text="Order A1001 has shipped."))
    config = agent_config(max_tool_silence_ms=200, filler_phrases=["One moment please.", "Still checking."])
    call = await start_call(config, fakes=fakes, tools=ToolExecutor([order_tool(release)]))

    call.say(QUESTION)
    await until(lambda: "One moment please." in call.heard(), what="the first filler")
    call.played_out()  # the filler has played and the tool still runs: the line is quiet again
    await until(lambda: "Still checking." in call.heard(), what="the second filler")
    release.set()
    await until(turns(call, 1), what="the answer")
    await call.hang_up()

    assert call.heard() == [GREETING, "One moment please.", "Still checking.", "Order A1001 has shipped."]
    assert call.record.turns[0].voice_to_voice_ms is not None  # the filler was the first audio


async def test_a_tool_call_without_tools_is_answered_with_an_error_and_the_turn_goes_on(start_call: StartCall) -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(tool_calls=[LOOKUP]), Reply(text="I cannot look that up."))
    call = await start_call(agent_config(filler_phrases=["One moment."]), fakes=fakes)

    call.say(QUESTION)
    await until(turns(call, 1), what="the answer")
    await call.hang_up()

    tool = fakes.chat.requests[1].messages[-1]
    assert json.loads(tool["content"]) == {"error": "no tools are available on this call"}
    assert call.heard()[-1] == "I cannot look that up."


# -- the keypad and silence ----------------------------------------------------------------


async def test_dtmf_is_caller_input(start_call: StartCall) -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text="Thanks, I have your number."))
    call = await start_call(fakes=fakes)

    call.press("12345#")
    await until(turns(call, 1), what="the answer")
    await call.hang_up()

    [request] = fakes.chat.requests  # a keypad entry is a secret: the model sees its placeholder
    assert request.messages[-1] == {"role": "user", "content": "(The caller typed [keypad entry 1] on the keypad.)"}
    assert call.record.turns[0].source == "dtmf"
    assert "12345" not in json.dumps(transcript_texts(call))
    assert call.heard()[-1] == "Thanks, I have your number."


async def test_silence_reprompts_then_says_goodbye_and_hangs_up(start_call: StartCall) -> None:
    config = agent_config(silence_timeout_seconds=2.0, silence_reprompts=1)
    call = await start_call(config)

    call.clock.now += 2.5  # the caller says nothing
    await until(lambda: config.reprompt in call.heard(), what="the reprompt")
    call.played_out()
    call.clock.now += 2.5  # and still nothing
    await call.ended()

    assert call.heard() == [GREETING, config.reprompt, config.silence_goodbye]
    assert call.port.actions[-1] == ("hang_up", "caller silent")
    assert call.record.end_reason == "caller silent"


# -- the model ends or hands over the call -------------------------------------------------


@pytest.mark.parametrize(
    ("said", "heard"),
    [("Thanks for calling, goodbye.", "Thanks for calling, goodbye."), ("", "Thank you for calling. Goodbye.")],
    ids=["its-goodbye", "the-fixed-goodbye"],
)
async def test_the_model_ends_the_call_after_a_goodbye(start_call: StartCall, said: str, heard: str) -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=said, tool_calls=[ScriptedToolCall("end_call")]))
    call = await start_call(fakes=fakes)

    call.say("That is all, thanks.")
    await call.ended()

    assert " ".join(call.heard()[1:]) == heard
    assert call.port.actions[-1] == ("hang_up", "agent ended the call")
    assert call.record.end_reason == "agent ended the call"


async def test_the_model_transfers_the_caller_through_the_port(start_call: StartCall) -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text="I will transfer you to a person now.", tool_calls=[ScriptedToolCall("transfer_call")]))
    call = await start_call(fakes=fakes)

    call.say("I want to speak to a person.")
    await call.ended()

    [request] = fakes.chat.requests
    assert {t["function"]["name"] for t in request.tools} == {"end_call", "transfer_call"}
    assert call.heard()[-1] == "I will transfer you to a person now."  # what the model said was played first
    assert call.port.actions[-1] == ("transfer", TRANSFER_TO)
    assert call.record.end_reason == "transferred"
    assert ("system", f"transfer to {TRANSFER_TO}") in [(line.role, line.text) for line in call.record.transcript]


@pytest.mark.parametrize(
    ("action", "forbidden"),
    [("end_call", {"allow_hang_up": False}), ("transfer_call", {"allow_transfer": False})],
    ids=["hang-up-not-allowed", "transfer-not-allowed"],
)
async def test_a_control_action_the_agent_does_not_allow_is_refused_with_an_error_the_model_reads(
    start_call: StartCall, action: str, forbidden: dict[str, bool], caplog: pytest.LogCaptureFixture
) -> None:
    """Hidden from the tool list is not enough: a model that asks anyway (a prompt injection, a
    hallucinated call) gets a tool error back and the call goes on."""
    fakes = FakeEngines()
    fakes.chat.push(Reply(tool_calls=[ScriptedToolCall(action, id="call_x")]), Reply(text=REPLY))
    call = await start_call(agent_config(**forbidden), fakes=fakes)

    call.say("Hang up on me, or put me through to someone.")
    await until(turns(call, 1), what="the answer after the refused action")
    await call.hang_up()

    first, second = fakes.chat.requests
    assert action not in {t["function"]["name"] for t in first.tools}
    [result] = [m for m in second.messages if m.get("role") == "tool"]
    assert result["tool_call_id"] == "call_x" and "not allowed" in json.loads(result["content"])["error"]
    assert [a for a in call.port.actions if a[0] in ("hang_up", "transfer")] == []  # the caller hung up, not the agent
    assert call.heard()[-1] == REPLY and call.record.end_reason != "agent ended the call"
    assert any(r.getMessage() == "refused a call control action the agent does not allow" for r in caplog.records)


# -- failures and endings ------------------------------------------------------------------


async def test_an_unavailable_speech_service_asks_again_then_apologises_and_hangs_up(start_call: StartCall) -> None:
    fakes = FakeEngines()
    config = agent_config(max_speech_outages=2)
    call = await start_call(config, fakes=fakes)
    fakes.stt.unavailable = True

    for attempt in (1, 2):
        call.say(QUESTION)
        await until(lambda n=attempt: call.heard().count(config.say_again) == n, what=f"say-again {attempt}")
        call.played_out()
    call.say(QUESTION)
    await call.ended()

    assert call.heard() == [GREETING, config.say_again, config.say_again, config.apology]
    assert call.port.actions[-1] == ("hang_up", "speech service unavailable")
    assert call.record.end_reason == "speech service unavailable"
    assert fakes.chat.requests == []


async def test_after_a_speech_outage_the_next_turn_is_answered(start_call: StartCall) -> None:
    fakes = FakeEngines()
    fakes.chat.push(Reply(text=REPLY))
    config = agent_config()
    call = await start_call(config, fakes=fakes)

    fakes.tts.unavailable = True  # the reply cannot be spoken; the say-again line was rendered at start-up
    call.say(QUESTION)
    await until(lambda: config.say_again in call.heard(), what="the say-again line")
    call.played_out()
    fakes.tts.unavailable = False
    fakes.chat.push(Reply(text="The order shipped yesterday."))
    call.say(QUESTION)
    await until(lambda: "The order shipped yesterday." in call.heard(), what="the answer")
    await call.hang_up()

    assert call.heard() == [GREETING, config.say_again, "The order shipped yesterday."]
    assert call.record.end_reason == "caller hung up"


async def test_with_no_speech_at_all_the_fallback_tone_plays(start_call: StartCall) -> None:
    fakes = FakeEngines()
    fakes.tts.unavailable = True  # down from the start: not even the fixed lines could be rendered
    call = await start_call(fakes=fakes, greeted=False)

    await until(lambda: call.port.played, what="the fallback")
    await call.hang_up()

    assert call.port.played == [FALLBACK_TONE[0]]
    assert call.record.end_reason == "caller hung up"  # an outage does not end the call at once


TOO_LONG = "This sentence is far too long for the engine to accept."


def refuse_transcription(fakes: FakeEngines) -> None:
    fakes.stt.failures.append(TranscriptionError("the engine refused the audio"))


def refuse_long_text(fakes: FakeEngines) -> None:
    fakes.tts.max_text_chars = 20


@pytest.mark.parametrize(
    ("script", "break_it", "reason"),
    [
        pytest.param([Fail(503)], None, "model unavailable", id="model-down"),
        pytest.param([], refuse_transcription, "speech engine failed", id="stt-fails"),
        pytest.param([Reply(text=TOO_LONG)], refuse_long_text, "speech engine failed", id="tts-refuses"),
    ],
)
async def test_an_engine_failure_apologises_and_ends_the_call(
    start_call: StartCall, script: list[Step], break_it: Callable[[FakeEngines], None] | None, reason: str
) -> None:
    fakes = FakeEngines()
    fakes.chat.push(*script)
    config = agent_config()
    call = await start_call(config, fakes=fakes)
    if break_it is not None:
        break_it(fakes)

    call.say(QUESTION)
    await call.ended()

    assert call.heard()[-1] == config.apology
    assert call.port.actions[-1] == ("hang_up", reason)
    assert call.record.end_reason == reason
    assert fakes.chat.steps_left == 0


async def test_a_call_the_pod_sheds_hears_the_apology_and_ends(start_call: StartCall) -> None:
    config = agent_config()
    call = await start_call(config)

    call.port.push(EndRequested("memory"))
    await call.ended()

    assert call.heard() == [GREETING, config.apology]
    assert call.port.actions[-1] == ("hang_up", "ended by the pod (memory)")
    assert call.record.end_reason == "ended by the pod (memory)"


# -- the way users test their own agents ---------------------------------------------------


async def test_a_voice_agent_runs_a_call_on_the_fake_engines() -> None:
    fakes = FakeEngines(tts=FakeTextToSpeech(ms_per_char=0.5))  # on the real clock: the greeting lasts 11 ms
    fakes.chat.push(Reply(text=REPLY))
    agent = VoiceAgent(agent_config(), fakes.engines, PhraseCache(fakes.tts), fakes.listener)
    await agent.prepare()
    port = MemoryPort()
    task = asyncio.create_task(agent.run(port))

    await until(lambda: port.played, what="the greeting")
    await asyncio.sleep(0.05)  # it has played (real time only makes that surer)
    port.push_audio(speech(QUESTION) + silence(500))
    await until(lambda: len(port.played) > 1, what="the answer")
    port.hang_up_caller()
    await asyncio.wait_for(task, 5.0)

    assert read_text(b"".join(port.played)) == [GREETING, REPLY]
    [record] = agent.records
    assert [line.role for line in record.transcript] == ["agent", "caller", "agent"]


# -- personal data ---------------------------------------------------------------------------


class CardNumber(ToolArguments):
    card: str


async def test_a_spoken_card_number_reaches_the_tool_only(start_call: StartCall) -> None:
    charged: list[str] = []

    async def charge(args: CardNumber, context: ToolContext) -> dict[str, str]:
        charged.append(args.card)
        return {"charged": args.card}

    audit = InMemoryToolAudit()
    fakes = FakeEngines()
    payment = ScriptedToolCall("take_payment", '{"card": "[card number 1]"}', id="call_pay")
    fakes.chat.push(Reply(tool_calls=[payment]), Reply(text="Thank you, that is done."))
    tools = ToolExecutor([Tool("take_payment", "Charge a card.", CardNumber, charge)], audit)
    call = await start_call(fakes=fakes, tools=tools)

    call.say("My card number is 4111 1111 1111 1111.", ms=1500)
    await until(turns(call, 1), what="the answer")
    await call.hang_up()

    assert charged == ["4111111111111111"]
    first, second = fakes.chat.requests
    assert first.messages[-1] == {"role": "user", "content": "My card number is [card number 1]."}
    assert json.loads(second.messages[-1]["content"]) == {"charged": "[card number 1]"}
    assert audit.entries[0].arguments == payment.arguments
    stored = json.dumps(transcript_texts(call))
    assert "4111" not in stored and "[card number 1]" in stored


async def test_a_card_read_out_over_two_answered_turns_reaches_the_tool_whole_and_the_model_never(
    start_call: StartCall,
) -> None:
    """The caller pauses past the end of turn and the digits' grace in the middle of the card, and
    the agent answers the first half: each half is redacted, and the second placeholder holds the
    whole card, so the tool can still take it."""
    charged: list[str] = []

    async def charge(args: CardNumber, context: ToolContext) -> dict[str, str]:
        charged.append(args.card)
        return {"status": "approved"}

    fakes = FakeEngines()
    payment = ScriptedToolCall("take_payment", '{"card": "[card number 2]"}', id="call_pay")
    fakes.chat.push(Reply(text="Go on."), Reply(tool_calls=[payment]), Reply(text="Thank you, that is done."))
    tools = ToolExecutor([Tool("take_payment", "Charge a card.", CardNumber, charge)])
    call = await start_call(fakes=fakes, tools=tools)

    quiet_past_the_grace = silence(500 + call.session.config.digits_grace_ms + 300)
    call.port.push_audio(speech("My card number is 4539 1488.", 600) + quiet_past_the_grace)
    await until(turns(call, 1), what="the answer to the first half")
    call.port.push_audio(speech("0343 6467.", 600) + silence(500))
    await until(turns(call, 2), what="the payment")
    await call.hang_up()

    assert charged == ["4539148803436467"]
    said = [m["content"] for request in fakes.chat.requests for m in request.messages if m["role"] == "user"]
    assert sorted(set(said)) == ["My card number is [card number 1].", "[card number 2]."]
    sent = json.dumps([request.messages for request in fakes.chat.requests]) + json.dumps(transcript_texts(call))
    assert not any(part in sent for part in ("4539", "1488", "0343", "6467"))


async def test_a_keypad_entry_reaches_the_tool_as_digits_and_nothing_else_sees_them(start_call: StartCall) -> None:
    looked_up: list[str] = []

    async def lookup(args: OrderId, context: ToolContext) -> dict[str, str]:
        looked_up.append(args.order_id)
        return {"order_id": args.order_id, "status": "shipped"}

    fakes = FakeEngines()
    by_keypad = ScriptedToolCall("get_order_status", '{"order_id": "[keypad entry 1]"}', id="call_keyed")
    fakes.chat.push(Reply(tool_calls=[by_keypad]), Reply(text="It has shipped."))
    call = await start_call(fakes=fakes, tools=ToolExecutor([Tool("get_order_status", "Order.", OrderId, lookup)]))

    call.press("50004#")
    await until(turns(call, 1), what="the answer")
    await call.hang_up()

    assert looked_up == ["50004"]
    assert "50004" not in json.dumps([r.messages for r in fakes.chat.requests])
    assert json.loads(fakes.chat.requests[1].messages[-1]["content"]) == {
        "order_id": "[keypad entry 1]",
        "status": "shipped",
    }
    assert "50004" not in json.dumps(transcript_texts(call))
