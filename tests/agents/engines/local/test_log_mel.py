"""Our Whisper log-mel features against faster-whisper's own numpy extractor, on real speech."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from agents.engines.local.log_mel import N_MELS, LogMel, mel_filterbank
from tests.support.speech import load

EIGHT_SECONDS = 8 * 16000


def as_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


@pytest.mark.parametrize("name", ["order_number", "interrupt"])
def test_features_match_faster_whisper(name: str) -> None:
    speech = as_float(load(name))
    audio = np.pad(speech, (EIGHT_SECONDS - speech.size, 0))  # as Smart Turn gets it: zeros in front
    reference = FeatureExtractor()(audio, padding=0)
    ours = LogMel()(audio)
    assert ours.shape == reference.shape == (N_MELS, 800)
    difference = float(np.abs(ours - reference).max())
    print(f"{name}: max |ours - faster-whisper| = {difference:.2e}")
    assert difference < 1e-4


def test_filterbank_matches_and_lengths_follow_the_hop() -> None:
    assert np.abs(mel_filterbank() - FeatureExtractor.get_mel_filters(16000, 400, n_mels=80)).max() < 1e-7
    features = LogMel()
    assert features(np.zeros(16000, dtype=np.float32)).shape == (N_MELS, 100)
    assert np.isfinite(features(np.zeros(16000, dtype=np.float32))).all()  # silence: the floor, no NaN


def test_too_short_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="needs more than 200 samples"):
        LogMel()(np.zeros(100, dtype=np.float32))
