"""Per-frame cost of a call's audio path, and the evidence behind the resampler choice.

Why: every call moves one 20 ms frame each way every 20 ms. Inbound, the server parses Twilio's
media JSON, decodes G.711 mu-law and resamples 8 kHz -> 16 kHz; outbound, it resamples the TTS
rate (Kokoro speaks at 24 kHz) -> 8 kHz, encodes mu-law and builds the media JSON. This script
measures what that costs per frame (so how many calls one core could carry for audio alone) and,
for each resampler -- "fir" (telephony.audio.fir's polyphase FIR), each soxr quality, and
audioop.ratecv as the no-dependency comparison -- what it holds back and how faithful it is.
`Settings.inbound_resampler` / `outbound_resampler` are chosen from these figures; the defaults
are read from Settings (both "fir" at the time of writing) and marked * in the tables.

Run from the repository root (needs scipy, a test extra; about 12 s on 2 cores):

    .venv/bin/python benchmarks/audio_path.py            # or: make bench
    .venv/bin/python benchmarks/audio_path.py --frames 4000   # quicker, noisier

Method:
- Timing: time.perf_counter_ns around each step of every frame; each option runs in a few
  repetitions with a fresh StreamResampler(in, out, option) (as a new call would) after warm-up
  frames, repetitions interleaved across options so drift hits all of them alike. soxr works in
  blocks: most frames only buffer and every few frames one does the filtering, so the median
  frame is the cheap one; the FIR filters every frame. Step columns are therefore means (they
  add up to the mean total) and the budget uses the mean.
- Delay: 20 ms chunks are streamed without flushing; held back = expected - produced output,
  in ms, after each chunk; first output = input streamed before the first chunk that gives any
  output (20 ms = the first chunk). Held back is reported at 1 s (one snapshot), and its mean
  and max over a 3 s stream once output has started: soxr's block cadence makes it a sawtooth,
  and its mean is the mean wait of a sample (Little's law). The FIR emits every chunk and holds
  back its fixed group delay (FirResampler.delay_seconds, 4 ms). soxr and the FIR both align
  their output with their input (checked: best lag ~0), so held back is all of their delay.
- Test signals are Gaussian noise band-limited in the FFT (exactly zero outside the band, fixed
  seed) at -20 dBFS RMS, rather than a Butterworth-filtered one, whose skirts would leak into a
  resampler's transition band and measure the test filter instead of the resampler.
- Pass-band SNR: 300-3400 Hz noise streamed in 20 ms chunks versus scipy.signal.resample_poly
  with a 140 dB Kaiser FIR (400 taps per phase), aligned (best fractional lag), error energy
  counted within 300-3400 Hz only. 'call' is StreamResampler's int16 output, what a call gets;
  soxr adds TPDF dither to int16, which caps it; the FIR rounds (no dither). 'filter' reruns the
  same soxr quality in float64 on float input, streamed in 20 ms chunks, to show the filter's own
  margin; for "fir" it runs telephony.audio.fir.design's taps in float64 in one pass
  (scipy.signal.upfirdn; a FIR is linear and time-invariant, so chunking changes only rounding),
  aligned and cut as the unflushed stream is -- not a rerun of the int16 output. The script
  checks that the streamed int16 FIR output is this float output rounded (within 1 LSB).
- Alias rejection (downsampling): noise in 4.5-11 kHz (4.5-7.5 kHz at 16 kHz in), all of which
  must go; output power over input power. Image rejection (8 -> 16 kHz): output energy above
  4.2 kHz over total, with the 300-3400 Hz signal as input. Both use the float64 path; the int16
  dither alone sits at about -76 dB of this signal.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    import scipy
    from scipy import optimize, signal
except ImportError:  # pragma: no cover - scipy comes with the test extra
    sys.exit("benchmarks/audio_path.py needs scipy (a test extra): .venv/bin/pip install -e '.[test]'")

with warnings.catch_warnings():  # stdlib audioop is deprecated in 3.11-3.12 (audioop-lts from 3.13)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from telephony.audio.fir import FirResampler, design
from telephony.audio.mulaw import mulaw_to_pcm16, pcm16_to_mulaw
from telephony.audio.resamplers import StreamResampler
from telephony.settings import Settings
from telephony.twilio.protocol import media_message, parse_inbound

FRAME_MS = 20
TWILIO_RATE = 8000
PIPELINE_RATE = 16000
TTS_RATE = 24000
SOXR = ("QQ", "LQ", "MQ", "HQ", "VHQ")
OPTIONS = ("fir", *SOXR, "ratecv")
PASS_BAND = (300.0, 3400.0)
IMAGE_EDGE_HZ = 4200.0
LEVEL_DBFS = -20.0
SEED = 20240607
STREAM_SID = "MZ" + "0123456789abcdef" * 2
EDGE_MS = 100  # trimmed from both ends of a streamed output before comparing


class Resampler(Protocol):
    def process(self, pcm: bytes) -> bytes: ...


class RatecvResampler:
    """audioop.ratecv with its state carried between frames: the no-dependency comparison."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        self._state: tuple[int, tuple[tuple[int, int], ...]] | None = None

    def process(self, pcm: bytes) -> bytes:
        out, self._state = audioop.ratecv(pcm, 2, 1, self.in_rate, self.out_rate, self._state)
        return out


def make_resampler(option: str, in_rate: int, out_rate: int) -> Resampler:
    if option == "ratecv":
        return RatecvResampler(in_rate, out_rate)
    rs = StreamResampler(in_rate, out_rate, option)
    expected = "fir" if option == "fir" else f"soxr-{option}"
    if rs.method != expected:  # e.g. the FIR fell back to soxr HQ for this ratio: the figures would lie
        raise RuntimeError(f"StreamResampler({in_rate}, {out_rate}, {option!r}) runs {rs.method}, not {expected}")
    return rs


# -- signals -----------------------------------------------------------------------------


def band_noise(rate: int, lo: float, hi: float, seconds: float, seed: int = SEED) -> np.ndarray:
    """Gaussian noise with nothing outside [lo, hi] Hz, at LEVEL_DBFS RMS (float64, int16 scale)."""
    n = int(rate * seconds)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spectrum[(freqs < lo) | (freqs > hi)] = 0
    x = np.fft.irfft(spectrum, n)
    return x * (10 ** (LEVEL_DBFS / 20) * 32767 / np.sqrt(np.mean(x**2)))


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def frames_of(x: np.ndarray, rate: int) -> list[bytes]:
    step = rate * FRAME_MS // 1000
    return [x[i : i + step].tobytes() for i in range(0, len(x) - step + 1, step)]


def twilio_media_json(seq: int, mulaw: bytes) -> str:
    """A media message as Twilio sends it (numbers as strings, base64 payload)."""
    media = {
        "track": "inbound",
        "chunk": str(seq),
        "timestamp": str(seq * FRAME_MS),
        "payload": base64.b64encode(mulaw).decode(),
    }
    return json.dumps({"event": "media", "sequenceNumber": str(seq + 1), "media": media, "streamSid": STREAM_SID})


# -- timing ------------------------------------------------------------------------------


@dataclass
class Timing:
    """Per-frame nanoseconds, one list per step, plus the frame total."""

    steps: dict[str, list[int]]
    total: list[int]

    def mean_us(self, step: str) -> float:
        return float(np.mean(self.steps[step])) / 1000

    def total_us(self) -> tuple[float, float, float]:
        t = np.asarray(self.total) / 1000
        return float(np.median(t)), float(np.mean(t)), float(np.percentile(t, 99))


FrameRunner = Callable[[Resampler, int, Timing | None], None]


def inbound_runner(messages: list[str]) -> FrameRunner:
    def run(rs: Resampler, n: int, into: Timing | None) -> None:
        clock = time.perf_counter_ns
        pool = len(messages)
        for k in range(n):
            raw = messages[k % pool]
            t0 = clock()
            message = parse_inbound(raw)
            t1 = clock()
            pcm = mulaw_to_pcm16(message.media.payload)  # type: ignore[union-attr]
            t2 = clock()
            rs.process(pcm)
            t3 = clock()
            if into is not None:
                into.steps["parse"].append(t1 - t0)
                into.steps["decode"].append(t2 - t1)
                into.steps["resample"].append(t3 - t2)
                into.total.append(t3 - t0)

    return run


def outbound_runner(pcm_frames: list[bytes], mulaw_frames: list[bytes]) -> FrameRunner:
    def run(rs: Resampler, n: int, into: Timing | None) -> None:
        clock = time.perf_counter_ns
        pool = len(pcm_frames)
        for k in range(n):
            pcm = pcm_frames[k % pool]
            t0 = clock()
            out = rs.process(pcm)
            t1 = clock()
            pcm16_to_mulaw(out)
            t2 = clock()
            media_message(STREAM_SID, mulaw_frames[k % pool])  # playout sends one 160-byte frame per 20 ms
            t3 = clock()
            if into is not None:
                into.steps["resample"].append(t1 - t0)
                into.steps["encode"].append(t2 - t1)
                into.steps["json"].append(t3 - t2)
                into.total.append(t3 - t0)

    return run


def time_options(
    run: FrameRunner, steps: tuple[str, ...], in_rate: int, out_rate: int, frames: int, reps: int, warmup: int
) -> dict[str, Timing]:
    timings = {opt: Timing({s: [] for s in steps}, []) for opt in OPTIONS}
    for _ in range(reps):
        for opt in OPTIONS:  # interleaved: each repetition visits every option
            rs = make_resampler(opt, in_rate, out_rate)
            run(rs, warmup, None)
            run(rs, frames // reps, timings[opt])
    return timings


def timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    samples = [-(clock() - clock()) for _ in range(20000)]
    return float(np.median(samples))


# -- delay and fidelity ------------------------------------------------------------------


@dataclass
class Delay:
    first_out_ms: float  # input streamed before the first output sample
    at_1s_ms: float
    mean_ms: float
    max_ms: float
    emit_pct: float  # share of 20 ms chunks that produced any output


def stream(option: str, x: np.ndarray, in_rate: int, out_rate: int) -> tuple[np.ndarray, Delay]:
    """Resample x in 20 ms chunks without flushing; return the output and what was held back."""
    rs = make_resampler(option, in_rate, out_rate)
    outs: list[bytes] = []
    held: list[float] = []
    produced = fed = 0
    for chunk in frames_of(x, in_rate):
        out = rs.process(chunk)
        outs.append(out)
        fed += len(chunk) // 2
        produced += len(out) // 2
        held.append((fed * out_rate / in_rate - produced) / out_rate * 1000)
    emitted = [i for i, out in enumerate(outs) if out]
    start = emitted[0] if emitted else len(outs)
    steady = np.asarray(held[start:] or held)
    one_s = 1000 // FRAME_MS - 1
    delay = Delay(
        (start + 1) * FRAME_MS, held[one_s], float(steady.mean()), float(steady.max()), 100 * len(emitted) / len(outs)
    )
    return np.frombuffer(b"".join(outs), dtype=np.int16).astype(np.float64), delay


def reference(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Near-exact resampling: polyphase with a 140 dB Kaiser low-pass, 400 taps per phase."""
    g = np.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    m = max(up, down)
    taps = signal.firwin(2 * 200 * m + 1, 1 / m, window=("kaiser", signal.kaiser_beta(140.0)))
    return signal.resample_poly(x.astype(np.float64), up, down, window=taps)


def fractional_shift(x: np.ndarray, lag: float) -> np.ndarray:
    """x delayed by `lag` samples (band-limited, circular; the edges are trimmed later)."""
    spectrum = np.fft.rfft(x)
    spectrum *= np.exp(-2j * np.pi * np.fft.rfftfreq(len(x)) * lag)
    return np.fft.irfft(spectrum, len(x))


def band_energy(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[(freqs >= lo) & (freqs <= hi)].sum())


def passband_snr(y: np.ndarray, ref: np.ndarray, rate: int) -> tuple[float, float]:
    """In-band SNR of y against ref after the best (fractional) alignment; returns (dB, lag)."""
    edge = rate * EDGE_MS // 1000
    ref = ref[: len(y)]
    seg = slice(edge, len(y) - edge)

    def error(lag: float) -> float:
        return float(np.sum((y[seg] - fractional_shift(ref, lag)[seg]) ** 2))

    coarse = min(np.arange(-8, 8.01, 0.25), key=error)
    lag = float(optimize.minimize_scalar(error, bounds=(coarse - 0.25, coarse + 0.25), method="bounded").x)
    aligned = fractional_shift(ref, lag)[seg]
    noise = band_energy(y[seg] - aligned, rate, *PASS_BAND)
    return 10 * np.log10(band_energy(aligned, rate, *PASS_BAND) / noise), lag


def power_db(num: np.ndarray, den: np.ndarray) -> float:
    ratio = np.mean(num.astype(np.float64) ** 2) / np.mean(den.astype(np.float64) ** 2)
    return round(float(10 * np.log10(ratio)), 1) + 0.0  # + 0.0: no "-0.0" for a filter that removes nothing


def image_rejection_db(y: np.ndarray, rate: int) -> float:
    edge = rate * EDGE_MS // 1000
    seg = y[edge:-edge]
    return float(10 * np.log10(band_energy(seg, rate, IMAGE_EDGE_HZ, rate / 2) / band_energy(seg, rate, 0, rate / 2)))


def fir_float(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """telephony.audio.fir.design's filter in float64, in one pass (scipy.signal.upfirdn).

    Aligned as FirResampler aligns (its `half` warm-up samples skipped) and cut to what a stream
    of len(x) samples has emitted before a flush, so it lines up sample for sample with the
    streamed int16 output. A FIR is linear and time-invariant: 20 ms chunking changes only rounding."""
    up, down, phases, half = design(in_rate, out_rate)
    h = np.empty(phases.size)
    for p in range(up):
        h[p::up] = phases[p][::-1]  # undo design()'s per-phase reversal: the prototype low-pass
    y = signal.upfirdn(h, x.astype(np.float64), up, down)
    n = len(x) * up // down - half // down
    return y[half // down : half // down + n]


def stream_filter(option: str, x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """The filter itself in float64, without int16 rounding or dither: the same soxr quality
    streamed in 20 ms chunks, or the FIR's design in one pass (fir_float).
    ratecv only works on int16, so it keeps its int16 output."""
    if option == "ratecv":
        return stream(option, to_int16(x), in_rate, out_rate)[0]
    if option == "fir":
        step = in_rate * FRAME_MS // 1000
        return fir_float(x[: len(x) // step * step], in_rate, out_rate)  # whole chunks, as streamed
    rs = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float64", quality=option)
    step = in_rate * FRAME_MS // 1000
    xf = x.astype(np.float64)
    return np.concatenate([rs.resample_chunk(xf[i : i + step]) for i in range(0, len(xf) - step + 1, step)])


@dataclass
class Quality:
    delay: Delay
    snr_db: float  # pass-band SNR of StreamResampler's int16 output, what a call gets
    filter_snr_db: float  # the same in float64: the filter's own accuracy
    lag: float  # alignment lag of the streamed int16 output, in output samples
    rejection_db: float  # image (upsampling) or alias (downsampling) rejection of the filter (float64)
    fir_match_lsb: float | None = None  # fir only: max |streamed int16 - float64 design|, same int16 input


def measure_quality(option: str, in_rate: int, out_rate: int) -> Quality:
    xf = band_noise(in_rate, *PASS_BAND, 3.0)  # float input for the filter figures: no int16 floor
    x = to_int16(xf)
    y, delay = stream(option, x, in_rate, out_rate)
    snr, lag = passband_snr(y, reference(x, in_rate, out_rate), out_rate)
    yf = stream_filter(option, xf, in_rate, out_rate)
    filter_snr = snr if option == "ratecv" else passband_snr(yf, reference(xf, in_rate, out_rate), out_rate)[0]
    if out_rate > in_rate:
        rejection = image_rejection_db(yf, out_rate)
    else:
        noise = band_noise(in_rate, 4500.0, min(11000.0, in_rate / 2 - 500), 2.0)
        edge = out_rate * EDGE_MS // 1000
        rejection = power_db(stream_filter(option, noise, in_rate, out_rate)[edge:-edge], noise)
    match = None
    if option == "fir":  # the streamed int16 path is the design, rounded: same samples, same alignment
        exact = stream_filter(option, x.astype(np.float64), in_rate, out_rate)
        if len(exact) != len(y):
            raise RuntimeError(f"fir streamed {len(y)} samples, its design {len(exact)}")
        match = float(np.max(np.abs(y - exact)))
        if match > 1.0:
            raise RuntimeError(f"fir's streamed int16 output is {match:.2f} LSB off its float64 design")
    return Quality(delay, snr, filter_snr, lag, rejection, match)


def mulaw_snr_db() -> float:
    """G.711 itself on the same pass-band signal: the fidelity a phone line allows."""
    x = to_int16(band_noise(TWILIO_RATE, *PASS_BAND, 3.0))
    y = np.frombuffer(mulaw_to_pcm16(pcm16_to_mulaw(x.tobytes())), dtype=np.int16).astype(np.float64)
    err = y - x
    return 10 * np.log10(
        band_energy(x.astype(np.float64), TWILIO_RATE, *PASS_BAND) / band_energy(err, TWILIO_RATE, *PASS_BAND)
    )


def dither_floor_db(out_rate: int) -> float:
    """Pass-band SNR ceiling set by int16 output with TPDF dither (1/4 LSB^2 of white noise)."""
    signal_power = (10 ** (LEVEL_DBFS / 20) * 32767) ** 2
    in_band = (PASS_BAND[1] - PASS_BAND[0]) / (out_rate / 2)
    return 10 * np.log10(signal_power / (0.25 * in_band))


def rounding_floor_db(out_rate: int) -> float:
    """Pass-band SNR ceiling set by plain rounding to int16 (1/12 LSB^2 of white noise): the FIR's."""
    return dither_floor_db(out_rate) + 10 * np.log10(3)


def dither_noise_db() -> float:
    """TPDF dither noise (1/4 LSB^2, full band) relative to the test signal's power."""
    return float(10 * np.log10(0.25 / (10 ** (LEVEL_DBFS / 20) * 32767) ** 2))


# -- report ------------------------------------------------------------------------------


def label(option: str, default: str) -> str:
    return f"{option}{'*' if option == default else ''}"


def print_cost(title: str, timings: dict[str, Timing], steps: tuple[str, ...], default: str) -> None:
    print(f"\n{title}")
    head = "".join(f"{s:>9}" for s in steps)
    print(f"  {'option':<8}{head} | {'median':>7}{'mean':>7}{'p99':>7} | {'mean/20ms':>9}")
    for opt in OPTIONS:
        t = timings[opt]
        median, mean, p99 = t.total_us()
        cells = "".join(f"{t.mean_us(s):9.2f}" for s in steps)
        print(
            f"  {label(opt, default):<8}{cells} | {median:7.2f}{mean:7.2f}{p99:7.2f} | {mean / (FRAME_MS * 10):8.3f}%"
        )


def print_quality(title: str, qualities: dict[str, Quality], rejection: str, default: str) -> None:
    print(f"\n{title}")
    print(f"  {'':<8}{'held back, ms':^32}{'':7} | {'pass-band SNR dB':^16}{'filter':>10}")
    delay_head = f"{'1st out':>8}{'@1 s':>8}{'mean':>8}{'max':>8}{'emits':>7}"
    print(f"  {'option':<8}{delay_head} | {'call':>8}{'filter':>8}{rejection:>10}")
    for opt in OPTIONS:
        q = qualities[opt]
        d = q.delay
        delay = f"{d.first_out_ms:8.0f}{d.at_1s_ms:8.2f}{d.mean_ms:8.2f}{d.max_ms:8.2f}{d.emit_pct:6.0f}%"
        print(f"  {label(opt, default):<8}{delay} | {q.snr_db:8.1f}{q.filter_snr_db:8.1f}{q.rejection_db:10.1f}")


def print_notes(inbound_q: dict[str, Quality], out_q: dict[str, Quality], g711: float) -> None:
    lags = {
        f"{opt} {d}": round(q.lag, 2) + 0.0 for d, qs in (("in", inbound_q), ("out", out_q)) for opt, q in qs.items()
    }
    aligned_lag = max(abs(lag) for name, lag in lags.items() if not name.startswith("ratecv"))
    fir_in, fir_out = FirResampler(TWILIO_RATE, PIPELINE_RATE), FirResampler(TTS_RATE, TWILIO_RATE)
    notes = [
        "'call' is StreamResampler's int16 output: soxr's TPDF dither caps its SNR near "
        f"{dither_floor_db(PIPELINE_RATE):.1f} dB at 16 kHz, {dither_floor_db(TWILIO_RATE):.1f} dB at 8 kHz, and adds "
        f"noise at {dither_noise_db():.1f} dB of this signal; fir rounds without dither (caps near "
        f"{rounding_floor_db(PIPELINE_RATE):.1f} / {rounding_floor_db(TWILIO_RATE):.1f} dB). 'filter' columns rerun "
        "the soxr quality in float64 on float input, streamed; for fir they run telephony.audio.fir.design's "
        "taps in float64 in one pass (scipy upfirdn), not its int16 output, which matches that float output within "
        f"{inbound_q['fir'].fir_match_lsb:.2f} / {out_q['fir'].fir_match_lsb:.2f} LSB (in / out) on the same input. "
        f"Reference good to ~140 dB. G.711 mu-law itself: {g711:.1f} dB, same signal.",
        f"fir and soxr output is aligned with its input (best lag {aligned_lag:.2f} samples): 'held back' is their "
        f"whole delay; fir holds back {inbound_q['fir'].delay.mean_ms:.2f} / {out_q['fir'].delay.mean_ms:.2f} ms "
        f"(in / out), FirResampler.delay_seconds says {fir_in.delay_seconds * 1000:.2f} / "
        f"{fir_out.delay_seconds * 1000:.2f} ms. ratecv lags {lags['ratecv in']:.2f} / {lags['ratecv out']:.2f} "
        "samples (in / out).",
    ]
    for note in notes:
        print(textwrap.fill(note, 118, initial_indent="  ", subsequent_indent="  "))


def calls_per_core(in_us: float, out_us: float) -> float:
    return FRAME_MS * 1000 / (in_us + out_us)


def print_budget(inbound: dict[str, Timing], outbound: dict[str, Timing], in_default: str, out_default: str) -> None:
    print("\nBudget, one core, audio path only (mean us per 20 ms frame; 24 kHz TTS):")
    print(f"  {'inbound + outbound':<22}{'in':>7}{'out':>7}{'total':>8}{'% of 20ms':>11}{'calls/core':>12}")
    pairs = [(in_default, out_default)] + [(o, o) for o in OPTIONS if (o, o) != (in_default, out_default)]
    for i, o in pairs:
        in_us, out_us = inbound[i].total_us()[1], outbound[o].total_us()[1]
        name = f"{i} + {o}" + ("  (defaults)" if (i, o) == (in_default, out_default) else "")
        total = in_us + out_us
        share = total / (FRAME_MS * 10)
        print(f"  {name:<22}{in_us:7.2f}{out_us:7.2f}{total:8.2f}{share:10.3f}%{calls_per_core(in_us, out_us):12.0f}")


@dataclass
class Metric:
    name: str
    a: float  # the default's figure
    b: float  # the alternative's
    tol: float  # differences within this count as even
    unit: str
    lower_better: bool
    digits: int = 1

    def text(self) -> str:
        return f"{self.name} {self.a:.{self.digits}f}/{self.b:.{self.digits}f}{self.unit}"

    def winner(self) -> int:
        """+1 if the default is ahead, -1 if behind, 0 if even."""
        if abs(self.a - self.b) <= self.tol:
            return 0
        return 1 if (self.a < self.b) == self.lower_better else -1


LATENCY = ("first output", "mean held back", "max held back")


def call_metrics(qa: Quality, qb: Quality, cost_a: float, cost_b: float, rejection: str) -> list[Metric]:
    """What a call gets: the delay, the int16 output, what the filter lets through, the CPU."""
    return [
        Metric("first output", qa.delay.first_out_ms, qb.delay.first_out_ms, 10.0, " ms", lower_better=True, digits=0),
        Metric("mean held back", qa.delay.mean_ms, qb.delay.mean_ms, 2.0, " ms", lower_better=True),
        Metric("max held back", qa.delay.max_ms, qb.delay.max_ms, 10.0, " ms", lower_better=True),
        Metric("call SNR", qa.snr_db, qb.snr_db, 1.0, " dB", lower_better=False),
        Metric(rejection, qa.rejection_db, qb.rejection_db, 3.0, " dB", lower_better=True),
        Metric("cost", cost_a, cost_b, 0.05 * cost_b, " us", lower_better=True, digits=2),
    ]


def compare_line(
    direction: str, default: str, alt: str, qa: Quality, qb: Quality, cost_a: float, cost_b: float, rejection: str
) -> str:
    groups: dict[int, list[str]] = {1: [], -1: [], 0: []}
    for m in call_metrics(qa, qb, cost_a, cost_b, rejection):
        groups[m.winner()].append(m.text())
    filter_snr = Metric("filter SNR", qa.filter_snr_db, qb.filter_snr_db, 1.0, " dB", lower_better=False)
    groups[filter_snr.winner()].append(filter_snr.text())
    names = {1: f"{default} ahead", -1: f"{alt} ahead", 0: "even"}
    parts = [f"{names[k]}: {', '.join(v)}" for k, v in groups.items() if v]
    line = f"{direction} {default}* vs {alt} ({default}/{alt}) -- " + "; ".join(parts) + "."
    a1, b1 = qa.delay.at_1s_ms, qb.delay.at_1s_ms
    both_soxr = default in SOXR and alt in SOXR
    if both_soxr and abs(a1 - b1) > 2.0 and abs(qa.delay.mean_ms - qb.delay.mean_ms) <= 2.0:
        line += f" Held back at 1 s is {a1:.1f} vs {b1:.1f} ms only because each is elsewhere in soxr's block cadence."
    return line


def ruled_out(inbound_q: dict[str, Quality], out_q: dict[str, Quality], g711: float) -> dict[str, list[str]]:
    """Options that fall below what the phone line itself carries, with the measured reason."""
    out: dict[str, list[str]] = {}
    for opt in OPTIONS:
        why = []
        if inbound_q[opt].snr_db < g711:
            why.append(f"inbound SNR {inbound_q[opt].snr_db:.1f} dB")
        if out_q[opt].snr_db < g711:
            why.append(f"outbound SNR {out_q[opt].snr_db:.1f} dB")
        if inbound_q[opt].rejection_db > -g711:
            why.append(f"image {inbound_q[opt].rejection_db:.1f} dB")
        if out_q[opt].rejection_db > -g711:
            why.append(f"alias {out_q[opt].rejection_db:.1f} dB")
        if why:
            out[opt] = why
    return out


def names(opts: list[str]) -> str:
    return "/".join(opts)


def standing(metrics: dict[str, Metric]) -> str:
    """One metric, the default against every alternative: its figure, theirs, and where it stands."""
    any_m = next(iter(metrics.values()))
    fmt = f".{any_m.digits}f"
    values = ", ".join(f"{alt} {m.b:{fmt}}" for alt, m in metrics.items())
    ahead = [alt for alt, m in metrics.items() if m.winner() > 0]
    even = [alt for alt, m in metrics.items() if m.winner() == 0]
    behind = [alt for alt, m in metrics.items() if m.winner() < 0]
    where = []
    if ahead:
        where.append("better than " + ("all" if len(ahead) == len(metrics) else names(ahead)))
    if even:
        where.append("even with " + ("all" if len(even) == len(metrics) else names(even)))
    if behind:
        where.append("worse than " + ("all" if len(behind) == len(metrics) else names(behind)))
    return f"{any_m.name} {any_m.a:{fmt}}{any_m.unit} (vs {values}: {', '.join(where)})"


def direction_choice(
    direction: str,
    default: str,
    qs: dict[str, Quality],
    ts: dict[str, Timing],
    alts: list[str],
    rejection: str,
    g711: float,
) -> str:
    """How the default compares with each viable alternative (the soxr qualities when the default is fir),
    on latency, fidelity and cost."""
    kind = "soxr option" if all(alt in SOXR for alt in alts) else "other option"
    if not alts:
        return f"{direction}: no option left to compare {default}* with."
    cost = {opt: ts[opt].total_us()[1] for opt in [default, *alts]}
    per_alt = {
        alt: {m.name: m for m in call_metrics(qs[default], qs[alt], cost[default], cost[alt], rejection)}
        for alt in alts
    }
    metric_names = list(next(iter(per_alt.values())))
    by_metric = {name: {alt: per_alt[alt][name] for alt in alts} for name in metric_names}

    faster: list[str] = []
    slower: list[str] = []
    even: list[str] = []
    for alt in alts:
        wins = [per_alt[alt][name].winner() for name in LATENCY]
        if any(w > 0 for w in wins) and all(w >= 0 for w in wins):
            faster.append(alt)
        elif any(w < 0 for w in wins):
            slower.append(alt)
        else:
            even.append(alt)
    if len(faster) == len(alts):
        head = f"{default}* IS the better choice on latency: ahead of every {kind} ({names(alts)})"
    elif not faster:
        head = f"{default}* is NOT the better choice on latency: ahead of no {kind} ({names(alts)})"
    else:
        head = f"{default}* is NOT the better choice on latency: ahead of only {names(faster)} among {names(alts)}"
    if slower:
        detail = "; ".join(
            f"{alt} is ahead on {', '.join(per_alt[alt][n].text() for n in LATENCY if per_alt[alt][n].winner() < 0)}"
            for alt in slower
        )
        head += f" -- {detail}"
    if even:
        head += f" -- even with {names(even)} on latency"
    latency = "; ".join(standing(by_metric[name]) for name in LATENCY)
    ahead_all = [n for n in metric_names if all(m.winner() > 0 for m in by_metric[n].values())]
    behind_all = [n for n in metric_names if all(m.winner() < 0 for m in by_metric[n].values())]
    trade = []
    if ahead_all:
        trade.append(f"ahead of all of them on {', '.join(ahead_all)}")
    if behind_all:
        trade.append(f"behind all of them on {', '.join(behind_all)}")
    if trade:
        head += "; " + "; ".join(trade)

    snr = qs[default].snr_db
    best_snr = max(alts, key=lambda alt: qs[alt].snr_db)
    fidelity = (
        f"{standing(by_metric['call SNR'])}, {snr - g711:+.1f} dB over G.711's {g711:.1f} dB and "
        f"{round(snr - qs[best_snr].snr_db, 1) + 0.0:+.1f} dB against the best {kind} ({best_snr}); "
        f"{standing(by_metric[rejection])}"
    )
    rej = qs[default].rejection_db
    fidelity += f", {-rej - g711:.1f} dB beyond the -{g711:.1f} dB G.711 asks"
    dither = dither_noise_db()
    fidelity += f" and {'under' if rej < dither else 'above'} the int16 dither noise ({dither:.1f} dB)"
    cheapest = min(alts, key=lambda alt: cost[alt])
    step = {opt: ts[opt].mean_us("resample") for opt in [default, *alts]}
    steps = ", ".join(f"{alt} {step[alt]:.2f}" for alt in alts)
    costs = (
        f"{standing(by_metric['cost'])}, {cost[default] / cost[cheapest]:.1f}x the cheapest {kind} ({cheapest}), "
        f"{cost[default] / (FRAME_MS * 10):.3f}% of a core per call in this direction; the resample step alone "
        f"{step[default]:.2f} us (vs {steps}), {step[default] / step[cheapest]:.1f}x {cheapest}'s"
    )
    cpu = f"CPU (mean per frame, the direction's other steps included): {costs}"
    return f"{direction}: {head}. Latency: {latency}. Fidelity: {fidelity}. {cpu}."


def choice_lines(
    inbound_q: dict[str, Quality],
    out_q: dict[str, Quality],
    inbound_t: dict[str, Timing],
    out_t: dict[str, Timing],
    in_default: str,
    out_default: str,
    g711: float,
) -> list[str]:
    excluded = ruled_out(inbound_q, out_q, g711)
    paragraphs = [
        f"ruled out, worse than G.711 itself ({g711:.1f} dB SNR; image/alias above -{g711:.1f} dB): "
        + ("; ".join(f"{opt} ({', '.join(why)})" for opt, why in excluded.items()) or "none")
    ]
    choices = []
    for direction, qs, ts, default, rejection in (
        ("inbound 8->16k", inbound_q, inbound_t, in_default, "image"),
        ("outbound 24->8k", out_q, out_t, out_default, "alias"),
    ):
        alts = [o for o in OPTIONS if o != default and o not in excluded]
        for alt in alts:
            cost_a, cost_b = ts[default].total_us()[1], ts[alt].total_us()[1]
            paragraphs.append(compare_line(direction, default, alt, qs[default], qs[alt], cost_a, cost_b, rejection))
        choosable = [o for o in alts if o in ("fir", *SOXR)]  # what Settings accepts: ratecv is a comparison only
        choice = direction_choice(direction, default, qs, ts, choosable, rejection, g711)
        if default in excluded:
            choice = (
                f"{direction}: the default {default}* is itself ruled out ({', '.join(excluded[default])}). " + choice
            )
        choices.append(choice)
    wrap = [textwrap.fill(p, 118, initial_indent="  ", subsequent_indent="    ") for p in paragraphs]
    final = [textwrap.fill(c, 118, initial_indent="choice, ", subsequent_indent="        ") for c in choices]
    return [
        f"Choice, from the figures above (defaults read from Settings: inbound {in_default}, outbound {out_default};",
        "  a/b = default/alternative; even = within 10 ms first output or max held back, 2 ms mean held back,",
        "  1 dB SNR, 3 dB rejection, 5% cost):",
        *wrap,
        *final,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, default=20000, help="timed frames per option and direction (default 20000)"
    )
    parser.add_argument("--reps", type=int, default=4, help="repetitions the frames are split into (default 4)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed frames before each repetition (default 300)")
    args = parser.parse_args()
    started = time.perf_counter()

    fields = Settings.model_fields
    in_default = fields["inbound_resampler"].default
    out_default = fields["outbound_resampler"].default

    # 10 s pools of distinct frames, cycled.
    speech_8k = to_int16(band_noise(TWILIO_RATE, *PASS_BAND, 10.0))
    mulaw_frames = [pcm16_to_mulaw(f) for f in frames_of(speech_8k, TWILIO_RATE)]
    messages = [twilio_media_json(i, f) for i, f in enumerate(mulaw_frames)]
    tts = {
        rate: frames_of(to_int16(band_noise(rate, 100.0, min(11000.0, rate / 2 - 500), 10.0)), rate)
        for rate in (TTS_RATE, PIPELINE_RATE)
    }

    print(
        f"Switchboard audio path: Python {platform.python_version()}, numpy {np.__version__}, soxr {soxr.__version__}, "
        f"scipy {scipy.__version__}, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"us per 20 ms frame over {args.frames} frames ({args.reps} runs, fresh resampler, {args.warmup} warm-up "
        f"frames each);\ntimer overhead {timer_overhead_ns():.0f} ns/step, not subtracted; * = Settings default"
    )

    in_steps = ("parse", "decode", "resample")
    out_steps = ("resample", "encode", "json")
    inbound_t = time_options(
        inbound_runner(messages), in_steps, TWILIO_RATE, PIPELINE_RATE, args.frames, args.reps, args.warmup
    )
    out_t = {
        rate: time_options(
            outbound_runner(tts[rate], mulaw_frames), out_steps, rate, TWILIO_RATE, args.frames, args.reps, args.warmup
        )
        for rate in (TTS_RATE, PIPELINE_RATE)
    }
    print_cost("Inbound: parse_inbound + mulaw_to_pcm16 + resample 8 -> 16 kHz", inbound_t, in_steps, in_default)
    print_cost(
        "Outbound: resample 24 -> 8 kHz + pcm16_to_mulaw + media_message", out_t[TTS_RATE], out_steps, out_default
    )
    print_cost(
        "Outbound: resample 16 -> 8 kHz + pcm16_to_mulaw + media_message", out_t[PIPELINE_RATE], out_steps, out_default
    )
    print("  (steps are means, adding up to 'mean'; soxr filters in blocks every few frames: most frames only buffer)")

    inbound_q = {opt: measure_quality(opt, TWILIO_RATE, PIPELINE_RATE) for opt in OPTIONS}
    out_q = {
        rate: {opt: measure_quality(opt, rate, TWILIO_RATE) for opt in OPTIONS} for rate in (TTS_RATE, PIPELINE_RATE)
    }
    g711 = mulaw_snr_db()
    print("\nDelay held back while streaming 20 ms chunks unflushed (ms): first output after, at 1 s, mean and max")
    print("once output has started (3 s), share of chunks that emit. Fidelity: 300-3400 Hz pass-band SNR vs exact.")
    print_quality("Inbound 8 -> 16 kHz", inbound_q, "image dB", in_default)
    print_quality("Outbound 24 -> 8 kHz", out_q[TTS_RATE], "alias dB", out_default)
    print_quality("Outbound 16 -> 8 kHz", out_q[PIPELINE_RATE], "alias dB", out_default)
    print_notes(inbound_q, out_q[TTS_RATE], g711)

    print_budget(inbound_t, out_t[TTS_RATE], in_default, out_default)
    print()
    for line in choice_lines(inbound_q, out_q[TTS_RATE], inbound_t, out_t[TTS_RATE], in_default, out_default, g711):
        print(line)
    print(f"\n(ran in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
