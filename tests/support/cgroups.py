"""Fake cgroup v1 and v2 trees (and /proc files) under a temporary root, for `MemoryReader(root=...)`."""

from __future__ import annotations

from pathlib import Path

from telephony.pod_health.memory import MemoryReader

MiB = 1024 * 1024
V1_UNLIMITED = "9223372036854771712"
"""What the kernel writes to `memory.limit_in_bytes` when no limit is set."""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def proc(root: Path, cgroup: str, mountinfo: str = "", rss_kb: int = 50_000) -> None:
    write(root / "proc/self/cgroup", cgroup)
    write(root / "proc/self/mountinfo", mountinfo)
    write(root / "proc/self/status", f"Name:\tpython\nVmPeak:\t 999999 kB\nVmRSS:\t {rss_kb} kB\nThreads:\t4\n")


V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
V1_MOUNTINFO = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
)


def cgroup_v2(
    root: Path,
    *,
    path: str = "/kubepods/pod1/app",
    max_: str = str(1024 * MiB),
    current: int = 300 * MiB,
    inactive_file: int = 0,
    events: str = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
    parent_max: str | None = None,
) -> Path:
    """A v2 tree with the process in `path`; returns its cgroup directory."""
    proc(root, f"0::{path}\n", V2_MOUNTINFO)
    directory = root / "sys/fs/cgroup" / path.lstrip("/")
    write(directory / "memory.max", max_ + "\n")
    write(directory / "memory.current", f"{current}\n")
    write(directory / "memory.events", events)
    stat = f"anon {current - inactive_file}\nfile {inactive_file}\ninactive_file {inactive_file}\n"
    write(directory / "memory.stat", stat)
    if parent_max is not None:
        write(directory.parent / "memory.max", parent_max + "\n")
    return directory


def cgroup_v1(
    root: Path,
    *,
    path: str = "/kubepods/pod1/app",
    limit: str = str(1024 * MiB),
    usage: int = 300 * MiB,
    inactive_file: int = 0,
    failcnt: int = 0,
    oom_kill: int = 0,
    mountinfo: str = V1_MOUNTINFO,
    directory: Path | None = None,
) -> Path:
    """A v1 memory hierarchy with the process in `path`; returns its cgroup directory."""
    proc(root, f"12:cpu,cpuacct:{path}\n4:memory:{path}\n1:name=systemd:{path}\n0::/\n", mountinfo)
    directory = directory or root / "sys/fs/cgroup/memory" / path.lstrip("/")
    write(directory / "memory.limit_in_bytes", limit + "\n")
    write(directory / "memory.usage_in_bytes", f"{usage}\n")
    write(directory / "memory.failcnt", f"{failcnt}\n")
    write(directory / "memory.oom_control", f"oom_kill_disable 0\nunder_oom 0\noom_kill {oom_kill}\n")
    write(directory / "memory.stat", f"rss {usage}\ninactive_file 0\ntotal_inactive_file {inactive_file}\n")
    return directory


LIMIT = 1000 * MiB
"""The fake cgroup's memory limit."""


class FakeCgroup:
    """A v2 cgroup with a 1000 MiB limit whose usage the test sets in percent."""

    def __init__(self, root: Path, percent: float = 30) -> None:
        self.directory = cgroup_v2(root, max_=str(LIMIT), current=int(LIMIT * percent / 100))
        self.reader = MemoryReader(root=root)

    def use(self, percent: float) -> None:
        write(self.directory / "memory.current", f"{int(LIMIT * percent / 100)}\n")
