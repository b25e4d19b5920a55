"""Heap snapshots: bounded (top N sites and types, never the whole heap), one at a time, and refused
while memory is near the limit or too little headroom is left for the copy."""

from __future__ import annotations

import logging
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from telephony.pod_health.guard import MemorySampler
from telephony.pod_health.heap_snapshot import (
    MAX_SNAPSHOT_BYTES,
    MAX_TYPE_CHARS,
    MIN_INTERVAL_S,
    SNAPSHOT_SIGNAL,
    HeapSnapshot,
    HeapSnapshots,
    SnapshotRefused,
    install_signal,
)
from telephony.pod_health.memory import MemoryReader
from telephony.pod_health.memory_report import MAX_SITE_CHARS, MAX_TOP_SITES, start_tracemalloc
from tests.support.cgroups import MiB, cgroup_v2, write
from tests.support.waiting import until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tracing() -> Iterator[None]:
    started = start_tracemalloc(1)
    yield
    if started:
        tracemalloc.stop()


def sampler(root: Path, current_mib: int) -> tuple[MemorySampler, Path]:
    directory = cgroup_v2(root, max_=str(1000 * MiB), current=current_mib * MiB)
    return MemorySampler(MemoryReader(root=root)), directory


async def test_a_snapshot_lists_the_top_sites_and_types_and_stays_bounded(tmp_path: Path, tracing: None) -> None:
    memory, _ = sampler(tmp_path, 300)
    held = [bytearray(2048) for _ in range(2048)]  # the largest site while the snapshot is taken

    snapshot = await HeapSnapshots(memory, top_n=5).take()

    assert snapshot.tracemalloc and snapshot.traced_bytes is not None and snapshot.guard_state == "ok"
    assert (snapshot.used_bytes, snapshot.limit_bytes) == (300 * MiB, 1000 * MiB)
    assert 1 <= len(snapshot.sites) <= 5 and len(snapshot.types) == 5
    assert snapshot.sites[0].where.split(":")[0].endswith("test_heap_snapshot.py")
    assert snapshot.sites[0].size_bytes >= 4 * MiB and snapshot.sites[0].count >= 2048
    assert snapshot.gc_tracked_objects >= snapshot.types[0].count > 0
    assert [t.count for t in snapshot.types] == sorted((t.count for t in snapshot.types), reverse=True)
    del held


async def test_even_the_largest_snapshot_fits_its_byte_bound(tmp_path: Path, tracing: None) -> None:
    memory, _ = sampler(tmp_path, 300)
    snapshot = await HeapSnapshots(memory, top_n=10_000).take()
    assert len(snapshot.sites) <= MAX_TOP_SITES and len(snapshot.types) <= MAX_TOP_SITES
    assert all(len(s.where) <= MAX_SITE_CHARS for s in snapshot.sites)
    assert all(len(t.type) <= MAX_TYPE_CHARS for t in snapshot.types)
    # Every entry at its longest still fits: the bound holds by construction, not by luck.
    longest = snapshot.model_copy(
        update={
            "sites": [s.model_copy(update={"where": "x" * MAX_SITE_CHARS}) for s in snapshot.sites]
            + [snapshot.sites[0].model_copy(update={"where": "x" * MAX_SITE_CHARS})]
            * (MAX_TOP_SITES - len(snapshot.sites)),
            "types": [snapshot.types[0].model_copy(update={"type": "t" * MAX_TYPE_CHARS})] * MAX_TOP_SITES,
        }
    )
    assert len(longest.model_dump_json()) <= MAX_SNAPSHOT_BYTES


async def test_without_tracemalloc_only_the_type_census_comes(tmp_path: Path) -> None:
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc runs in this process (PYTHONTRACEMALLOC)")
    memory, _ = sampler(tmp_path, 300)
    snapshot = await HeapSnapshots(memory).take()
    assert not snapshot.tracemalloc and snapshot.sites == [] and snapshot.traced_bytes is None
    assert len(snapshot.types) == 10


@pytest.mark.parametrize("current_mib", [820, 950])  # soft (80 %) and hard (90 %)
async def test_refused_while_memory_is_at_the_soft_threshold_or_above(tmp_path: Path, current_mib: int) -> None:
    memory, _ = sampler(tmp_path, current_mib)
    with pytest.raises(SnapshotRefused) as refused:
        await HeapSnapshots(memory).take()
    assert (refused.value.status, refused.value.reason) == (503, "memory")
    assert "threshold" in refused.value.detail


async def test_refused_when_the_trace_copy_would_not_fit_the_headroom(tmp_path: Path, tracing: None) -> None:
    memory, directory = sampler(tmp_path, 300)
    headroom = tracemalloc.get_tracemalloc_memory()  # less than twice the trace store is left
    write(directory / "memory.max", f"{300 * MiB + headroom}\n")
    write(directory / "memory.current", f"{300 * MiB}\n")
    memory = MemorySampler(MemoryReader(root=tmp_path), soft=0.999999, hard=0.9999999)
    with pytest.raises(SnapshotRefused) as refused:
        await HeapSnapshots(memory).take()
    assert (refused.value.status, refused.value.reason) == (503, "headroom")


async def test_one_at_a_time_and_not_too_often(tmp_path: Path) -> None:
    memory, _ = sampler(tmp_path, 300)
    clock = Clock()
    snapshots = HeapSnapshots(memory, clock=clock)
    await snapshots.take()
    clock.now += MIN_INTERVAL_S / 2
    with pytest.raises(SnapshotRefused) as refused:
        await snapshots.take()
    assert (refused.value.status, refused.value.reason) == (409, "busy")
    clock.now += MIN_INTERVAL_S
    await snapshots.take()


async def test_sigusr2_logs_one_bounded_snapshot(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="switchboard.memory")
    memory, _ = sampler(tmp_path, 300)
    uninstall = install_signal(HeapSnapshots(memory, top_n=4))
    try:
        os.kill(os.getpid(), SNAPSHOT_SIGNAL)
        await until(lambda: any(r.message == "heap snapshot" for r in caplog.records), what="the logged snapshot")
    finally:
        uninstall()
    [line] = [r for r in caplog.records if r.message == "heap snapshot"]
    snapshot = HeapSnapshot.model_validate_json(line.__dict__["snapshot"])
    assert len(snapshot.types) == 4 and len(line.__dict__["snapshot"]) <= MAX_SNAPSHOT_BYTES
