"""A whole voice call on a line that returns the agent's own voice (a speakerphone): the echo of
its long answer, 6 dB down and 120 ms late, must not interrupt it, while the caller's real
interruption later still does. Real VAD, Whisper, Kokoro and echo canceller; the scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from agents.config import AgentConfig
from agents.testing.scripted_llm import Reply
from telephony.simulator import EchoPath, Pause, SimulatedCall, WaitForAgent
from tests.support.patient_caller import LAST_PAUSE_S, run_until
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN
from tests.support.voice_harness import VoicePod, speech_onset_s, utterance, voice_pod, words

LONG_ANSWER = [
    "We have three plans for you to choose from today.",
    "The basic plan costs ten dollars a month and includes calls.",
    "The premium plan costs twenty dollars a month and adds messages.",
    "The business plan costs fifty dollars a month and adds everything else.",
]
SPEAKERPHONE = EchoPath(delay_ms=120, return_loss_db=6.0)


@pytest.fixture(scope="module")
def pod() -> Iterator[VoicePod]:
    with voice_pod() as pod:
        yield pod


def test_the_agents_own_echo_does_not_interrupt_it_but_the_caller_does(pod: VoicePod) -> None:
    pod.use_agent(AgentConfig(id="voice", greeting="Hello, how can I help?"))
    pod.llm.push(Reply(text=" ".join(LONG_ANSWER)), Reply(text="Sure, go ahead."))
    interrupt = utterance("interrupt")
    # The answer (about 14 s of audio, all of it echoed back) plays for 2.5 s while the caller
    # waits, then the caller interrupts it and stays until the interruption has reached the model.
    script = [
        Pause(2.5),  # the greeting (echoed too) has played out
        utterance("order_status"),
        WaitForAgent(2.5, max_seconds=20.0),
        interrupt,
        Pause(LAST_PAUSE_S),
    ]
    call = SimulatedCall(pod.url, AUTH_TOKEN, to=AGENT_NUMBER, script=script, tail_s=0.5, echo=SPEAKERPHONE)
    report = asyncio.run(run_until(call, lambda: len(pod.llm.requests) >= 2))

    interrupted_at = report.utterances[1][0]
    assert [at for at in report.clears if at < interrupted_at] == [], report.render()  # no self-interruption
    onset = interrupted_at + speech_onset_s(interrupt)
    clears = [at for at in report.clears if at >= interrupted_at]
    assert clears, report.render()
    assert clears[0] - onset <= 0.400, report.render()
    # the words rule may end "Wait, stop." as a turn of its own: "I have a question." is then a third request
    first, second, *_ = pod.llm.requests
    assert "order" in words(first.messages[-1]["content"])  # the greeting's echo was not taken as words
    assert "hello" not in words(first.messages[-1]["content"])
    assert words(second.messages[-1]["content"])[:2] == ["wait", "stop"]
    [answer] = [span for span in report.agent_spans if span[0] < clears[0] <= span[1] + 0.1]
    assert answer[1] - answer[0] >= 1.5, report.render()  # it played on over its own echo until the caller spoke
