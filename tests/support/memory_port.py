"""An in-memory `CallPort`: the session's side of a call with no carrier behind it.

Tests feed caller events with `push` and read back what the session asked for in `actions`.
Audio is "played" instantly (and kept in `played`): a mark is reported heard as soon as it is
placed, unless the test holds marks back (`auto_heard=False`) to keep the agent talking, and
reports them with `hear`. As on a real carrier, the events end once the call is hung up or
transferred.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from agents.port import AudioIn, CallEvent, CallInfo, MarkHeard


class MemoryPort:
    def __init__(self, sample_rate: int = 16000, auto_heard: bool = True, from_number: str = "+15005550006") -> None:
        self._info = CallInfo("CA-test", "MZ-test", "echo", from_number, "+15550100", sample_rate=sample_rate)
        self._queue: asyncio.Queue[CallEvent | None] = asyncio.Queue(maxsize=1000)
        self.auto_heard = auto_heard
        self.actions: list[tuple[str, object]] = []
        self.pending_marks: list[str] = []
        self.played: list[bytes] = []
        """The PCM the session played, in order (at the rate it gave)."""
        self.ended = asyncio.Event()
        self._audio_ms = 0

    @property
    def info(self) -> CallInfo:
        return self._info

    def push(self, event: CallEvent) -> None:
        self._queue.put_nowait(event)

    def push_audio(self, pcm: bytes, frame_ms: int = 20) -> None:
        """Caller audio, as the carrier delivers it: `frame_ms` frames at the call's rate."""
        frame = self._info.sample_rate * frame_ms // 1000 * 2
        for start in range(0, len(pcm), frame):
            self.push(AudioIn(pcm[start : start + frame], self._audio_ms))
            self._audio_ms += frame_ms

    def hear(self, count: int | None = None) -> None:
        """Report the oldest `count` held-back marks (all when None) as heard."""
        heard = self.pending_marks[:count]
        del self.pending_marks[: len(heard)]
        for name in heard:
            self.push(MarkHeard(name))

    def hang_up_caller(self) -> None:
        self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[CallEvent]:
        while (event := await self._queue.get()) is not None:
            yield event
            await asyncio.sleep(0)  # a carrier's events come one read at a time: other tasks run between them

    async def play(self, pcm: bytes, sample_rate: int) -> None:
        self.actions.append(("play", len(pcm) / 2 / sample_rate))
        self.played.append(pcm)

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
        self._end()

    async def transfer(self, to: str) -> None:
        self.actions.append(("transfer", to))
        self._end()

    def _end(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            self._queue.put_nowait(None)

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
