"""Smart Turn v3.2 on the real model: the pinned file, its graph, and how it judges phone speech."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from agents.engines.local.model_files import ModelFileError, package_dir
from agents.engines.local.pool import InferenceOverloaded, InferencePool
from agents.engines.local.silero import silero_vad_path
from agents.engines.local.smart_turn import MODEL_IN_PACKAGE, SmartTurnModel, smart_turn_path
from telephony.audio.resamplers import StreamResampler
from telephony.simulator.caller_audio import read_wav
from tests.support.speech import frames, silence

TURNS_DIR = Path(__file__).resolve().parents[3] / "fixtures" / "turns"


def load_turn(name: str) -> bytes:
    """A fixture through the inbound 8k -> 16k path, as a call hears it."""
    samples, rate = read_wav(TURNS_DIR / f"{name}.wav")
    resampler = StreamResampler(rate, 16000)
    pieces = [resampler.process(chunk) for chunk in frames(samples.tobytes(), 320)]
    return b"".join(pieces) + resampler.flush()


@pytest.fixture(scope="module")
def model() -> SmartTurnModel:
    return SmartTurnModel()


def test_complete_question_scores_above_the_same_question_cut(model: SmartTurnModel) -> None:
    """The whole question against its first words spoken mid-sentence (espeak-ng, phone line),
    each with the 200 ms of pause the listener waits before asking."""
    complete = model.probability(load_turn("open_tomorrow") + silence(200))
    cut = model.probability(load_turn("open_tomorrow_cut") + silence(200))
    print(f"complete {complete:.3f}, cut {cut:.3f}")
    assert complete > 0.8 and complete - cut > 0.3  # measured: 0.94 and 0.46 (the cut one wavers)


def test_long_turns_are_judged_on_their_last_eight_seconds(model: SmartTurnModel) -> None:
    turn = load_turn("open_tomorrow") + silence(200)
    assert model.probability(silence(9000) + turn) == pytest.approx(model.probability(turn), abs=1e-6)
    assert 0.0 <= model.probability(b"") <= 1.0  # nothing heard: an answer, not a crash
    assert 0.0 <= model.probability(b"\x01") <= 1.0  # an odd byte count is not a crash either


async def test_completion_runs_on_the_pool_and_is_bounded() -> None:
    pool = InferencePool("smart-turn-test", max_workers=1, max_pending=1)
    model = SmartTurnModel(pool=pool)
    try:
        turn = load_turn("open_tomorrow") + silence(200)
        assert await model.completion(turn) == pytest.approx(model.probability(turn))
        running = asyncio.create_task(model.completion(turn))
        await asyncio.sleep(0)
        with pytest.raises(InferenceOverloaded):
            await model.completion(turn)
        await running
    finally:
        pool.close()


def test_the_pinned_file_is_found_without_importing_pipecat() -> None:
    assert smart_turn_path() == package_dir("pipecat", "pipecat-ai") / MODEL_IN_PACKAGE


def test_a_tampered_copy_is_refused(tmp_path: Path) -> None:
    target = tmp_path / MODEL_IN_PACKAGE
    target.parent.mkdir(parents=True)
    shutil.copyfile(smart_turn_path(), target)
    with target.open("r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(ModelFileError, match="refusing to load it"):
        smart_turn_path(tmp_path)
    with pytest.raises(ModelFileError, match="does not exist"):
        smart_turn_path(tmp_path / "elsewhere")


def test_a_wrong_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not Smart Turn v3"):
        SmartTurnModel(silero_vad_path())
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a graph")
    with pytest.raises(ModelFileError, match="cannot load end-of-turn model"):
        SmartTurnModel(junk)
