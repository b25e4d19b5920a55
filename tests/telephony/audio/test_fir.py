"""The low-latency FIR resampler: latency, alignment, and its frequency response."""

from __future__ import annotations

import numpy as np
import pytest

from telephony.audio.fir import FirResampler, UnsupportedRatio

RATIOS = [(8000, 16000), (16000, 8000), (24000, 8000), (48000, 8000), (8000, 24000), (24000, 16000), (16000, 24000)]


def tone(hz: float, rate: int, seconds: float = 1.0, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def stream(resampler: FirResampler, x: np.ndarray, chunk: int) -> np.ndarray:
    parts = [resampler.process(x[i : i + chunk]) for i in range(0, x.size, chunk)]
    return np.concatenate([*parts, resampler.flush()])


def level_db(y: np.ndarray, reference: float) -> float:
    rms = np.sqrt(np.mean(y.astype(np.float64) ** 2))
    return 20 * np.log10(max(rms, 1e-9) / reference)  # all-zero output is below any bound


@pytest.mark.parametrize(("in_rate", "out_rate"), RATIOS)
def test_delay_is_a_few_milliseconds(in_rate: int, out_rate: int) -> None:
    assert FirResampler(in_rate, out_rate).delay_seconds <= 0.0045


@pytest.mark.parametrize(("in_rate", "out_rate"), RATIOS)
def test_every_20ms_chunk_produces_output_at_once(in_rate: int, out_rate: int) -> None:
    """Unlike soxr, which emits nothing for the first 120 ms at MQ/HQ."""
    resampler = FirResampler(in_rate, out_rate)
    frame = tone(440, in_rate, 0.02)
    produced = [resampler.process(frame).size for _ in range(10)]
    per_frame = out_rate // 50
    assert produced[0] >= per_frame - round(resampler.delay_seconds * out_rate)
    assert produced[1:] == [per_frame] * 9


@pytest.mark.parametrize(("in_rate", "out_rate"), RATIOS)
@pytest.mark.parametrize("chunk_ms", [20, 7, 1000])
def test_flushed_output_is_aligned_and_exactly_as_long(in_rate: int, out_rate: int, chunk_ms: int) -> None:
    x = tone(300, in_rate, 0.5)
    y = stream(FirResampler(in_rate, out_rate), x, in_rate * chunk_ms // 1000)
    assert y.size == x.size * out_rate // in_rate
    # aligned: the output's zero crossings sit where the input's do (no delay left over)
    t_in = np.arange(x.size) / in_rate
    expected = np.interp(np.arange(y.size) / out_rate, t_in, x.astype(np.float64))
    middle = slice(y.size // 10, -y.size // 10)
    assert np.max(np.abs(y[middle] - expected[middle])) < 0.02 * 10000


@pytest.mark.parametrize(("in_rate", "out_rate"), RATIOS)
def test_chunking_does_not_change_the_output(in_rate: int, out_rate: int) -> None:
    x = tone(1234, in_rate, 0.3)
    whole = stream(FirResampler(in_rate, out_rate), x, x.size)
    framed = stream(FirResampler(in_rate, out_rate), x, in_rate // 50)
    odd = stream(FirResampler(in_rate, out_rate), x, 37)
    assert np.max(np.abs(whole.astype(int) - framed)) <= 1
    assert np.max(np.abs(whole.astype(int) - odd)) <= 1


@pytest.mark.parametrize(("in_rate", "out_rate"), RATIOS)
@pytest.mark.parametrize("hz", [300, 1000, 3000, 3300])
def test_telephone_band_passes_flat(in_rate: int, out_rate: int, hz: float) -> None:
    y = stream(FirResampler(in_rate, out_rate), tone(hz, in_rate), in_rate // 50)
    steady = y[y.size // 10 : -y.size // 10]
    assert level_db(steady, 10000 / np.sqrt(2)) == pytest.approx(0.0, abs=0.2)


@pytest.mark.parametrize("in_rate", [16000, 24000, 48000])
@pytest.mark.parametrize("hz", [4500, 6000, 7500])
def test_content_above_4khz_does_not_alias_into_the_call(in_rate: int, hz: float) -> None:
    y = stream(FirResampler(in_rate, 8000), tone(hz, in_rate), in_rate // 50)
    steady = y[y.size // 10 : -y.size // 10]  # the tone's abrupt start and end are broadband
    assert level_db(steady, 10000 / np.sqrt(2)) < -60


def test_upsampling_leaves_no_images_above_4khz() -> None:
    y = stream(FirResampler(8000, 16000), tone(3000, 8000), 160).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size))) ** 2
    freqs = np.fft.rfftfreq(y.size, 1 / 16000)
    assert 10 * np.log10(spectrum[freqs > 4200].sum() / spectrum.sum()) < -70


def test_reset_forgets_history() -> None:
    resampler = FirResampler(8000, 16000)
    resampler.process(tone(440, 8000, 0.1))
    resampler.reset()
    fresh = FirResampler(8000, 16000)
    x = tone(700, 8000, 0.1)
    assert np.array_equal(resampler.process(x), fresh.process(x))


@pytest.mark.parametrize(("in_rate", "out_rate"), [(22050, 8000), (44100, 16000), (8000, 11025)])
def test_awkward_ratios_are_refused(in_rate: int, out_rate: int) -> None:
    with pytest.raises(UnsupportedRatio):
        FirResampler(in_rate, out_rate)
