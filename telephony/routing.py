"""Which agent answers a called number.

`NumberDirectory` is the interface; `InMemoryNumberDirectory` serves the settings' `numbers`
map until the database-backed directory (tools/MongoDB issue) takes its place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class NumberDirectory(Protocol):
    async def agent_for(self, number: str) -> str | None:
        """The agent id that answers `number` (E.164), or None if the number is not ours."""
        ...


class InMemoryNumberDirectory:
    def __init__(self, numbers: Mapping[str, str]) -> None:
        self._numbers = dict(numbers)

    async def agent_for(self, number: str) -> str | None:
        return self._numbers.get(number.strip())
