"""The built-in echo agent against an in-memory port."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agents.echo import EchoAgent, EchoTuning, beep, rms
from agents.port import AudioIn, DtmfIn, MarkHeard
from tests.support.memory_port import MemoryPort

RATE = 16000
FRAME = RATE // 50  # samples in 20 ms
FAST = EchoTuning(end_of_utterance_ms=200, reply_pause_ms=0, min_utterance_ms=100)


def frames(seconds: float, loud: bool) -> list[AudioIn]:
    count = round(seconds / 0.02)
    t = np.arange(FRAME) / RATE
    pcm = (np.sin(2 * np.pi * 300 * t) * (6000 if loud else 50)).astype(np.int16).tobytes()
    return [AudioIn(pcm, i * 20) for i in range(count)]


async def run_agent(agent: EchoAgent, port: MemoryPort) -> asyncio.Task[None]:
    task = asyncio.create_task(agent.run(port))
    await asyncio.sleep(0)
    return task


async def settle(port: MemoryPort, kinds: list[str], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while port.kinds()[: len(kinds)] != kinds:
            await asyncio.sleep(0.01)


def test_beep_and_rms() -> None:
    tone = beep(RATE)
    assert len(tone) / 2 / RATE == pytest.approx(0.4, abs=0.01)
    assert rms(tone) > 1000
    assert rms(b"\x00\x00" * 100) == 0.0
    assert rms(b"") == 0.0


async def test_greets_then_echoes_an_utterance() -> None:
    port = MemoryPort()
    task = await run_agent(EchoAgent(tuning=FAST), port)
    for event in frames(0.5, loud=True) + frames(0.3, loud=False):
        port.push(event)
    await settle(port, ["play", "mark", "play", "mark"])
    greeting, reply = port.actions[0][1], port.actions[2][1]
    assert greeting == pytest.approx(0.4, abs=0.01)
    assert reply == pytest.approx(0.5 + 0.1, abs=0.03)  # the speech plus 100 ms after it
    assert port.actions[3] == ("mark", "reply-1")
    port.hang_up_caller()
    await task


async def test_noise_burst_shorter_than_min_utterance_is_ignored() -> None:
    port = MemoryPort()
    task = await run_agent(EchoAgent(tuning=FAST), port)
    for event in frames(0.06, loud=True) + frames(0.4, loud=False):
        port.push(event)
    await asyncio.sleep(0.1)
    port.hang_up_caller()
    await task
    assert port.kinds() == ["play", "mark"]  # only the greeting


async def test_utterance_buffer_is_bounded() -> None:
    port = MemoryPort()
    tuning = EchoTuning(end_of_utterance_ms=200, reply_pause_ms=0, max_utterance_ms=1000)
    task = await run_agent(EchoAgent(tuning=tuning), port)
    for event in frames(3.0, loud=True) + frames(0.3, loud=False):
        port.push(event)
    await settle(port, ["play", "mark", "play", "mark"])
    assert port.actions[2][1] == pytest.approx(1.0, abs=0.02)
    port.hang_up_caller()
    await task


async def test_caller_speech_during_reply_clears_it() -> None:
    port = MemoryPort(auto_heard=False)
    task = await run_agent(EchoAgent(tuning=FAST), port)
    port.push(MarkHeard("greeting"))  # the greeting finished; the reply will still be playing
    for event in frames(0.5, loud=True) + frames(0.3, loud=False):
        port.push(event)
    await settle(port, ["play", "mark", "play", "mark"])
    port.push(frames(0.02, loud=True)[0])
    await settle(port, ["play", "mark", "play", "mark", "clear"])
    port.hang_up_caller()
    await task


@pytest.mark.parametrize(
    ("digit", "action"), [("*", ("hang_up", "caller pressed *")), ("0", ("transfer", "+15550199"))]
)
async def test_keys_end_the_call(digit: str, action: tuple[str, str]) -> None:
    port = MemoryPort()
    task = await run_agent(EchoAgent(transfer_number="+15550199", tuning=FAST), port)
    port.push(DtmfIn(digit))
    await asyncio.wait_for(task, 2)
    assert port.actions[-1] == action


async def test_zero_without_transfer_number_does_nothing() -> None:
    port = MemoryPort()
    task = await run_agent(EchoAgent(tuning=FAST), port)
    port.push(DtmfIn("0"))
    await asyncio.sleep(0.05)
    port.hang_up_caller()
    await task
    assert "transfer" not in port.kinds()


async def test_hash_repeats_the_last_utterance() -> None:
    port = MemoryPort()
    task = await run_agent(EchoAgent(tuning=FAST), port)
    for event in frames(0.4, loud=True) + frames(0.3, loud=False):
        port.push(event)
    await settle(port, ["play", "mark", "play", "mark"])
    port.push(DtmfIn("#"))
    await settle(port, ["play", "mark", "play", "mark", "play", "mark"])
    assert port.actions[4][1] == port.actions[2][1]
    port.hang_up_caller()
    await task


async def test_hangs_up_at_max_call_duration() -> None:
    port = MemoryPort()
    await asyncio.wait_for(EchoAgent(tuning=EchoTuning(max_call_seconds=0.2)).run(port), 2)
    assert port.actions[-1] == ("hang_up", "max call duration")
