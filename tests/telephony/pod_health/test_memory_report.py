"""The memory breakdown: Python's heap beside the native estimate, gc, malloc and the bounded buffers,
tracemalloc's top sites when it runs, logged on an interval (0: off)."""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from telephony.pod import open_pod
from telephony.pod_health.memory import MemoryReading
from telephony.pod_health.memory_report import (
    BYTES_PER_BLOCK_ESTIMATE,
    MAX_TOP_SITES,
    MemoryReporter,
    memory_breakdown,
    start_tracemalloc,
)
from tests.support.settings import make_settings
from tests.support.waiting import until

READING = MemoryReading(used_bytes=300 << 20, limit_bytes=1 << 30, source="cgroup2", limit_from_cgroup=True)


@pytest.fixture(autouse=True)
def memory_logger_enabled() -> Iterator[None]:
    """The reporter's logger on, whatever logging configuration an earlier test left behind."""
    logger = logging.getLogger("switchboard.memory")
    disabled, logger.disabled = logger.disabled, False
    yield
    logger.disabled = disabled


@pytest.fixture
def tracing() -> Iterator[None]:
    started = start_tracemalloc(1)
    yield
    if started:
        tracemalloc.stop()


def test_without_tracemalloc_python_is_estimated_and_the_rest_is_native() -> None:
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc runs in this process (PYTHONTRACEMALLOC)")
    breakdown = memory_breakdown(READING, buffers=lambda: {"call_outcomes": (3, 1000)})

    assert (breakdown.used_bytes, breakdown.limit_bytes) == (300 << 20, 1 << 30)
    assert breakdown.python_bytes_source == "estimate"
    assert breakdown.python_bytes == breakdown.python_allocated_blocks * BYTES_PER_BLOCK_ESTIMATE
    assert breakdown.rss_bytes > 0 and breakdown.python_allocated_blocks > 0
    assert breakdown.native_estimate_bytes == max(breakdown.rss_bytes - breakdown.python_bytes, 0)
    assert breakdown.gc_tracked_objects > 1000 and len(breakdown.gc_generation_counts) == 3
    assert breakdown.buffers == {"call_outcomes": (3, 1000)}
    assert breakdown.top == () and breakdown.tracemalloc_peak_bytes is None
    fields = breakdown.log_fields()
    assert fields["buffer_call_outcomes"] == "3/1000" and fields["python_bytes_source"] == "estimate"
    assert all(isinstance(value, (str, int, float, type(None))) for value in fields.values())


def test_with_tracemalloc_the_top_sites_name_the_allocation(tracing: None) -> None:
    held = [bytearray(1024) for _ in range(4096)]  # 4 MiB from this line

    breakdown = memory_breakdown(READING, top_n=3)

    assert breakdown.python_bytes_source == "tracemalloc"
    assert breakdown.python_bytes >= 4 << 20 and breakdown.tracemalloc_peak_bytes is not None
    assert 1 <= len(breakdown.top) <= 3
    top = breakdown.top[0]
    assert top.where.endswith(f"test_memory_report.py:{held_line()}") and top.size_bytes >= 4 << 20
    assert top.count >= 4096
    assert breakdown.log_fields()["top_1"].startswith(top.where)
    assert len(memory_breakdown(READING, top_n=10_000).top) <= MAX_TOP_SITES
    del held


def held_line() -> int:
    """The line of the 4 MiB allocation above."""
    source = Path(__file__).read_text().splitlines()
    return next(n for n, line in enumerate(source, 1) if "4 MiB from this line" in line and "held =" in line)


async def test_the_reporter_logs_a_breakdown_on_its_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.memory")
    reporter = MemoryReporter(lambda: READING, interval_s=0.01, buffers=lambda: {"calls": (1, 16)})
    reporter.start()
    try:
        await until(lambda: sum(r.message == "memory breakdown" for r in caplog.records) >= 2)
    finally:
        await reporter.stop()
    line = next(r for r in caplog.records if r.message == "memory breakdown")
    assert line.__dict__["event"] == "memory_breakdown" and line.__dict__["buffer_calls"] == "1/16"
    for name in ("rss_bytes", "python_bytes", "native_estimate_bytes", "gc_tracked_objects", "used_bytes"):
        assert isinstance(line.__dict__[name], int), name


async def test_an_interval_of_zero_turns_the_report_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.memory")
    reporter = MemoryReporter(lambda: READING, interval_s=0)
    reporter.start()
    await asyncio.sleep(0.05)
    await reporter.stop()
    assert not [r for r in caplog.records if r.message == "memory breakdown"]
    with pytest.raises(ValueError):
        MemoryReporter(lambda: READING, interval_s=-1)


async def test_a_pod_reports_its_bounded_stores(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.memory")
    settings = make_settings(memory_report_interval_seconds=0.05, max_concurrent_calls=7)
    async with open_pod(settings):
        await until(lambda: any(r.message == "memory breakdown" for r in caplog.records))
    line = next(r for r in caplog.records if r.message == "memory breakdown")
    assert line.__dict__["buffer_calls"] == "0/7"
    assert line.__dict__["buffer_call_outcomes"] == f"0/{settings.call_outcomes_max}"
    assert "buffer_streams_pending_start" in line.__dict__ and "buffer_seen_calls" in line.__dict__
