"""An in-memory `CallPort`: the session's side of a call with no carrier behind it.

Tests feed caller events with `push` and read back what the session asked for in `actions`.
Audio is "played" instantly: a mark is reported heard as soon as it is placed, unless the test
holds marks back (`auto_heard=False`) to keep the agent talking.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from agents.port import CallEvent, CallInfo, MarkHeard


class MemoryPort:
    def __init__(self, sample_rate: int = 16000, auto_heard: bool = True) -> None:
        self._info = CallInfo("CA-test", "MZ-test", "echo", "+15005550006", "+15550100", sample_rate=sample_rate)
        self._queue: asyncio.Queue[CallEvent | None] = asyncio.Queue(maxsize=1000)
        self.auto_heard = auto_heard
        self.actions: list[tuple[str, object]] = []
        self.pending_marks: list[str] = []
        self.ended = asyncio.Event()

    @property
    def info(self) -> CallInfo:
        return self._info

    def push(self, event: CallEvent) -> None:
        self._queue.put_nowait(event)

    def hang_up_caller(self) -> None:
        self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[CallEvent]:
        while (event := await self._queue.get()) is not None:
            yield event

    async def play(self, pcm: bytes, sample_rate: int) -> None:
        self.actions.append(("play", len(pcm) / 2 / sample_rate))

    async def mark(self, name: str) -> None:
        self.actions.append(("mark", name))
        if self.auto_heard:
            self.push(MarkHeard(name))
        else:
            self.pending_marks.append(name)

    async def clear(self) -> None:
        self.actions.append(("clear", None))
        for name in self.pending_marks:
            self.push(MarkHeard(name, heard=False))
        self.pending_marks.clear()

    async def hang_up(self, reason: str = "completed") -> None:
        self.actions.append(("hang_up", reason))
        self.ended.set()

    async def transfer(self, to: str) -> None:
        self.actions.append(("transfer", to))
        self.ended.set()

    def drain(self) -> list[CallEvent]:
        """The events queued for the session so far (marks reported by a clear, say)."""
        events = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is not None:
                events.append(event)
        return events

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.actions]
