"""Twilio's side of a bidirectional stream's outbound audio: a playback buffer.

Audio the server sends is queued and played one 20 ms frame per tick; a mark is echoed only
when all audio queued before it has played; `clear` drops the queued audio and echoes every
pending mark at once, as Twilio documents.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from telephony.audio.mulaw import MULAW_FRAME_BYTES


@dataclass(frozen=True, slots=True)
class _Mark:
    name: str


class PlaybackBuffer:
    def __init__(self, max_bytes: int = 8000 * 600) -> None:
        self._items: deque[bytes | _Mark] = deque()
        self._bytes = 0
        self._max_bytes = max_bytes
        self.max_buffered_ms = 0.0
        self.overflowed_bytes = 0

    @property
    def buffered_ms(self) -> float:
        return self._bytes / 8

    def add_audio(self, mulaw: bytes) -> None:
        if self._bytes + len(mulaw) > self._max_bytes:  # Twilio's buffer is finite too
            self.overflowed_bytes += len(mulaw)
            return
        self._items.append(mulaw)
        self._bytes += len(mulaw)
        self.max_buffered_ms = max(self.max_buffered_ms, self.buffered_ms)

    def add_mark(self, name: str) -> None:
        self._items.append(_Mark(name))

    def play_frame(self) -> tuple[bytes, list[str]]:
        """Play up to one frame; return the audio played and the marks it reached."""
        frame = bytearray()
        reached: list[str] = []
        while self._items:
            head = self._items[0]
            if isinstance(head, _Mark):
                reached.append(head.name)
                self._items.popleft()
                continue
            if len(frame) == MULAW_FRAME_BYTES:
                break
            take = MULAW_FRAME_BYTES - len(frame)
            frame.extend(head[:take])
            if len(head) <= take:
                self._items.popleft()
            else:
                self._items[0] = head[take:]
        self._bytes -= len(frame)
        return bytes(frame), reached

    def clear(self) -> tuple[float, list[str]]:
        """Drop queued audio; return how much (ms) and the marks to echo now."""
        dropped_ms = self.buffered_ms
        marks = [item.name for item in self._items if isinstance(item, _Mark)]
        self._items.clear()
        self._bytes = 0
        return dropped_ms, marks
