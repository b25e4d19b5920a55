"""The WAV header of a call recording: 8 kHz stereo PCM16 (caller left, agent right).

A plain RIFF/WAVE `fmt ` + `data` header (44 bytes) that browsers play in an `<audio>` element.
Its two sizes are known only when the call ends, so the writer keeps the first chunk until then.
"""

from __future__ import annotations

import struct

SAMPLE_RATE = 8000
CHANNELS = 2
SAMPLE_BYTES = 2
HEADER_BYTES = 44
BYTES_PER_SECOND = SAMPLE_RATE * CHANNELS * SAMPLE_BYTES


def wav_header(data_bytes: int) -> bytes:
    """The header for `data_bytes` of interleaved stereo PCM16 that follow it."""
    block = CHANNELS * SAMPLE_BYTES
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        CHANNELS,
        SAMPLE_RATE,
        SAMPLE_RATE * block,
        block,
        SAMPLE_BYTES * 8,
        b"data",
        data_bytes,
    )


def duration_s(data_bytes: int) -> float:
    return data_bytes / BYTES_PER_SECOND
