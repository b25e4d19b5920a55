"""The echo guard: the agent's own voice back on the caller's track is not speech to the VAD,
while the caller talking over it still is. Real Silero, the real canceller, the simulator's line echo."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from agents.conversation.echo_guard import BLOCK, EchoGuard
from agents.engines.local.line_echo_canceller import LineEchoCanceller
from agents.engines.local.silero import SileroVoiceActivity
from agents.engines.protocols import SpeechStarted
from telephony.audio.mulaw import MULAW_FRAME_BYTES, mulaw_to_pcm16
from telephony.audio.resamplers import StreamResampler
from telephony.simulator.caller_audio import load_utterance
from telephony.simulator.line_echo import EchoPath, LineEcho
from telephony.simulator.script import SILENCE_FRAME
from tests.support.clock import FakeClock
from tests.support.speech import SPEECH_DIR, frames, load, silence

AGENT_LINES = ("order_status", "order_number", "speak_to_person", "next_appointment")
"""The agent's long answer (about 10 s of speech)."""
CALLER_AT_MS = 3000


@pytest.fixture(scope="module")
def vad() -> SileroVoiceActivity:
    return SileroVoiceActivity()


class FarSpy:
    """The real canceller, with every reference block it was given kept for the test to read."""

    def __init__(self) -> None:
        self.inner = LineEchoCanceller()
        self.far: list[np.ndarray] = []

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        self.far.append(far.copy())
        return self.inner.process(near, far)


def line_frames(path: EchoPath, caller: str | None) -> Iterator[bytes]:
    """The caller's track at 16 kHz, as the pod gets it, while the agent plays its long answer."""
    agent = b"".join(load_utterance(SPEECH_DIR / f"{name}.wav") for name in AGENT_LINES)
    ticks = len(agent) // MULAW_FRAME_BYTES + 100
    track = [SILENCE_FRAME] * ticks
    if caller is not None:
        said = load_utterance(SPEECH_DIR / f"{caller}.wav")
        first = CALLER_AT_MS // 20
        for i in range(0, len(said), MULAW_FRAME_BYTES):
            track[first + i // MULAW_FRAME_BYTES] = said[i : i + MULAW_FRAME_BYTES].ljust(MULAW_FRAME_BYTES, b"\xff")
    line, resampler = LineEcho(path), StreamResampler(8000, 16000)
    for tick in range(ticks):
        sent = line.mix(track[tick])  # the simulator's order: send, then play a frame
        line.played(agent[tick * MULAW_FRAME_BYTES : (tick + 1) * MULAW_FRAME_BYTES])
        yield resampler.process(mulaw_to_pcm16(sent))


def speech_starts(vad: SileroVoiceActivity, path: EchoPath, caller: str | None, guarded: bool) -> list[int]:
    """Where the VAD heard speech start on the caller's track, with or without the guard."""
    clock = FakeClock()
    guard = EchoGuard(LineEchoCanceller(), clock)
    guard.played(b"".join(load(name) for name in AGENT_LINES), 16000, clock())  # queued at once, plays now
    detector = vad.detector()
    starts = []
    for pcm in line_frames(path, caller):
        clock.now += 0.02
        heard = guard.process(pcm) if guarded else pcm
        starts += [event.at_ms for event in detector.feed(heard) if isinstance(event, SpeechStarted)]
    return starts


@pytest.mark.parametrize(("delay_ms", "loss_db"), [(40, 6.0), (120, 6.0), (250, 6.0), (120, 12.0), (250, 20.0)])
def test_echo_alone_is_not_heard_as_speech(vad: SileroVoiceActivity, delay_ms: int, loss_db: float) -> None:
    path = EchoPath(delay_ms, loss_db)
    assert speech_starts(vad, path, None, guarded=False), "the echo alone must trip the VAD without the guard"
    assert speech_starts(vad, path, None, guarded=True) == []


@pytest.mark.parametrize(("delay_ms", "loss_db"), [(40, 6.0), (120, 6.0), (250, 6.0)])
def test_caller_talking_over_the_echo_is_heard(vad: SileroVoiceActivity, delay_ms: int, loss_db: float) -> None:
    starts = speech_starts(vad, EchoPath(delay_ms, loss_db), "interrupt", guarded=True)
    assert starts, "a real interruption must still be heard"
    assert CALLER_AT_MS <= starts[0] <= CALLER_AT_MS + 600


def test_without_agent_audio_the_callers_frames_pass_untouched() -> None:
    guard = EchoGuard(LineEchoCanceller(), FakeClock())
    pcm = load("interrupt")
    assert b"".join(guard.process(frame) for frame in frames(pcm)) == pcm[: len(pcm) // (2 * BLOCK) * 2 * BLOCK]
    assert guard.frames_cancelled == 0


def test_odd_frame_sizes_come_out_in_order_and_whole_blocks() -> None:
    clock = FakeClock()
    guard = EchoGuard(LineEchoCanceller(), clock)
    pcm = load("interrupt")[: 16000 * 2]
    out = b""
    for frame in frames(pcm, size=2 * 250):  # 15.6 ms frames
        clock.now += 250 / 16000
        chunk = guard.process(frame)
        assert len(chunk) % (2 * BLOCK) == 0
        out += chunk
    assert out == pcm[: len(out)] and len(pcm) - len(out) < 2 * BLOCK


def test_the_reference_follows_the_play_out_timeline() -> None:
    clock, spy = FakeClock(), FarSpy()
    guard = EchoGuard(spy, clock)
    tone = (8000 * np.sin(np.arange(16000) / 5)).astype(np.int16).tobytes()  # 1 s
    guard.played(tone, 16000, clock() + 0.5)  # queued now, plays from 0.5 s on
    for frame in frames(silence(2000)):
        clock.now += 0.02
        guard.process(frame)
    far = np.concatenate(spy.far)
    playing = np.flatnonzero(far)
    assert playing[0] == pytest.approx(8000, abs=2) and playing[-1] == pytest.approx(24000, abs=2)


def test_a_clear_drops_the_audio_that_never_played() -> None:
    clock, spy = FakeClock(), FarSpy()
    guard = EchoGuard(spy, clock)
    guard.played((np.ones(48000, dtype=np.int16) * 3000).tobytes(), 16000, clock())  # 3 s queued
    for frame in frames(silence(1000)):
        clock.now += 0.02
        guard.process(frame)
    guard.cleared()  # barge-in after 1 s: the other 2 s never reached the caller
    for frame in frames(silence(1000)):
        clock.now += 0.02
        guard.process(frame)
    far = np.concatenate(spy.far)
    assert np.all(np.abs(far[800:15200] - 3000) <= 8)  # played: the first second (the band-limit rings at its edges)
    assert not np.any(far[16000:])  # cleared: never played


def test_reference_at_the_tts_rate_is_resampled() -> None:
    clock, spy = FakeClock(), FarSpy()
    guard = EchoGuard(spy, clock)
    guard.played((8000 * np.sin(np.arange(24000) / 7)).astype(np.int16).tobytes(), 24000, clock())  # 1 s at 24 kHz
    for frame in frames(silence(1500)):
        clock.now += 0.02
        guard.process(frame)
    playing = np.flatnonzero(np.abs(np.concatenate(spy.far)) > 100)
    assert playing[-1] == pytest.approx(16000, abs=40)


def test_the_reference_kept_is_bounded() -> None:
    clock = FakeClock()
    guard = EchoGuard(LineEchoCanceller(), clock, max_reference_seconds=2.0)
    for _ in range(10):
        guard.played(bytes(2 * 16000), 16000, clock())  # 10 s queued ahead, 1 s at a time
    assert guard.reference_seconds <= 2.0


@pytest.mark.parametrize("rate", [0, -16000])
def test_a_bad_sample_rate_is_refused(rate: int) -> None:
    guard = EchoGuard(LineEchoCanceller(), FakeClock())
    with pytest.raises(ValueError, match="sample_rate"):
        guard.played(bytes(640), rate, 0.0)


def test_a_bad_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_reference_seconds"):
        EchoGuard(LineEchoCanceller(), FakeClock(), max_reference_seconds=0)
