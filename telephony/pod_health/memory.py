"""How much memory the pod may use and how much it uses, read the way the kernel counts it.

The OOM killer acts on the container's cgroup, not on the process, so the guard reads the cgroup:
v2 (`memory.max`, `memory.current`, `memory.events`) or v1 (`memory.limit_in_bytes`,
`memory.usage_in_bytes`, `memory.failcnt`, `memory.oom_control`). The process's own cgroup comes
from `/proc/self/cgroup` and `/proc/self/mountinfo`; the limit is the smallest one set on it or
its ancestors. Usage is the working set (usage less inactive file cache, as the kubelet counts it),
because page cache the kernel can reclaim (model files read at start-up) is not what kills a pod.

Without a cgroup limit (a laptop, a host with "max"), the budget is a configured limit and usage
is the process's resident set (`VmRSS`). Every path is read under `root`, so tests point it at a
fake tree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

UNLIMITED_ABOVE = 1 << 60
"""A cgroup v1 limit at or above this (1 EiB) means "no limit" (the kernel writes ~2**63)."""

Source = Literal["cgroup2", "cgroup1", "process"]


@dataclass(frozen=True, slots=True)
class MemoryReading:
    """One sample of the pod's memory."""

    used_bytes: int
    """What counts against the limit: the cgroup's working set, or the process RSS."""
    limit_bytes: int
    """The cgroup's limit, or the configured one where the cgroup sets none."""
    source: Source
    """Where `used_bytes` came from."""
    limit_from_cgroup: bool
    """False when `limit_bytes` is the configured fallback."""
    cgroup_usage_bytes: int | None = None
    """The cgroup's raw usage, page cache included (None without a cgroup)."""
    limit_hits: int | None = None
    """Times usage hit the limit (v2 `memory.events` max, v1 `memory.failcnt`)."""
    oom_kills: int | None = None
    """Processes the kernel OOM-killed in the cgroup (v2 `memory.events`, v1 `memory.oom_control`)."""

    @property
    def fraction(self) -> float:
        """Share of the limit in use (0.0 ... and above 1.0 only with a configured limit)."""
        return self.used_bytes / self.limit_bytes


@dataclass(frozen=True, slots=True)
class _Cgroup:
    version: Literal[1, 2]
    path: Path
    """The process's cgroup directory (under `root`)."""
    top: Path
    """The hierarchy's mount point: ancestors are walked up to here for the limit."""


class MemoryReader:
    """Reads `MemoryReading`s; finds the cgroup once, then a sample is a handful of small reads."""

    def __init__(self, fallback_limit_bytes: int = 1 << 30, root: Path = Path("/")) -> None:
        if fallback_limit_bytes <= 0:
            raise ValueError("fallback_limit_bytes must be positive")
        self.fallback_limit_bytes = fallback_limit_bytes
        self.root = root
        self._cgroup = _find_cgroup(root)

    @property
    def cgroup_version(self) -> int | None:
        return self._cgroup.version if self._cgroup else None

    def read(self) -> MemoryReading:
        cgroup = self._cgroup
        if cgroup is not None:
            try:
                read = _read_v2 if cgroup.version == 2 else _read_v1
                reading = read(cgroup, self.fallback_limit_bytes)
            except (OSError, ValueError):
                pass  # the cgroup went away or is unreadable: the process view still works
            else:
                if reading.limit_from_cgroup:
                    return reading
                # No limit on the group (a shared or host-wide one): its usage counts other
                # processes too, so the configured budget is held against this process alone.
                return dataclasses.replace(reading, used_bytes=_rss(self.root))
        return MemoryReading(_rss(self.root), self.fallback_limit_bytes, "process", limit_from_cgroup=False)


# -- finding the cgroup ------------------------------------------------------------------------


def _find_cgroup(root: Path) -> _Cgroup | None:
    """The process's memory cgroup: v2 if its directory has the memory files (a v2 hierarchy
    without the memory controller, as in hybrid mode, does not count), else v1's memory one."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    mounts = _mounts(root)
    if v2_path is not None:
        for mount_root, point in mounts.get("cgroup2", []):
            found = _locate(root, point, mount_root, v2_path, "memory.current")
            if found is not None:
                return _Cgroup(2, found, root / point.lstrip("/"))
    if v1_path is not None:
        for mount_root, point in mounts.get("memory", []):
            found = _locate(root, point, mount_root, v1_path, "memory.usage_in_bytes")
            if found is not None:
                return _Cgroup(1, found, root / point.lstrip("/"))
    return None


def _mounts(root: Path) -> dict[str, list[tuple[str, str]]]:
    """(hierarchy root, mount point) of the cgroup2 mounts and of v1 mounts with the memory
    controller, from mountinfo; the conventional places when mountinfo cannot be read."""
    found: dict[str, list[tuple[str, str]]] = {"cgroup2": [], "memory": []}
    try:
        lines = (root / "proc/self/mountinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        # id parent major:minor root mount-point options [optional...] - fstype source super-options
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        mount_root, point = _unescape(fields[3]), _unescape(fields[4])
        if tail[0] == "cgroup2":
            found["cgroup2"].append((mount_root, point))
        elif tail[0] == "cgroup" and "memory" in tail[2].split(","):
            found["memory"].append((mount_root, point))
    found["cgroup2"].append(("/", "/sys/fs/cgroup"))
    found["memory"].append(("/", "/sys/fs/cgroup/memory"))
    return found


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _locate(root: Path, point: str, mount_root: str, cgroup_path: str, probe: str) -> Path | None:
    """The directory of `cgroup_path` under the mount, if it holds `probe`. A container that sees
    the host's path for its cgroup but has only its own cgroup mounted gets the mount itself."""
    base = root / point.lstrip("/")
    candidates = []
    try:
        relative = PurePosixPath(cgroup_path).relative_to(mount_root)
        candidates.append(base / relative)
    except ValueError:
        pass
    candidates.append(base)
    for candidate in candidates:
        if (candidate / probe).is_file():
            return candidate
    return None


# -- reading it ----------------------------------------------------------------------------------


def _read_v2(cgroup: _Cgroup, fallback: int) -> MemoryReading:
    usage = _int(cgroup.path / "memory.current")
    limit = _smallest_limit(cgroup, "memory.max", _v2_limit)
    events = _keyed(cgroup.path / "memory.events")
    inactive = _keyed(cgroup.path / "memory.stat").get("inactive_file", 0)
    return MemoryReading(
        used_bytes=max(usage - inactive, 0),
        limit_bytes=limit or fallback,
        source="cgroup2",
        limit_from_cgroup=limit is not None,
        cgroup_usage_bytes=usage,
        limit_hits=events.get("max"),
        oom_kills=events.get("oom_kill"),
    )


def _read_v1(cgroup: _Cgroup, fallback: int) -> MemoryReading:
    usage = _int(cgroup.path / "memory.usage_in_bytes")
    limit = _smallest_limit(cgroup, "memory.limit_in_bytes", _v1_limit)
    stat = _keyed(cgroup.path / "memory.stat")
    inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    failcnt = _optional_int(cgroup.path / "memory.failcnt")
    oom_kills = _keyed(cgroup.path / "memory.oom_control").get("oom_kill")
    return MemoryReading(
        used_bytes=max(usage - inactive, 0),
        limit_bytes=limit or fallback,
        source="cgroup1",
        limit_from_cgroup=limit is not None,
        cgroup_usage_bytes=usage,
        limit_hits=failcnt,
        oom_kills=oom_kills,
    )


def _v2_limit(text: str) -> int | None:
    return None if text == "max" else int(text)


def _v1_limit(text: str) -> int | None:
    value = int(text)
    return None if value >= UNLIMITED_ABOVE else value


def _smallest_limit(cgroup: _Cgroup, name: str, parse: Callable[[str], int | None]) -> int | None:
    """The tightest limit on the cgroup and its ancestors up to the mount point (a parent's limit
    binds the child too)."""
    limits = []
    directory = cgroup.path
    while True:
        try:
            limit = parse((directory / name).read_text().strip())
        except (OSError, ValueError):
            limit = None  # the root cgroup has no limit file
        if limit is not None:
            limits.append(limit)
        if directory == cgroup.top or cgroup.top not in directory.parents:
            break
        directory = directory.parent
    return min(limits) if limits else None


def _int(path: Path) -> int:
    return int(path.read_text().strip())


def _optional_int(path: Path) -> int | None:
    try:
        return _int(path)
    except (OSError, ValueError):
        return None


def _keyed(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file (`key value` lines); empty when it cannot be read."""
    values: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = int(value)
        except ValueError:
            continue
    return values


def process_rss(root: Path = Path("/")) -> int:
    """The process's resident set (the memory report sets it beside the guard's reading)."""
    return _rss(root)


def _rss(root: Path) -> int:
    """The process's resident set from `/proc/self/status`, or `getrusage`'s peak where /proc is
    missing (an overestimate, which errs on the safe side; kilobytes on Linux)."""
    try:
        for line in (root / "proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
