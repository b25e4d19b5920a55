"""The bounded inference pool: work off the loop, a hard bound on pending jobs, honest counting."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from agents.engines.local.pool import InferenceOverloaded, InferencePool


async def test_runs_work_on_a_pool_thread() -> None:
    pool = InferencePool("t", max_workers=1, max_pending=2)
    try:
        name = await pool.run(lambda: threading.current_thread().name)
        assert name.startswith("infer-t")
        assert pool.pending == 0
    finally:
        pool.close()


async def test_refuses_work_past_the_bound_and_counts_running_jobs_until_they_end() -> None:
    pool = InferencePool("t", max_workers=1, max_pending=2)
    release = threading.Event()
    try:
        running = asyncio.create_task(pool.run(release.wait))
        queued = asyncio.create_task(pool.run(release.wait))
        await asyncio.sleep(0.05)
        with pytest.raises(InferenceOverloaded, match="2 jobs pending"):
            await pool.run(release.wait)
        queued.cancel()  # dropped before it started: no longer pending
        running.cancel()  # still on its thread: still pending
        await asyncio.sleep(0.05)
        assert pool.pending == 1
        release.set()
        for _ in range(100):
            if pool.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.pending == 0
    finally:
        release.set()
        pool.close()


def test_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        InferencePool("t", max_workers=2, max_pending=1)


async def test_reports_queued_jobs_and_the_recent_real_time_load() -> None:
    pool = InferencePool("load", max_workers=1, max_pending=4)
    release = threading.Event()
    try:
        assert pool in InferencePool.live() and pool.queued == 0 and pool.recent_load(1.0) == 0.0
        running = asyncio.create_task(pool.run(release.wait))
        queued = asyncio.create_task(pool.run(release.wait))
        await asyncio.sleep(0.3)
        assert pool.queued == 1  # one job runs, one waits for the only worker
        assert pool.recent_load(0.2) == pytest.approx(1.0, abs=0.05)  # busy the whole window
        release.set()
        await asyncio.gather(running, queued)
        assert pool.queued == 0
        assert pool.recent_load(0.2, now=time.monotonic() + 10) == 0.0  # nothing ran in a window long after
    finally:
        pool.close()
