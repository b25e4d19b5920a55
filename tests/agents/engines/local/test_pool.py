"""The bounded inference pool: work off the loop, a hard bound on pending jobs, honest counting."""

from __future__ import annotations

import asyncio
import threading

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
