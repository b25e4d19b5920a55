"""Whole calls on a pod with remote speech engines: the pod holds only the VAD; Whisper and Kokoro
run in a real `switchboard speech` service on a loopback port, which the tests stop and start
again mid-call. The scripted (fake) OpenAI-compatible server plays the model."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from agents.config import AgentConfig
from agents.speech_service import SpeechService
from agents.testing.scripted_llm import Reply
from telephony.cli.speech import load_speech_service
from telephony.server import BackgroundServer
from telephony.simulator import CallReport, Pause, SimulatedCall
from tests.support.patient_caller import LAST_PAUSE_S, run_until_heard
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN, make_settings
from tests.support.voice_harness import VoicePod, utterance, voice_pod, words
from tests.support.waiting import until

REPLY = "The order shipped yesterday and will arrive on Friday."
SAY_AGAIN = words("Sorry, I didn't catch that. Could you say it again?")


class SpeechServer:
    """`switchboard speech`'s app on a fixed loopback port, stopped and started at will (the models
    stay loaded: a restart here is the service going away and coming back)."""

    def __init__(self, service: SpeechService) -> None:
        self.service = service
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._server: BackgroundServer | None = None

    def start(self) -> None:
        self._server = BackgroundServer(self.service.app(), make_settings(), port=self.port)  # type: ignore[arg-type]
        self._server.__enter__()

    def stop(self) -> None:
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None


@pytest.fixture(scope="module")
def speech() -> Iterator[SpeechServer]:
    service = load_speech_service(make_settings())
    server = SpeechServer(service)
    server.start()
    yield server
    server.stop()
    service.stt.close()
    service.tts.close()


@pytest.fixture(scope="module")
def pod(speech: SpeechServer) -> Iterator[VoicePod]:
    with voice_pod(
        stt_backend="remote",
        tts_backend="remote",
        speech_url=f"http://127.0.0.1:{speech.port}/v1",
        # Generous: these tests check what is heard when the service is *gone* (refused at once),
        # not its deadline (test_speech_client's job, with a scripted slow service). A short one
        # here turned a slow answer on a loaded machine into a say-again line.
        speech_timeout_seconds=30.0,
    ) as pod:
        yield pod


@pytest.fixture(autouse=True)
def running(speech: SpeechServer, pod: VoicePod) -> Iterator[None]:
    if speech._server is None:
        speech.start()
    with pod.scripted_call():
        yield


def config(**overrides: object) -> AgentConfig:
    values: dict[str, object] = {"id": "voice", "greeting": "Hello, how can I help?"}
    values.update(overrides)
    return AgentConfig(**values)  # type: ignore[arg-type]


def test_the_pod_loads_no_speech_model() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from telephony.voice import load_voice_stack; from tests.support.settings import make_settings;"
        "load_voice_stack(make_settings(stt_backend='remote', tts_backend='remote'));"
        "print(sorted(m for m in ('faster_whisper', 'ctranslate2', 'kokoro_onnx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_call_on_remote_engines_is_transcribed_and_answered(pod: VoicePod) -> None:
    agent = pod.use_agent(config())
    pod.llm.push(Reply(text=REPLY))
    report = place_until_heard(pod, [Pause(2.0), utterance("order_status"), Pause(LAST_PAUSE_S)], heard=2)
    [request] = pod.llm.requests
    assert words(request.messages[-1]["content"]) == words("What is the status of my order?")
    assert pod.agent_words(report, after_s=report.utterances[0][1]) == words(REPLY)
    pod.assert_nothing_running()
    [turn] = agent.records[-1].turns
    assert turn.early_transcript and turn.tts_first_audio_ms is not None


def place_until_heard(pod: VoicePod, script: list[object], heard: int, control: object = None) -> CallReport:
    """Place a call, run `control(call)` beside it (it stops and starts the speech service), and
    hang up once the caller has heard `heard` spoken parts (greeting included): the script's last
    pause is only a bound, so a slow answer on a loaded machine is still heard."""
    call = SimulatedCall(pod.url, AUTH_TOKEN, to=AGENT_NUMBER, script=script, tail_s=0.5)  # type: ignore[arg-type]

    async def both() -> CallReport:
        task = asyncio.create_task(run_until_heard(call, heard))
        if control is not None:
            await control(call)  # type: ignore[operator]
        return await task

    return asyncio.run(both())


def test_the_speech_service_restarting_while_the_caller_speaks(pod: VoicePod, speech: SpeechServer) -> None:
    """The service is away when the caller's turn is to be transcribed: the caller hears the
    say-again line (rendered at start-up, so it plays without the service), the call goes on, and
    once the service is back the caller's next turn is answered."""
    agent = pod.use_agent(config())
    pod.llm.push(Reply(text=REPLY))

    async def restart(call: SimulatedCall) -> None:
        await until(lambda: call.report.stream_started_at is not None, 60)
        await asyncio.to_thread(speech.stop)
        await until(lambda: len(call.report.marks_echoed) >= 2, 60)  # greeting, then the failed turn's say-again
        await asyncio.to_thread(speech.start)

    script = [Pause(1.5), utterance("order_status"), Pause(10.0), utterance("order_status"), Pause(LAST_PAUSE_S)]
    report = place_until_heard(pod, script, heard=3, control=restart)
    assert report.outcome == "caller hung up", report.render()
    first_end, second_start, second_end = report.utterances[0][1], report.utterances[1][0], report.utterances[1][1]
    assert pod.agent_words(report, after_s=first_end, until_s=second_start) == SAY_AGAIN
    assert pod.agent_words(report, after_s=second_end) == words(REPLY)
    [request] = pod.llm.requests  # the lost turn never reached the model; the next one did
    assert words(request.messages[-1]["content"]) == words("What is the status of my order?")
    pod.assert_nothing_running()
    record = agent.records[-1]
    assert record.end_reason == "caller hung up"
    assert [line.text for line in record.transcript if line.role == "agent"][1] == config().say_again


def test_the_speech_service_going_away_while_the_agent_answers(pod: VoicePod, speech: SpeechServer) -> None:
    """Transcribed, the model answers slowly, and the service is gone before the answer is spoken:
    the say-again line instead of the answer, then a normal turn once it is back."""
    pod.use_agent(config())
    # The answer trickles in, a chunk every 0.5 s (under the 2 s idle bound): its one sentence is
    # complete seconds after the request, so the service is surely stopped before it is spoken.
    pod.llm.push(Reply(text=REPLY, delay_between_s=0.5), Reply(text=REPLY))

    async def restart(call: SimulatedCall) -> None:
        await until(lambda: len(pod.llm.requests) >= 1, 60)  # transcribed: the model is thinking
        await asyncio.to_thread(speech.stop)
        await until(lambda: len(call.report.marks_echoed) >= 2, 60)  # greeting, then the say-again line
        await asyncio.to_thread(speech.start)

    script = [Pause(1.5), utterance("order_status"), Pause(15.0), utterance("order_status"), Pause(LAST_PAUSE_S)]
    report = place_until_heard(pod, script, heard=3, control=restart)
    assert report.outcome == "caller hung up", report.render()
    first_end, second_start, second_end = report.utterances[0][1], report.utterances[1][0], report.utterances[1][1]
    assert pod.agent_words(report, after_s=first_end, until_s=second_start) == SAY_AGAIN
    assert pod.agent_words(report, after_s=second_end) == words(REPLY), report.render()
    assert len(pod.llm.requests) == 2
    pod.assert_nothing_running()


def test_a_speech_service_that_stays_away_ends_the_call_with_the_apology(pod: VoicePod, speech: SpeechServer) -> None:
    agent = pod.use_agent(config(max_speech_outages=1))
    speech.stop()
    # The agent ends the call: the last pause is only a bound.
    script = [Pause(1.5), utterance("order_status"), Pause(7.0), utterance("order_status"), Pause(LAST_PAUSE_S)]
    report = pod.place(*script)
    speech.start()  # for the transcription of the recording
    assert report.outcome.startswith("agent hung up"), report.render()
    assert "technical trouble" in " ".join(pod.agent_words(report, after_s=report.utterances[1][1]))
    assert agent.records[-1].end_reason == "speech service unavailable"
    assert not pod.llm.requests
    pod.assert_nothing_running()
