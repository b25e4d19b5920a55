"""Whole calls over real sockets: uvicorn on loopback, the Twilio simulator as the carrier."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from starlette.applications import Starlette

from agents.port import AgentCatalog, CallPort, MarkHeard
from telephony.app import create_app
from telephony.audio.mulaw import mulaw_to_pcm16
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.simulator import CallReport, Listen, Pause, Press, Say, SimulatedCall, WaitForAgent, synthetic_utterance
from telephony.simulator.script import TICK_S
from tests.support.metrics import counter, streams_open
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN, TRANSFER_NUMBER, make_settings

UTTERANCE_S = 1.2


def place(server: str, *script: Say | Pause | Press | Listen | WaitForAgent, tail_s: float = 1.0) -> CallReport:
    call = SimulatedCall(server, AUTH_TOKEN, to=AGENT_NUMBER, script=list(script), tail_s=tail_s)
    return asyncio.run(call.run())


def wait_for_call_to_end(app: Starlette, timeout: float = 5.0) -> None:
    edge = app.state.pod
    for _ in range(int(timeout / 0.05)):
        if edge.calls.active == 0 and streams_open(edge.metrics) == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"call still active: {edge.calls.active} calls, {streams_open(edge.metrics):g} streams")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Peak normalised cross-correlation of two signals (1.0 = same waveform)."""
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    full = np.correlate(a, b, mode="full")
    return float(np.max(np.abs(full)) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_inbound_call_end_to_end(server: str, app: Starlette) -> None:
    """Greeting, an utterance echoed back, marks in order, recording of the expected length,
    and `stop` ending the session cleanly on the server."""
    utterance = synthetic_utterance(UTTERANCE_S)
    report = place(server, Pause(0.5), Say(utterance, "hello"), Pause(2.5))

    assert report.webhook_status == 200
    assert report.outcome == "caller hung up"
    assert report.marks_echoed == ["greeting", "reply-1"]
    # Recording: one 8 kHz sample per sample of the call, caller and agent aligned.
    expected_s = 1.0 + 0.5 + UTTERANCE_S + 2.5 + 1.0  # lead-in, pause, utterance, pause, tail
    assert report.recording_seconds == pytest.approx(expected_s, abs=TICK_S)
    assert len(report.caller_mulaw) == len(report.agent_mulaw)
    # The agent spoke twice: the 0.4 s greeting, then the utterance (plus 0.1 s kept after it).
    assert len(report.agent_spans) == 2
    greeting, reply = (end - start for start, end in report.agent_spans)
    assert greeting == pytest.approx(0.4, abs=0.05)
    assert reply == pytest.approx(UTTERANCE_S + 0.1, abs=0.1)
    # What came back is the caller's voice: the audio survived mu-law, 8k->16k, 16k->8k, mu-law.
    start = report.agent_spans[1][0]
    first = int((start - report.stream_started_at) / TICK_S) * 160  # type: ignore[operator]
    played = report.agent_pcm()[first : first + int(UTTERANCE_S * 8000)]
    caller = np.frombuffer(mulaw_to_pcm16(utterance), dtype=np.int16)
    assert correlation(played, caller) > 0.9
    # One turn, answered after the echo agent's 600 ms end-of-utterance and 300 ms pause.
    [latency] = report.turn_latencies()
    assert 0.85 <= latency < 1.5  # the agent cannot answer before its own 0.9 s (less a frame of jitter)
    wait_for_call_to_end(app)
    assert counter(app.state.pod.metrics, "switchboard_stream_messages_dropped_total") == 0


def test_pacing_keeps_agent_audio_within_the_lead(server: str, settings: Settings) -> None:
    report = place(server, Say(synthetic_utterance(3.0)), Pause(4.0))
    assert report.agent_audio_seconds > 3.0
    assert report.max_buffered_ms <= settings.playout_lead_ms + 20  # one frame in flight at most


def test_smaller_lead_is_honoured() -> None:
    settings = make_settings(playout_lead_ms=60)
    with BackgroundServer(create_app(settings), settings) as url:
        report = place(url, Say(synthetic_utterance(1.5)), Pause(3.0))
    assert report.agent_audio_seconds > 1.5
    assert report.max_buffered_ms <= 60 + 20


def test_caller_barge_in_clears_the_agent_within_one_frame(server: str) -> None:
    """The caller talks over the echo agent's reply: the agent asks for `clear`, and the
    simulator (as Twilio) stops playing at once."""
    report = place(
        server, Say(synthetic_utterance(3.0)), Pause(1.5), Say(synthetic_utterance(0.8), "interruption"), Pause(3.0)
    )
    assert len(report.clears) == 1
    reply_start = report.agent_spans[1][0]
    interruption_start = report.utterances[1][0]
    assert reply_start < interruption_start < report.clears[0]
    assert report.frames_played_after_clear == 0
    assert "reply-1" not in report.marks_echoed  # never heard, never reported as heard
    # The interrupted reply stopped, and the agent answered the interruption instead.
    assert report.agent_spans[1][1] <= report.clears[0] + 2 * TICK_S
    assert report.marks_echoed[-1] == "reply-2"


def test_dtmf_star_hangs_up_after_the_goodbye_plays(server: str) -> None:
    report = place(server, Pause(0.5), Press("*"), Pause(2.0))
    assert report.outcome == "agent hung up (caller pressed *)"
    assert report.twiml[-1].endswith("<Response><Hangup /></Response>")


def test_dtmf_zero_transfers_through_connect_action(server: str) -> None:
    report = place(server, Pause(0.5), Press("0"), Pause(2.0))
    assert report.outcome == f"transferred to {TRANSFER_NUMBER}"


class _ClearingAgent:
    """Plays 3 s, asks for `clear` after 0.5 s, and keeps what the port says about its marks."""

    def __init__(self) -> None:
        self.marks: list[MarkHeard] = []

    async def run(self, port: CallPort) -> None:
        rate = port.info.sample_rate
        await port.play(b"\x10\x10" * rate, rate)
        await port.mark("first second")
        await port.play(b"\x10\x10" * rate * 2, rate)
        await port.mark("last two seconds")
        await asyncio.sleep(1.5)
        await port.clear()
        async for event in port.events():
            if isinstance(event, MarkHeard):
                self.marks.append(event)
            if len(self.marks) == 2:
                break
        await port.hang_up("done")


def test_session_clear_reports_unheard_marks() -> None:
    agent = _ClearingAgent()
    settings = make_settings()
    app = create_app(settings, agents=AgentCatalog({"echo": agent}))
    with BackgroundServer(app, settings) as url:
        report = place(url, Pause(4.0))
    assert agent.marks == [MarkHeard("first second", heard=True), MarkHeard("last two seconds", heard=False)]
    assert report.marks_echoed == ["first second"]
    assert report.frames_played_after_clear == 0
    assert 1.4 <= report.agent_audio_seconds <= 1.7
    assert report.outcome == "agent hung up (done)"


class _BrokenAgent:
    async def run(self, port: CallPort) -> None:
        raise RuntimeError("boom")


def test_a_failing_session_ends_its_call_cleanly() -> None:
    settings = make_settings()
    app = create_app(settings, agents=AgentCatalog({"echo": _BrokenAgent()}))
    with BackgroundServer(app, settings) as url:
        report = place(url, Pause(1.0))
        assert report.outcome == "agent hung up (session error)"
        wait_for_call_to_end(app)
        again = place(url, Pause(0.2))
    assert again.webhook_status == 200


def test_a_listening_caller_waits_for_the_answer_before_going_on(server: str) -> None:
    """`Listen` holds the caller's script until the agent has answered and gone quiet: the key
    press after it comes only once the echo of the utterance has played, however long that took."""
    report = place(server, Say(synthetic_utterance(1.0)), Listen(max_seconds=20.0, quiet_seconds=0.5), Press("*"))
    pressed = next(e.at for e in report.events if e.who == "dtmf")
    said = report.utterances[0][1]
    echo_start, echo_end = next(span for span in report.agent_spans if span[0] > said)  # after the greeting
    assert said < echo_start < echo_end <= pressed - 0.5 + TICK_S
    assert "agent hung up" in report.outcome or report.outcome == "stream ended by server (caller pressed *)"


def test_a_caller_waiting_for_the_agent_acts_once_its_audio_has_played_that_long(server: str) -> None:
    """`WaitForAgent` holds the script until the agent's audio has been playing for its offset: the
    step after it talks (here: presses a key) over the agent."""
    report = place(server, WaitForAgent(after_seconds=0.3, max_seconds=20.0), Press("*"))
    pressed = next(e.at for e in report.events if e.who == "dtmf")
    greeting_start = report.agent_spans[0][0]
    assert greeting_start + 0.3 - TICK_S <= pressed
