"""The simulator's line echo: the agent's audio back on the caller's track, delayed and attenuated."""

from __future__ import annotations

import numpy as np
import pytest

from telephony.audio.mulaw import mulaw_to_pcm16, pcm16_to_mulaw
from telephony.simulator.line_echo import EchoPath, LineEcho
from telephony.simulator.script import SILENCE_FRAME

FRAME = 160


def tone_frames(count: int, amplitude: float = 8000.0) -> list[bytes]:
    t = np.arange(count * FRAME) / 8000
    pcm = (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return [pcm16_to_mulaw(pcm[i * FRAME : (i + 1) * FRAME].tobytes()) for i in range(count)]


def run_line(path: EchoPath, played: list[bytes], caller: list[bytes] | None = None) -> np.ndarray:
    """Tick as the simulator does (send the caller's frame, then play one agent frame)."""
    echo = LineEcho(path)
    sent = []
    for i, frame in enumerate(played):
        sent.append(echo.mix(caller[i] if caller else SILENCE_FRAME))
        echo.played(frame)
    return np.frombuffer(mulaw_to_pcm16(b"".join(sent)), dtype=np.int16).astype(np.float64)


@pytest.mark.parametrize("delay_ms", [40, 120, 250])
def test_echo_comes_back_after_the_delay(delay_ms: int) -> None:
    played = tone_frames(10) + [b""] * 30
    sent = run_line(EchoPath(delay_ms=delay_ms, return_loss_db=6.0), played)
    first = int(np.argmax(np.abs(sent) > 100))
    assert first == pytest.approx(delay_ms * 8, abs=8)  # within a millisecond
    assert not np.any(np.abs(sent[: delay_ms * 8 - 8]) > 100)


@pytest.mark.parametrize("loss_db", [6.0, 12.0, 20.0])
def test_echo_is_attenuated_by_the_return_loss(loss_db: float) -> None:
    played = tone_frames(20) + [b""] * 20
    sent = run_line(EchoPath(delay_ms=40, return_loss_db=loss_db), played)
    reference = np.frombuffer(mulaw_to_pcm16(b"".join(played[:20])), dtype=np.int16).astype(np.float64)
    echoed = sent[40 * 8 : 40 * 8 + reference.size]
    measured = 20 * np.log10(np.sqrt(np.mean(reference**2)) / np.sqrt(np.mean(echoed**2)))
    assert measured == pytest.approx(loss_db, abs=0.5)


def test_echo_is_mixed_with_the_callers_own_audio() -> None:
    caller = tone_frames(30, amplitude=4000.0)
    played = tone_frames(30)
    with_echo = run_line(EchoPath(delay_ms=40, return_loss_db=12.0), played, caller)
    alone = np.frombuffer(mulaw_to_pcm16(b"".join(caller)), dtype=np.int16).astype(np.float64)
    assert np.array_equal(with_echo[: 40 * 8 - 8], alone[: 40 * 8 - 8])  # nothing played back yet
    assert not np.allclose(with_echo[40 * 8 :], alone[40 * 8 :], atol=200)


def test_no_agent_audio_leaves_the_callers_frames_untouched() -> None:
    caller = tone_frames(10, amplitude=3000.0)
    echo = LineEcho(EchoPath())
    for frame in caller:
        assert echo.mix(frame) == frame
        echo.played(b"")


@pytest.mark.parametrize(("delay_ms", "loss_db"), [(-1, 6.0), (5000, 6.0), (120, -3.0), (120, 200.0)])
def test_bad_echo_paths_are_refused(delay_ms: int, loss_db: float) -> None:
    with pytest.raises(ValueError, match="echo"):
        EchoPath(delay_ms=delay_ms, return_loss_db=loss_db)
