"""Waiting for a condition the server makes true in its own time (bounded, never a timing assert)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], timeout: float = 30.0, poll: float = 0.02) -> None:
    """Return once `condition()` holds; `TimeoutError` after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(poll)
