"""Stateful stream resampling, per call and direction.

The pipeline works in PCM16 at 16 kHz and TTS engines speak at their own rate. Resamplers keep
filter state per call and direction, so 20 ms frames join up without clicks; `flush()` releases
what the filter still holds at the end of a chunk of speech.
"""

from __future__ import annotations

import numpy as np
import soxr

from telephony.audio.fir import FirResampler, UnsupportedRatio


class StreamResampler:
    """Resamples a PCM16 mono stream chunk by chunk, keeping filter state between chunks.

    `method` "fir" (the default) uses the low-latency polyphase FIR for simple ratios and soxr HQ
    otherwise; "QQ".."VHQ" force soxr at that quality (soxr holds back tens of milliseconds,
    see `telephony.audio.fir`). Output is aligned with input; `flush()` releases the tail.
    """

    def __init__(self, in_rate: int, out_rate: int, method: str = "fir") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._fir: FirResampler | None = None
        self._soxr: soxr.ResampleStream | None = None
        self.method = "passthrough"
        """What actually runs: "passthrough", "fir" or "soxr-<quality>"."""
        if in_rate != out_rate:
            try:
                if method != "fir":
                    raise UnsupportedRatio(method)
                self._fir = FirResampler(in_rate, out_rate)
                self.method = "fir"
            except UnsupportedRatio:
                quality = "HQ" if method == "fir" else method
                self._soxr = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)
                self.method = f"soxr-{quality}"
        self._odd_byte = b""

    def process(self, pcm: bytes) -> bytes:
        """Resample the next chunk; output may lag input by the filter's delay."""
        pcm = self._odd_byte + pcm
        usable = len(pcm) & ~1
        self._odd_byte = pcm[usable:]
        samples = np.frombuffer(pcm, dtype=np.int16, count=usable // 2)
        if self._fir is not None:
            return self._fir.process(samples).tobytes()
        if self._soxr is not None:
            return self._soxr.resample_chunk(samples).tobytes()
        return pcm[:usable]

    def flush(self) -> bytes:
        """Release the samples held in the filter and start afresh (end of a chunk of speech)."""
        self._odd_byte = b""
        if self._fir is not None:
            return self._fir.flush().tobytes()
        if self._soxr is not None:
            tail = self._soxr.resample_chunk(np.zeros(0, dtype=np.int16), last=True).tobytes()
            self._soxr.clear()
            return tail
        return b""

    def reset(self) -> None:
        """Forget buffered input without emitting it (after a barge-in `clear`)."""
        self._odd_byte = b""
        if self._fir is not None:
            self._fir.reset()
        if self._soxr is not None:
            self._soxr.clear()
