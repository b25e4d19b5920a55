"""Reading the pod's memory limit and usage from fake cgroup v1 and v2 trees, and the fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony.pod_health.memory import MemoryReader
from tests.support.cgroups import (
    V1_MOUNTINFO,
    V1_UNLIMITED,
    V2_MOUNTINFO,
    MiB,
    cgroup_v1,
    cgroup_v2,
    proc,
    write,
)

FALLBACK = 1024 * MiB


class TestCgroupV2:
    def test_limit_usage_and_events(self, tmp_path: Path) -> None:
        cgroup_v2(
            tmp_path,
            max_=str(768 * MiB),
            current=500 * MiB,
            events="low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\n",
        )
        reader = MemoryReader(FALLBACK, root=tmp_path)
        reading = reader.read()
        assert reader.cgroup_version == 2
        assert reading.source == "cgroup2" and reading.limit_from_cgroup
        assert (reading.used_bytes, reading.limit_bytes) == (500 * MiB, 768 * MiB)
        assert (reading.limit_hits, reading.oom_kills) == (7, 1)
        assert reading.fraction == pytest.approx(500 / 768)

    def test_max_means_unlimited_and_the_configured_limit_applies(self, tmp_path: Path) -> None:
        cgroup_v2(tmp_path, max_="max", current=200 * MiB)
        reading = MemoryReader(512 * MiB, root=tmp_path).read()
        assert reading.source == "cgroup2"
        assert not reading.limit_from_cgroup
        # Without a limit the group may hold other processes: this process's RSS is what counts.
        assert (reading.used_bytes, reading.limit_bytes) == (50_000 * 1024, 512 * MiB)
        assert reading.cgroup_usage_bytes == 200 * MiB

    def test_reclaimable_page_cache_is_not_counted(self, tmp_path: Path) -> None:
        cgroup_v2(tmp_path, current=900 * MiB, inactive_file=400 * MiB)
        reading = MemoryReader(FALLBACK, root=tmp_path).read()
        assert reading.used_bytes == 500 * MiB
        assert reading.cgroup_usage_bytes == 900 * MiB

    def test_a_parents_tighter_limit_binds(self, tmp_path: Path) -> None:
        cgroup_v2(tmp_path, max_="max", parent_max=str(640 * MiB))
        reading = MemoryReader(FALLBACK, root=tmp_path).read()
        assert reading.limit_from_cgroup and reading.limit_bytes == 640 * MiB

    def test_namespaced_container_sees_its_cgroup_at_the_mount(self, tmp_path: Path) -> None:
        cgroup_v2(tmp_path, path="/", max_=str(256 * MiB), current=100 * MiB)
        reading = MemoryReader(FALLBACK, root=tmp_path).read()
        assert (reading.used_bytes, reading.limit_bytes) == (100 * MiB, 256 * MiB)

    def test_usage_is_read_afresh_each_time(self, tmp_path: Path) -> None:
        directory = cgroup_v2(tmp_path, current=100 * MiB)
        reader = MemoryReader(FALLBACK, root=tmp_path)
        assert reader.read().used_bytes == 100 * MiB
        write(directory / "memory.current", f"{700 * MiB}\n")
        assert reader.read().used_bytes == 700 * MiB


class TestCgroupV1:
    def test_limit_usage_failcnt_and_oom_kills(self, tmp_path: Path) -> None:
        cgroup_v1(tmp_path, limit=str(1024 * MiB), usage=600 * MiB, failcnt=12, oom_kill=3)
        reader = MemoryReader(FALLBACK, root=tmp_path)
        reading = reader.read()
        assert reader.cgroup_version == 1
        assert reading.source == "cgroup1" and reading.limit_from_cgroup
        assert (reading.used_bytes, reading.limit_bytes) == (600 * MiB, 1024 * MiB)
        assert (reading.limit_hits, reading.oom_kills) == (12, 3)

    def test_huge_limit_means_unlimited(self, tmp_path: Path) -> None:
        cgroup_v1(tmp_path, limit=V1_UNLIMITED, usage=300 * MiB)
        reading = MemoryReader(2048 * MiB, root=tmp_path).read()
        assert not reading.limit_from_cgroup
        assert (reading.used_bytes, reading.limit_bytes) == (50_000 * 1024, 2048 * MiB)
        assert reading.cgroup_usage_bytes == 300 * MiB

    def test_hierarchical_inactive_file_is_subtracted(self, tmp_path: Path) -> None:
        cgroup_v1(tmp_path, usage=800 * MiB, inactive_file=300 * MiB)
        assert MemoryReader(FALLBACK, root=tmp_path).read().used_bytes == 500 * MiB

    def test_host_path_not_visible_in_the_container_falls_back_to_the_mount(self, tmp_path: Path) -> None:
        # /proc/self/cgroup names the host's path; only the container's own group is mounted.
        cgroup_v1(tmp_path, path="/docker/0123abcd", directory=tmp_path / "sys/fs/cgroup/memory", usage=42 * MiB)
        reading = MemoryReader(FALLBACK, root=tmp_path).read()
        assert (reading.source, reading.used_bytes) == ("cgroup1", 42 * MiB)

    def test_mount_of_a_sub_hierarchy_is_resolved_from_mountinfo(self, tmp_path: Path) -> None:
        mountinfo = "35 31 0:32 /docker/0123abcd /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n"
        cgroup_v1(
            tmp_path,
            path="/docker/0123abcd/worker",
            mountinfo=mountinfo,
            directory=tmp_path / "sys/fs/cgroup/memory/worker",
            limit=str(333 * MiB),
        )
        assert MemoryReader(FALLBACK, root=tmp_path).read().limit_bytes == 333 * MiB

    def test_hybrid_host_uses_v1_when_v2_has_no_memory_controller(self, tmp_path: Path) -> None:
        cgroup_v1(
            tmp_path,
            mountinfo=V1_MOUNTINFO + "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            usage=123 * MiB,
        )
        (tmp_path / "sys/fs/cgroup/unified").mkdir(parents=True)
        reader = MemoryReader(FALLBACK, root=tmp_path)
        assert reader.cgroup_version == 1 and reader.read().used_bytes == 123 * MiB


class TestFallback:
    def test_no_cgroup_uses_process_rss_and_the_configured_limit(self, tmp_path: Path) -> None:
        proc(tmp_path, "0::/\n", V2_MOUNTINFO, rss_kb=150_000)  # a v2 mount with no memory files
        reader = MemoryReader(FALLBACK, root=tmp_path)
        reading = reader.read()
        assert reader.cgroup_version is None
        assert reading.source == "process" and not reading.limit_from_cgroup
        assert (reading.used_bytes, reading.limit_bytes) == (150_000 * 1024, FALLBACK)
        assert reading.oom_kills is None

    def test_no_proc_at_all_still_reads_something(self, tmp_path: Path) -> None:
        reading = MemoryReader(FALLBACK, root=tmp_path).read()
        assert reading.source == "process" and reading.used_bytes > 0

    def test_a_cgroup_that_disappears_falls_back_to_the_process(self, tmp_path: Path) -> None:
        directory = cgroup_v2(tmp_path)
        reader = MemoryReader(FALLBACK, root=tmp_path)
        (directory / "memory.current").unlink()
        assert reader.read().source == "process"

    def test_garbage_in_the_files_falls_back_rather_than_failing(self, tmp_path: Path) -> None:
        directory = cgroup_v1(tmp_path)
        write(directory / "memory.usage_in_bytes", "not a number\n")
        assert MemoryReader(FALLBACK, root=tmp_path).read().source == "process"

    def test_non_positive_fallback_limit_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError):
            MemoryReader(0, root=tmp_path)


def test_this_machine_reads_a_plausible_figure() -> None:
    reading = MemoryReader(FALLBACK).read()
    assert 1 * MiB < reading.used_bytes < 1 << 50
    assert reading.limit_bytes > 0
