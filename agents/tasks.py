"""Cancel-and-wait: stop a background task and be sure it has finished before going on.

A task that is only cancelled may still be running its `finally` when the caller closes what it
uses; awaiting it after `cancel()` raises the `CancelledError` the caller asked for. This does both,
and lets the caller's own cancellation through (a bare `suppress(CancelledError)` would swallow it).
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (if any, and not done) and wait until it has finished. Its cancellation is
    swallowed; an error it raised on the way out is raised here."""
    if task is None:
        return
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        await task  # raises its error, with its traceback
