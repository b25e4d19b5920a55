"""Whole voice calls: the simulator speaks, real VAD + Whisper + Kokoro run in the real server, and
the scripted (fake) OpenAI-compatible server plays the model."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator

import pytest

from agents.config import AgentConfig
from agents.testing.scripted_llm import Fail, Hang, Reply, ScriptedToolCall
from db import AgentConfigs, BusinessData, CallRecords, QueryLog, SafeQuery, in_memory
from db.seed import seed_demo
from telephony.simulator import CallReport, Listen, Pause, Press, SimulatedCall, WaitForAgent
from tests.support.patient_caller import LAST_PAUSE_S, answered_then_quiet, place_until_heard, run_until
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN
from tests.support.voice_harness import VOICE_AGENT, VoicePod, speech_onset_s, utterance, voice_pod, words
from tools import Tool, ToolArguments, ToolExecutor, builtin_tools

REPLY = "The order shipped yesterday and will arrive on Friday."
ADA = "+15550101"
"""Ada Lovelace's phone (customer C-1001 in the demo data): caller ID identifies her."""
BARGE_IN_BOUND_S = 0.8
"""Onset of the interruption to the `clear`: inside its first words ("Wait, stop!"), with room for a loaded machine."""


@pytest.fixture(scope="module")
def pod() -> Iterator[VoicePod]:
    """One pod for the module (the models load once), on the in-memory database, shared with the
    tests across event loops: call records and stored agents go there."""
    database = in_memory()
    with voice_pod(database, serve_stored_agents=True) as pod:
        yield pod
    asyncio.run(database.close())


@pytest.fixture(autouse=True)
def fresh_script(pod: VoicePod) -> Iterator[None]:
    with pod.scripted_call():
        yield


def config(**overrides: object) -> AgentConfig:
    values: dict[str, object] = {"id": "voice", "greeting": "Hello, how can I help?"}
    values.update(overrides)
    return AgentConfig(**values)  # type: ignore[arg-type]


def test_caller_is_transcribed_and_the_reply_is_heard(pod: VoicePod) -> None:
    agent = pod.use_agent(config())
    pod.llm.push(Reply(text=REPLY))
    # The caller stays until it has heard the greeting and the reply, however long they take.
    report = place_until_heard(pod.url, [Pause(2.0), utterance("order_status"), Pause(LAST_PAUSE_S)], parts=2)

    [request] = pod.llm.requests
    assert words(request.messages[-1]["content"]) == words("What is the status of my order?")
    assert request.messages[0]["role"] == "system"
    assert request.messages[1] == {"role": "assistant", "content": "Hello, how can I help?"}
    # The caller heard the greeting, then the reply: Whisper on the recorded line gives the text back.
    caller_end = report.utterances[0][1]
    assert pod.agent_words(report, after_s=caller_end) == words(REPLY)
    assert words("hello how can I help") == pod.agent_words(report)[:5]
    # Per-turn metrics are kept with the call.
    pod.wait_idle()
    [record] = agent.records[-1:]
    [turn] = record.turns
    assert turn.transcript_ms is not None and turn.llm_ttft_ms is not None
    assert turn.tts_first_audio_ms is not None and turn.voice_to_voice_ms is not None
    assert [line.role for line in record.transcript][:3] == ["agent", "caller", "agent"]
    assert record.end_reason == "caller hung up"


class SlowLookup(ToolArguments):
    order_id: str


def slow_lookup_tool(seconds: float) -> Tool[SlowLookup]:
    async def lookup(args: SlowLookup, _context: object) -> dict[str, str]:
        await asyncio.sleep(seconds)  # a slow backend: the caller must not sit in silence meanwhile
        return {"order_id": args.order_id, "status": "shipped"}

    return Tool("get_order_status", "Look up an order's status by id.", SlowLookup, lookup, timeout_s=10.0)


def test_tool_call_mid_turn_fills_the_silence_and_answers_from_the_result(pod: VoicePod) -> None:
    bound_ms = 1000
    tools = ToolExecutor([slow_lookup_tool(3.5)])
    pod.use_agent(config(max_tool_silence_ms=bound_ms, filler_phrases=["One moment please.", "Still checking."]), tools)
    pod.llm.push(
        Reply(tool_calls=[ScriptedToolCall("get_order_status", '{"order_id": "A1001"}')]),
        Reply(text="Order A1001 has shipped."),
    )
    # The caller stays until the answer has been spoken (after the model's second request).
    script = [Pause(1.5), utterance("order_status"), Pause(LAST_PAUSE_S)]
    call = SimulatedCall(pod.url, AUTH_TOKEN, to=AGENT_NUMBER, script=script, tail_s=0.5)
    answered = answered_then_quiet(call, lambda: len(pod.llm.requests) == 2 and pod.llm.requests[1].outcome is not None)
    report = asyncio.run(run_until(call, answered))

    first, second = pod.llm.requests
    assert first.tools and first.tools[0]["function"]["name"] == "get_order_status"
    assert all(t["function"]["strict"] is True for t in first.tools or [])
    tool_message = second.messages[-1]
    assert tool_message["role"] == "tool"
    assert json.loads(tool_message["content"])["status"] == "shipped"
    # While the tool ran, the line was never silent for long: each gap is the 1 s bound plus at most
    # a second of a loaded machine's lag, where without fillers it would be the tool's 3.5 s and more.
    caller_end = report.utterances[0][1]
    spans = [span for span in report.agent_spans if span[0] > caller_end]
    gaps = [later[0] - earlier[1] for earlier, later in itertools.pairwise(spans)]
    assert gaps and max(gaps) <= bound_ms / 1000 + 1.0, report.render()
    heard = " ".join(pod.agent_words(report, after_s=caller_end))
    assert heard.startswith("one moment please")  # the filler came first
    assert "still checking" in heard  # the tool took 3.5 s: a second filler
    assert heard.endswith("has shipped")  # and the answer from the tool's result


def test_barge_in_clears_while_the_caller_speaks_and_history_keeps_only_what_was_heard(pod: VoicePod) -> None:
    sentences = [
        "We have three plans for you to choose from today.",
        "The basic plan costs ten dollars a month and includes calls.",
        "The premium plan costs twenty dollars a month and adds messages.",
        "The business plan costs fifty dollars a month and adds everything else.",
    ]
    pod.use_agent(config())
    pod.llm.push(Reply(text=" ".join(sentences)), Reply(text="Sure, go ahead."))
    interrupt = utterance("interrupt")
    barge_ins = pod.metric("switchboard_barge_ins_total")
    # The reply (about 14 s of audio) has been playing 2 s, inside its first sentence (~3.4 s), when the
    # caller interrupts (waiting on the agent, not the clock: a loaded machine may start the reply late).
    # `WaitForAgent` counts one unbroken stretch of agent audio: when TTS falls behind real time, each
    # sentence plays alone, and a wait of 4.5 s came 0.58 s before the reply's last one ended, too late
    # to clear anything. The caller stays until the interruption has reached the model.
    listen = WaitForAgent(after_seconds=2.0, max_seconds=30.0)
    # The caller lets the greeting finish first: on a loaded machine it may still be playing at 1.5 s,
    # and speaking over it is a barge-in of its own (the suite once counted 2).
    script = [Listen(quiet_seconds=0.5), utterance("order_status"), listen, interrupt, Pause(LAST_PAUSE_S)]
    call = SimulatedCall(pod.url, AUTH_TOKEN, to=AGENT_NUMBER, script=script, tail_s=0.5)
    report = asyncio.run(run_until(call, lambda: len(pod.llm.requests) >= 2))

    onset = report.utterances[1][0] + speech_onset_s(interrupt)
    clears = [at for at in report.clears if at >= report.utterances[1][0]]
    assert clears, report.render()
    # Cleared while the caller's first words are still being said; how fast (p50/p95 from the onset)
    # is a benchmark figure (benchmarks/backchannel.py, echo.py), not a timed test on a shared machine.
    assert clears[0] - onset <= BARGE_IN_BOUND_S, (clears[0] - onset, report.render())
    assert report.frames_played_after_clear == 0
    # The agent stopped: no reply audio between the clear and the end of the caller's interruption.
    assert not [s for s in report.agent_spans if clears[0] < s[0] < report.utterances[1][1]]
    # The next request's history holds only the sentences whose marks the caller reached.
    # The greeting is mark say-1; the reply's sentences are say-2, say-3, ... in order.
    # the words rule may end "Wait, stop." as a turn of its own: "I have a question." is then a third request
    _, second, *_ = pod.llm.requests
    played_before_clear = {e.what for e in report.events if e.who == "mark" and e.at <= clears[0]}
    heard = [s for i, s in enumerate(sentences) if f"say-{i + 2}" in played_before_clear]
    assert len(heard) < len(sentences)  # the caller cut it short
    assistant = [m["content"] for m in second.messages if m["role"] == "assistant"]
    if heard:
        assert assistant[-1] == " ".join(heard)
    else:
        assert assistant == ["Hello, how can I help?"]  # nothing of the reply was heard
    assert words(second.messages[-1]["content"])[:2] == ["wait", "stop"]
    assert pod.metric("switchboard_barge_ins_total") == barge_ins + 1  # the pod's metrics saw it


def test_dtmf_is_caller_input(pod: VoicePod) -> None:
    pod.use_agent(config())
    pod.llm.push(Reply(text="Thanks, I have your number."))
    pod.place(Pause(1.5), Press("12345#"), Pause(3.5))
    [request] = pod.llm.requests
    assert request.messages[-1]["content"] == "(The caller typed [keypad entry 1] on the keypad.)"  # a secret


def test_silence_reprompts_then_says_goodbye_and_hangs_up(pod: VoicePod) -> None:
    pod.use_agent(config(silence_timeout_seconds=2.0, silence_reprompts=1))
    report = pod.place(Pause(LAST_PAUSE_S), tail_s=0.5)  # until the agent hangs up
    assert report.outcome != "caller hung up", report.render()
    heard = " ".join(pod.agent_words(report))
    assert "still there" in heard
    assert "goodbye" in heard


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([Fail(500), Fail(503)], id="model-down"),
        pytest.param([Hang(5.0), Hang(5.0)], id="model-slow"),
    ],
)
def test_model_failure_apologises_and_ends_the_call(pod: VoicePod, steps: list[object]) -> None:
    agent = pod.use_agent(config())
    pod.llm.push(*steps)  # type: ignore[arg-type]
    report = pod.place(Pause(1.5), utterance("order_status"), Pause(LAST_PAUSE_S), tail_s=0.5)
    assert report.outcome != "caller hung up", report.render()
    caller_end = report.utterances[0][1]
    assert "technical trouble" in " ".join(pod.agent_words(report, after_s=caller_end))
    pod.assert_nothing_running()
    assert agent.records[-1].end_reason == "model unavailable"
    assert [r.outcome for r in pod.llm.requests] == (
        ["failed", "failed"] if steps[0] == Fail(500) else ["disconnected", "disconnected"]  # we gave up on both
    )


def test_speech_engine_failure_plays_the_fallback_and_ends_the_call(pod: VoicePod) -> None:
    agent = pod.use_agent(config())
    # A reply longer than the TTS engine accepts in one piece is refused by the engine itself.
    original = pod.stack.tts.max_text_chars
    agent.engines.tts.max_text_chars = 20  # type: ignore[attr-defined]
    try:
        pod.llm.push(Reply(text="This sentence is far too long for the engine to accept."))
        report = pod.place(Pause(1.5), utterance("order_status"), Pause(LAST_PAUSE_S), tail_s=0.5)
    finally:
        agent.engines.tts.max_text_chars = original  # type: ignore[attr-defined]
    assert report.outcome != "caller hung up", report.render()
    caller_end = report.utterances[0][1]
    assert "technical trouble" in " ".join(pod.agent_words(report, after_s=caller_end))
    pod.assert_nothing_running()
    assert agent.records[-1].end_reason == "speech engine failed"


def test_a_call_the_pod_sheds_hears_the_apology_and_ends(pod: VoicePod) -> None:
    """What the memory guard's last resort sounds like: the pod asks the newest call to end (as
    `LoadShedder` does at the hard threshold) and the agent apologises, then hangs up."""
    agent = pod.use_agent(config())
    call = SimulatedCall(pod.url, AUTH_TOKEN, to=AGENT_NUMBER, script=[Pause(LAST_PAUSE_S)], tail_s=0.5)

    async def place_and_shed() -> CallReport:
        task = asyncio.create_task(call.run())
        for _ in range(300):
            if call.report.marks_echoed:  # the greeting was heard
                break
            await asyncio.sleep(0.02)
        newest = pod.edge.calls.newest()
        assert newest is not None and newest[0] == call.call_sid and newest[1] is not None
        newest[1]("memory")
        return await task

    report = asyncio.run(place_and_shed())
    assert report.outcome.startswith("agent hung up"), report.render()
    assert "technical trouble" in " ".join(pod.agent_words(report, after_s=1.5))
    pod.assert_nothing_running()
    assert agent.records[-1].end_reason == "ended by the pod (memory)"


def test_the_model_transfers_the_caller_through_the_port(pod: VoicePod) -> None:
    agent = pod.use_agent(config())
    pod.llm.push(Reply(text="I will transfer you to a person now.", tool_calls=[ScriptedToolCall("transfer_call")]))
    report = pod.place(Pause(1.5), utterance("speak_to_person"), Pause(LAST_PAUSE_S), tail_s=0.5)  # until transferred
    assert report.outcome == f"transferred to {pod.settings.transfer_number}", report.render()
    *_, request = pod.llm.requests  # any before it: a speculative reply on the comma's pause, dropped by "please"
    assert {t["function"]["name"] for t in request.tools or []} == {"end_call", "transfer_call"}
    caller_end = report.utterances[0][1]
    assert "transfer" in pod.agent_words(report, after_s=caller_end)  # what the model said was played first
    pod.wait_idle()
    assert agent.records[-1].end_reason == "transferred"


def test_the_model_ends_the_call_after_its_goodbye(pod: VoicePod) -> None:
    pod.use_agent(config())
    pod.llm.push(Reply(text="Thanks for calling, goodbye.", tool_calls=[ScriptedToolCall("end_call")]))
    report = pod.place(Pause(1.5), utterance("order_status"), Pause(LAST_PAUSE_S), tail_s=0.5)  # until it hangs up
    assert report.outcome.startswith("agent hung up"), report.render()
    assert "goodbye" in pod.agent_words(report, after_s=report.utterances[0][1])


def test_the_call_is_wrapped_up_at_its_maximum_duration(pod: VoicePod) -> None:
    agent = pod.use_agent(config(max_call_seconds=10.0, silence_timeout_seconds=60.0))
    report = pod.place(Pause(LAST_PAUSE_S), tail_s=0.5)  # until the agent wraps up
    assert report.outcome.startswith("agent hung up"), report.render()
    assert "time limit" in " ".join(pod.agent_words(report))
    pod.wait_idle()
    assert agent.records[-1].end_reason == "max call duration"


INCIDENT_ARGUMENTS = [  # `{}` now reads only the caller's own orders (bounded): the unsafe relatives remain
    '{"customer_id": "C-1002"}',
    '{"status": {"$ne": null}}',
    '{"customer_id": {"$ne": null}}',
    '{"$where": "this.total > 0"}',
    '{"name": {"$regex": ".*"}}',
    '{"customer_id": "' + "A" * 10_000_000 + '"}',
    '{"customer_id": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"customer_id": 1001, "limit": "all"}',
    '{"customer_id": "C-1001", "limit": ',
]


@pytest.mark.mongodb
def test_the_incident_in_a_call_is_refused_and_the_call_goes_on(pod: VoicePod) -> None:
    """The incident end to end: the model's unsafe order searches reach the tools layer through a
    real call, each comes back to the model as an error, no query without a selective field (or
    without limit, projection and max_time_ms) reaches the database, and the call carries on."""
    database = in_memory()
    asyncio.run(seed_demo(database))
    queries = QueryLog()
    tools = ToolExecutor(
        builtin_tools(BusinessData(SafeQuery(database, queries)), ["list_recent_orders"]), max_steps_per_turn=16
    )
    agent = pod.use_agent(config(max_tool_steps=3), tools, records=SafeQuery(database))  # Ada, by caller ID
    bad = [ScriptedToolCall("list_recent_orders", arguments) for arguments in INCIDENT_ARGUMENTS]
    pod.llm.push(
        Reply(tool_calls=bad, chunk_chars=65_536),
        Reply(tool_calls=[ScriptedToolCall("list_recent_orders", '{"limit": 2}')]),
        Reply(text="Your latest order has shipped."),
    )
    tool_calls_ok = pod.metric("switchboard_tool_calls_total", outcome="ok")
    turns = pod.metric("switchboard_turn_stage_seconds_count", stage="voice_to_voice")
    # The caller stays until the answer after the third model request has been spoken, however long
    # the three model steps and the speech take on a loaded machine.
    script = [Pause(1.5), utterance("order_status"), Pause(LAST_PAUSE_S)]
    call = SimulatedCall(pod.url, AUTH_TOKEN, to=AGENT_NUMBER, from_=ADA, script=script, tail_s=0.5)
    answered = answered_then_quiet(call, lambda: len(pod.llm.requests) == 3 and pod.llm.requests[2].outcome is not None)
    report = asyncio.run(run_until(call, answered))

    _, second, third = pod.llm.requests
    replies = [json.loads(m["content"]) for m in second.messages if m["role"] == "tool"]
    assert all("error" in reply for reply in replies), [r for r in replies if "error" not in r]
    errors = [reply["error"] for reply in replies]
    assert len(errors) == len(INCIDENT_ARGUMENTS)
    assert all("list_recent_orders" in error and len(error) < 700 for error in errors)
    [valid] = [m for m in third.messages if m["role"] == "tool"][len(INCIDENT_ARGUMENTS) :]
    assert len(json.loads(valid["content"])["orders"]) == 2
    issued = list(queries)
    assert issued and all(q.filter.get("customer_id") == "C-1001" for q in issued)  # the caller's, by caller ID
    assert all(q.limit and q.max_time_ms for q in issued)
    assert all(q.projection for q in issued if q.operation == "find")
    assert report.outcome == "caller hung up"  # the call went on to the end
    # Whisper tiny.en hears Kokoro's sentence-final "shipped" as "ship" on some runs: the stem is the word.
    assert any(word.startswith("ship") for word in pod.agent_words(report, after_s=report.utterances[0][1]))
    pod.wait_idle()
    assert agent.records[-1].turns[0].tool_calls == len(INCIDENT_ARGUMENTS) + 1
    # The pod's metrics saw the turn and every tool call, by outcome.
    assert pod.metric("switchboard_tool_calls_total", outcome="ok") == tool_calls_ok + 1
    assert pod.metric("switchboard_turn_stage_seconds_count", stage="voice_to_voice") == turns + 1


def test_an_agent_changed_in_the_database_answers_the_next_call_and_each_call_records_its_version(
    pod: VoicePod,
) -> None:
    """Operators change an agent through the admin API (stored as a new version) without a
    redeploy: the next call is answered by the new version, and each call's record says which.
    On the in-memory fake only (the pod's server thread and this test share it across event
    loops); `tests/telephony/test_stored_agents.py` runs the same logic against a real server."""
    database = pod.edge.database
    assert database is not None
    configs = AgentConfigs(database)
    try:
        asyncio.run(configs.create(VOICE_AGENT, {"greeting": "Hello from the first version."}))
        # The webhook builds the new version (Kokoro renders its fixed lines) before it answers:
        # seconds here, longer on a loaded machine, so this caller waits past Twilio's 15 s.
        first = pod.place(Pause(4.0), tail_s=0.5, webhook_timeout_s=120)
        asyncio.run(configs.update(VOICE_AGENT, {"greeting": "Hello from the second version."}))
        second = pod.place(Pause(4.0), tail_s=0.5, webhook_timeout_s=120)
        pod.wait_idle()
    finally:
        asyncio.run(configs.delete(VOICE_AGENT))
        # The pod forgets the stored agent at its next lookup: done now, so the next test's agent stays.
        asyncio.run(pod.edge.directory.resolve(agent_id=VOICE_AGENT))
    assert "first" in pod.agent_words(first), first.render()
    assert "second" in pod.agent_words(second), second.render()
    records = CallRecords(database)
    for report, version in ((first, 1), (second, 2)):
        record = asyncio.run(records.get(report.call_sid))
        assert record is not None and record["agent_version"] == version
