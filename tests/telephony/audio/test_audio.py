"""G.711 mu-law conversion and the stateful stream resampler."""

from __future__ import annotations

import numpy as np
import pytest

from telephony.audio.mulaw import MULAW_FRAME_BYTES, MULAW_SILENCE, mulaw_to_pcm16, pcm16_duration_ms, pcm16_to_mulaw
from telephony.audio.resamplers import StreamResampler


def _pcm(samples: np.ndarray) -> bytes:
    return np.asarray(samples, dtype="<i2").tobytes()


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int64)


def _sine(freq: float, rate: int, seconds: float, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


# -- mu-law ---------------------------------------------------------------------------------


def test_frame_constants() -> None:
    assert MULAW_FRAME_BYTES == 160  # 20 ms at 8 kHz, one byte per sample
    assert MULAW_SILENCE == b"\xff"
    assert mulaw_to_pcm16(MULAW_SILENCE * 4) == b"\x00" * 8


def test_mulaw_round_trip_error_is_within_g711_quantisation() -> None:
    """Every 16-bit value survives encode/decode to within G.711's logarithmic step (about 1/16 of
    the magnitude, plus a small constant near zero)."""
    original = np.arange(-32768, 32768, dtype=np.int16)
    encoded = pcm16_to_mulaw(_pcm(original))
    assert len(encoded) == original.size
    decoded = _samples(mulaw_to_pcm16(encoded))
    assert decoded.size == original.size
    error = np.abs(decoded - original.astype(np.int64))
    assert np.all(error <= np.abs(original.astype(np.int64)) / 16 + 8)
    # and the sign is preserved for anything clearly above the noise floor
    loud = np.abs(original) > 64
    assert np.all(np.sign(decoded[loud]) == np.sign(original[loud]))


def test_mulaw_round_trip_of_a_sine_keeps_high_snr() -> None:
    sine = _sine(440, 8000, 0.5)
    decoded = _samples(mulaw_to_pcm16(pcm16_to_mulaw(_pcm(sine))))
    noise = decoded - sine.astype(np.int64)
    snr_db = 10 * np.log10(np.sum(sine.astype(np.float64) ** 2) / np.sum(noise.astype(np.float64) ** 2))
    assert snr_db > 30  # G.711 gives ~38 dB for a loud tone


def test_mulaw_codes_are_stable_after_one_round_trip() -> None:
    """Decoding then re-encoding every mu-law code gives the same code (except the duplicate zero)."""
    codes = bytes(range(256))
    again = pcm16_to_mulaw(mulaw_to_pcm16(codes))
    for code, back in zip(codes, again, strict=True):
        if code == 0x7F:  # negative zero: encodes back as positive zero
            assert back == 0xFF
        else:
            assert back == code


def test_pcm16_to_mulaw_drops_an_odd_trailing_byte() -> None:
    pcm = _pcm(np.array([1000, -1000, 2000], dtype=np.int16))
    assert pcm16_to_mulaw(pcm + b"\x7f") == pcm16_to_mulaw(pcm)
    assert len(pcm16_to_mulaw(pcm + b"\x7f")) == 3
    assert pcm16_to_mulaw(b"\x01") == b""
    assert pcm16_to_mulaw(b"") == b""


def test_pcm16_duration_ms() -> None:
    assert pcm16_duration_ms(b"\x00" * 320, 8000) == pytest.approx(20.0)
    assert pcm16_duration_ms(b"\x00" * 640, 16000) == pytest.approx(20.0)
    assert pcm16_duration_ms(b"", 16000) == 0.0


# -- StreamResampler ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(8000, 16000), (24000, 8000), (16000, 8000)],
)
def test_resampler_output_length_after_flush(in_rate: int, out_rate: int) -> None:
    signal = _sine(440, in_rate, 0.6)
    resampler = StreamResampler(in_rate, out_rate)
    out = resampler.process(_pcm(signal)) + resampler.flush()
    assert len(out) % 2 == 0
    assert len(out) // 2 == signal.size * out_rate // in_rate


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(8000, 16000), (24000, 8000), (16000, 8000)],
)
def test_resampler_is_reusable_after_flush(in_rate: int, out_rate: int) -> None:
    """flush() starts afresh: a second utterance gets exactly its own length back, too."""
    resampler = StreamResampler(in_rate, out_rate)
    first = _sine(300, in_rate, 0.2)
    second = _sine(600, in_rate, 0.4)
    resampler.process(_pcm(first))
    resampler.flush()
    out = resampler.process(_pcm(second)) + resampler.flush()
    assert len(out) // 2 == second.size * out_rate // in_rate


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(8000, 16000), (24000, 8000), (16000, 8000)],
)
def test_resampler_is_chunk_size_invariant(in_rate: int, out_rate: int) -> None:
    signal = _pcm(_sine(1000, in_rate, 0.5))
    whole = StreamResampler(in_rate, out_rate)
    expected = _samples(whole.process(signal) + whole.flush())

    chunked = StreamResampler(in_rate, out_rate)
    step = in_rate * 20 // 1000 * 2  # 20 ms of PCM16
    pieces = [chunked.process(signal[i : i + step]) for i in range(0, len(signal), step)]
    got = _samples(b"".join(pieces) + chunked.flush())

    assert got.size == expected.size
    assert np.max(np.abs(got - expected)) <= 4


def test_resampler_handles_odd_byte_chunks() -> None:
    """A chunk boundary in the middle of a sample is carried over, not lost or misaligned."""
    signal = _pcm(_sine(500, 8000, 0.25))
    whole = StreamResampler(8000, 16000)
    expected = _samples(whole.process(signal) + whole.flush())

    odd = StreamResampler(8000, 16000)
    pieces = [odd.process(signal[i : i + 161]) for i in range(0, len(signal), 161)]
    got = _samples(b"".join(pieces) + odd.flush())

    assert got.size == expected.size
    assert np.max(np.abs(got - expected)) <= 4


def test_resampler_single_byte_chunk_yields_nothing_yet() -> None:
    resampler = StreamResampler(8000, 16000)
    assert resampler.process(b"\x01") == b""


def test_resampler_passthrough_when_rates_are_equal() -> None:
    signal = _pcm(_sine(1000, 16000, 0.1))
    resampler = StreamResampler(16000, 16000)
    assert resampler.process(signal) == signal
    assert resampler.flush() == b""
    # odd bytes are still realigned across chunks
    assert resampler.process(signal[:3]) == signal[:2]
    assert resampler.process(signal[3:6]) == signal[2:6]


def test_passthrough_reset_drops_a_held_odd_byte() -> None:
    resampler = StreamResampler(8000, 8000)
    assert resampler.process(b"\x01") == b""
    resampler.reset()
    assert resampler.process(b"\x02\x03") == b"\x02\x03"


def test_resampler_reset_drops_buffered_input() -> None:
    """After a barge-in reset, nothing of the earlier (loud) input leaks into later output."""
    resampler = StreamResampler(8000, 16000)
    loud = _pcm(np.full(4000, 20000, dtype=np.int16))
    resampler.process(loud)
    resampler.reset()
    silence = _pcm(np.zeros(800, dtype=np.int16))
    out = _samples(resampler.process(silence) + resampler.flush())
    assert out.size == 1600  # exactly the silent input, upsampled
    assert np.max(np.abs(out)) <= 2


def test_resampler_without_reset_would_leak_the_tail() -> None:
    """Control for the reset test: without reset, the held-back filter tail does come out."""
    resampler = StreamResampler(8000, 16000)
    resampler.process(_pcm(np.full(4000, 20000, dtype=np.int16)))
    out = _samples(resampler.process(_pcm(np.zeros(800, dtype=np.int16))) + resampler.flush())
    assert np.max(np.abs(out)) > 1000


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(8000, 16000), (24000, 8000), (16000, 8000)],
)
def test_resampled_sine_keeps_its_frequency(in_rate: int, out_rate: int) -> None:
    resampler = StreamResampler(in_rate, out_rate)
    out = _samples(resampler.process(_pcm(_sine(1000, in_rate, 1.0))) + resampler.flush()).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    freqs = np.fft.rfftfreq(out.size, d=1 / out_rate)
    assert freqs[np.argmax(spectrum)] == pytest.approx(1000, abs=2)
    # and the amplitude survives (no gross attenuation in the pass band)
    assert np.max(np.abs(out[out.size // 4 : 3 * out.size // 4])) == pytest.approx(10000, rel=0.05)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(0, 8000), (8000, 0), (-8000, 16000), (16000, -1)])
def test_invalid_rates_raise(in_rate: int, out_rate: int) -> None:
    with pytest.raises(ValueError, match="sample rates must be positive"):
        StreamResampler(in_rate, out_rate)


# -- method choice ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "method"), [(8000, 16000, "fir"), (24000, 8000, "fir"), (8000, 8000, "passthrough")]
)
def test_simple_ratios_use_the_low_latency_fir(in_rate: int, out_rate: int, method: str) -> None:
    assert StreamResampler(in_rate, out_rate).method == method


def test_awkward_ratio_falls_back_to_soxr_and_still_streams() -> None:
    """A 22.05 kHz TTS voice: the FIR does not cover 160/441, soxr HQ takes over."""
    resampler = StreamResampler(22050, 8000)
    assert resampler.method == "soxr-HQ"
    t = np.arange(22050) / 22050
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).tobytes()
    out = b"".join(resampler.process(pcm[i : i + 882]) for i in range(0, len(pcm), 882)) + resampler.flush()
    assert len(out) // 2 == pytest.approx(8000, abs=2)


def test_soxr_quality_can_be_forced() -> None:
    assert StreamResampler(8000, 16000, "MQ").method == "soxr-MQ"
