"""G.711 mu-law <-> PCM16: Twilio carries 8 kHz mu-law in 20 ms frames; the pipeline works in PCM16."""

from __future__ import annotations

import sys
import warnings

if sys.version_info < (3, 13):
    with warnings.catch_warnings():  # stdlib audioop: deprecated in 3.11-3.12, C-fast, exact G.711
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
else:  # pragma: no cover - audioop-lts provides the same module from 3.13 on
    import audioop

__all__ = ["FRAME_MS", "MULAW_FRAME_BYTES", "MULAW_SILENCE", "TWILIO_SAMPLE_RATE", "audioop"]

TWILIO_SAMPLE_RATE = 8000
FRAME_MS = 20
MULAW_FRAME_BYTES = TWILIO_SAMPLE_RATE * FRAME_MS // 1000  # 160 bytes = 20 ms
MULAW_SILENCE = b"\xff"


def mulaw_to_pcm16(data: bytes) -> bytes:
    """Decode G.711 mu-law to PCM16 little-endian."""
    return audioop.ulaw2lin(data, 2)


def pcm16_to_mulaw(data: bytes) -> bytes:
    """Encode PCM16 little-endian to G.711 mu-law (an odd trailing byte is dropped)."""
    return audioop.lin2ulaw(data[: len(data) & ~1], 2)


def pcm16_duration_ms(data: bytes, sample_rate: int) -> float:
    return len(data) / 2 / sample_rate * 1000
