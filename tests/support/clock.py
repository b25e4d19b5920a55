"""A clock the test moves by hand."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when the test says (`clock.now += 61`)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
