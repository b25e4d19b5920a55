"""The media stream's door: how many connections may wait for a valid `start` at once.

`/twilio/media` is reachable by anyone; until a stream's `start` brings a valid call token it is a
stranger holding a socket, a task and a read buffer. The door lets at most `limit` strangers wait
(per pod); past it a new connection is closed at once. A stream leaves the door when its `start`
is verified (it is a call now, counted by admission) or when it closes.
"""

from __future__ import annotations


class StreamDoor:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the stream door needs a limit of at least 1")
        self.limit = limit
        self.pending = 0
        """Connections accepted whose `start` is not verified yet."""
        self.turned_away = 0
        """Connections closed before they became calls (any reason), for sparse logging."""

    def enter(self) -> Waiting | None:
        """A place at the door, or None when `limit` connections already wait."""
        if self.pending >= self.limit:
            return None
        self.pending += 1
        return Waiting(self)


class Waiting:
    """One connection's place at the door; `leave()` is idempotent."""

    def __init__(self, door: StreamDoor) -> None:
        self._door: StreamDoor | None = door

    def leave(self) -> None:
        if self._door is not None:
            self._door.pending -= 1
            self._door = None
