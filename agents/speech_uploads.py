"""Uploaded audio -> PCM16 mono at 16 kHz, bounded before anything grows.

An upload is small (the body is capped), but what it *declares* can be huge: a WAV that says 1 Hz
asks the resampler for 16000 samples per byte (8 KB grew the service by 735 MB), and a compressed
file can unpack to hours. So a WAV's header is checked first (rate, channels, sample width, and the
duration of the audio it actually carries), and compressed input is decoded frame by frame with the
same checks on each frame and a cap on the samples, stopping as soon as a bound is passed. Nothing
here is async: the service runs it on a pool thread, never on its event loop.
"""

from __future__ import annotations

import io
import wave

import numpy as np
import soxr

TARGET_RATE = 16000
"""What Whisper hears."""
MIN_SAMPLE_RATE = 8000
"""Lowest declared rate accepted (a phone line)."""
MAX_SAMPLE_RATE = 48000
"""Highest declared rate accepted (studio audio; more only costs resampling)."""
MAX_CHANNELS = 2
SAMPLE_WIDTH = 2
"""Bytes per WAV sample accepted: 16-bit PCM (what every phone path and recorder writes)."""


class UploadRefused(ValueError):
    """The upload is outside the service's bounds or not audio it reads; the message says which."""


def decode_upload(data: bytes, max_seconds: float) -> bytes:
    """`data` (a WAV, or anything PyAV decodes) as PCM16 mono at 16 kHz, at most `max_seconds` long.
    Raises `UploadRefused` before decoding or resampling what is out of bounds."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            return _wav(data, max_seconds)
        except (wave.Error, EOFError):
            pass  # a WAV `wave` does not read (float, extensible): PyAV, with the same bounds
    return _compressed(data, max_seconds)


def _check_format(rate: int, channels: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise UploadRefused(f"sample rate {rate} Hz; send {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise UploadRefused(f"{channels} channels; send mono or stereo")


def _check_length(seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise UploadRefused(f"{seconds:.1f} s of audio; at most {max_seconds:.1f} s per request")


def _wav(data: bytes, max_seconds: float) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        _check_format(rate, channels)
        if width != SAMPLE_WIDTH:
            raise UploadRefused(f"WAV with {8 * width}-bit samples; send 16-bit PCM")
        # A streaming header declares 4 GiB: what counts is what the (bounded) body can carry
        # after the smallest header (44 bytes), an upper bound on the frames really there.
        carried = max(0, len(data) - 44) // (channels * width)
        frames = min(wav.getnframes(), carried)
        _check_length(frames / rate, max_seconds)
        pcm = wav.readframes(frames)
    _check_length(len(pcm) // (channels * width) / rate, max_seconds)
    if channels == 1 and rate == TARGET_RATE:
        return pcm[: len(pcm) // 2 * 2]  # already what Whisper hears: no float round trip
    samples = np.frombuffer(pcm[: len(pcm) // (2 * channels) * 2 * channels], dtype="<i2").astype(np.float32)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != TARGET_RATE:
        samples = soxr.resample(samples, rate, TARGET_RATE, quality="HQ")
    return np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()


def _compressed(data: bytes, max_seconds: float) -> bytes:
    """PyAV, frame by frame: each frame's rate and channels checked, the decoded length capped."""
    import av

    out: list[bytes] = []
    decoded_s = 0.0
    produced = 0
    cap = int(max_seconds * TARGET_RATE)
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise UploadRefused("not an audio file this service can read: no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=TARGET_RATE)
            for frame in container.decode(stream):
                _check_format(frame.sample_rate, frame.layout.nb_channels)
                decoded_s += frame.samples / frame.sample_rate
                if decoded_s > max_seconds:
                    raise UploadRefused(f"longer than {max_seconds:.1f} s of audio per request")
                for piece in resampler.resample(frame):
                    produced += piece.samples
                    if produced > cap:
                        raise UploadRefused(f"longer than {max_seconds:.1f} s of audio per request")
                    out.append(piece.to_ndarray().tobytes())
            for piece in resampler.resample(None):
                out.append(piece.to_ndarray().tobytes())
    except UploadRefused:
        raise
    except Exception as exc:  # PyAV raises its own error kinds for garbage
        raise UploadRefused(f"not an audio file this service can read: {exc}") from None
    return b"".join(out)[: cap * 2]
