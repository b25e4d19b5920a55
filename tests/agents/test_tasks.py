"""Cancel-and-wait: the task is finished when it returns, and only the task's cancellation is swallowed."""

from __future__ import annotations

import asyncio

import pytest

from agents.tasks import cancel_and_wait


async def test_the_task_has_finished_its_cleanup_when_it_returns() -> None:
    cleaned = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cleanup that takes a step of the loop
            cleaned.set()

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled() and cleaned.is_set()


async def test_no_task_and_a_finished_task_are_fine() -> None:
    await cancel_and_wait(None)
    task = asyncio.create_task(asyncio.sleep(0, result=7))
    await task
    await cancel_and_wait(task)
    assert task.result() == 7


async def test_an_error_on_the_way_out_is_raised() -> None:
    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("cleanup failed")

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await cancel_and_wait(task)


async def test_the_callers_own_cancellation_goes_through() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()

    inner = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    outer = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    release.set()
    await asyncio.wait([inner])
    assert inner.cancelled()
