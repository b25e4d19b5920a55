"""Semantic end of turn with Smart Turn v3.2 (Daily, BSD-2), run by onnxruntime directly.

The model hears how a turn ends (intonation, a word cut short, a trailing "and") and says how
likely the speaker is done. The 8 MB int8 CPU export ships inside the `pipecat-ai==1.14.0` wheel;
it is located without importing pipecat and refused unless its sha256 is the pinned one.

Input: Whisper log-mel features (`log_mel.LogMel`) of the LAST 8 s of the turn at 16 kHz, padded
with zeros at the front when shorter, after zero-mean unit-variance normalisation of the waveform
(the model was trained on Hugging Face's Whisper extractor with `do_normalize=True`). Output: a
probability in [0, 1] (the graph ends in a sigmoid). One run costs 30-50 ms on one core, so it
runs on an `InferencePool` thread and never on the event loop; the pool bounds the jobs pending.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.engines.local.log_mel import HOP, N_MELS, SAMPLE_RATE, LogMel
from agents.engines.local.model_files import ModelFileError, package_dir, verified
from agents.engines.local.onnx_session import single_thread_session
from agents.engines.local.pool import InferencePool

SMART_TURN_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
WINDOW_SECONDS = 8
"""The model judges the last 8 s of a turn."""
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
FRAMES = WINDOW_SAMPLES // HOP
NORM_EPS = 1e-7
"""Variance floor of the waveform normalisation (silence stays finite)."""
MAX_PENDING = 8
"""Default bound on model runs queued or running in the pod; past it `InferenceOverloaded`."""


MODEL_IN_PACKAGE = Path("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")
"""Where the file sits inside the `pipecat` package folder."""


def smart_turn_path(package: Path | None = None) -> Path:
    """pipecat's copy of Smart Turn v3.2 (CPU), once its hash matches the pinned one. `package`:
    the `pipecat` package folder (found without importing it when None)."""
    folder = package or package_dir("pipecat", "--no-deps pipecat-ai==1.14.0")
    return verified(folder / MODEL_IN_PACKAGE, SMART_TURN_SHA256)


class SmartTurnModel:
    """The pod's shared end-of-turn model (an `EndOfTurnModel`): one single-threaded session."""

    def __init__(self, model_path: Path | None = None, pool: InferencePool | None = None) -> None:
        """`pool` may be shared with other small models; otherwise one worker and `MAX_PENDING` jobs."""
        path = model_path or smart_turn_path()
        self.session = single_thread_session(path, "end-of-turn model")
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if (
            list(inputs) != ["input_features"]
            or inputs["input_features"][1:] != [N_MELS, FRAMES]
            or outputs != ["logits"]
        ):
            raise ModelFileError(f"{path} is not Smart Turn v3 (inputs {inputs}, outputs {outputs})")
        self._features = LogMel()
        self._own_pool = pool is None
        self.pool = pool or InferencePool("smart-turn", max_workers=1, max_pending=MAX_PENDING)

    async def completion(self, pcm16k: bytes) -> float:
        """Probability that the turn in `pcm16k` (PCM16 mono, 16 kHz; its last 8 s count) is complete.
        Raises `InferenceOverloaded` when the pool is full."""
        return await self.pool.run(self.probability, pcm16k)

    def probability(self, pcm16k: bytes) -> float:
        """The blocking run behind `completion` (benchmarks and tests call it directly)."""
        tail = pcm16k[len(pcm16k) // 2 * 2 - WINDOW_SAMPLES * 2 :] if len(pcm16k) > WINDOW_SAMPLES * 2 else pcm16k
        samples = np.frombuffer(tail[: len(tail) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        audio = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        if samples.size:
            audio[-samples.size :] = samples
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + NORM_EPS)
        features = self._features(audio)[None, :, :].astype(np.float32)
        (logits,) = self.session.run(["logits"], {"input_features": features})
        return float(np.clip(np.asarray(logits).reshape(-1)[0], 0.0, 1.0))

    async def warm_up(self) -> None:
        """One run, so the first caller does not pay onnxruntime's first-run cost."""
        await self.completion(bytes(SAMPLE_RATE * 2))

    def close(self) -> None:
        """Stop the pool this model made (a shared pool is its owner's to close)."""
        if self._own_pool:
            self.pool.close()
