"""Waiting for a condition the code under test makes true in its own time (bounded, never a timing
assert: the bound only keeps a broken test from hanging)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(
    condition: Callable[[], object], timeout: float = 30.0, *, poll: float = 0.005, what: str = "the condition"
) -> None:
    """Return once `condition()` holds; fail the test naming `what` after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(poll)
    except TimeoutError:
        raise AssertionError(f"never happened within {timeout:g} s: {what}") from None
