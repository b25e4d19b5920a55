"""Which agent answers a call, in one place for the voice webhook and the media stream.

The webhook knows the called number; the media stream knows the agent id the webhook signed into
the call token. Both ask `AgentDirectory.resolve`, so a stream that lands on another pod than its
webhook (normal behind a load balancer) finds the same agent: a stored one is built there on first
use, exactly as the webhook's pod built it.

Numbers are looked up in the database's routes first, then the settings' `numbers`; an agent id
in the stored agents (MongoDB) first, then the pod's catalog (the agents file, the built-ins).

While the database is out of reach, a number answers from the last route read for it
(`CachedNumberDirectory`, stale-while-error, bounded) and a stored agent from its last built version;
a number the pod never routed raises `DatabaseUnavailable`, and the webhook answers it with the
fallback agent or a polite message, never a 500.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

from agents.port import Agent, AgentCatalog
from telephony.outage import DatabaseOutage, DatabaseUnavailable

if TYPE_CHECKING:
    from telephony.stored_agents import StoredAgents


class NumberDirectory(Protocol):
    async def agent_for(self, number: str) -> str | None:
        """The agent id that answers `number` (E.164), or None if the number is not ours."""
        ...


class InMemoryNumberDirectory:
    """The settings' `numbers` map."""

    def __init__(self, numbers: Mapping[str, str]) -> None:
        self._numbers = dict(numbers)

    async def agent_for(self, number: str) -> str | None:
        return self._numbers.get(number.strip())


ROUTES_CACHED = 10_000
"""Default bound on the numbers whose last good route a pod keeps for an outage."""


class CachedNumberDirectory:
    """The database's routes with the last good answer per number kept (least recently used dropped
    past `max_entries`): while the database is down, a number routed before answers as it did then;
    one never routed raises `DatabaseUnavailable`."""

    def __init__(self, database: NumberDirectory, outage: DatabaseOutage, max_entries: int = ROUTES_CACHED) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._database = database
        self._outage = outage
        self.max_entries = max_entries
        self._last: OrderedDict[str, str | None] = OrderedDict()
        """Number -> its last route read (None: not ours), least recently used first."""

    async def agent_for(self, number: str) -> str | None:
        try:
            agent_id = await self._outage.read(lambda: self._database.agent_for(number))
        except DatabaseUnavailable:
            if number not in self._last:
                raise
            self._outage.served_stale("number")
            self._last.move_to_end(number)
            return self._last[number]
        self._last[number] = agent_id
        self._last.move_to_end(number)
        while len(self._last) > self.max_entries:
            self._last.popitem(last=False)
        return agent_id


class LayeredNumberDirectory:
    """The first directory that knows the number wins (the database's routes, then the settings'
    `numbers`, so a pod can be set up either way). One that is unavailable is skipped; if no later
    one knows the number, its `DatabaseUnavailable` is raised."""

    def __init__(self, *directories: NumberDirectory) -> None:
        self.directories = directories

    async def agent_for(self, number: str) -> str | None:
        unavailable: DatabaseUnavailable | None = None
        for directory in self.directories:
            try:
                agent_id = await directory.agent_for(number)
            except DatabaseUnavailable as exc:
                unavailable = exc
                continue
            if agent_id is not None:
                return agent_id
        if unavailable is not None:
            raise unavailable
        return None


STREAM_FRESH_S = 15.0
"""A stored agent's version read (by the webhook, on this pod) less than this long ago is taken as it is
by the media stream, so the greeting does not wait on the database. A stream follows its webhook within
a second or two; an update made in between applies from the next call, as any update does."""


class Resolved(NamedTuple):
    agent_id: str
    agent: Agent


class AgentDirectory:
    """Called number or agent id -> the agent answering it now."""

    def __init__(
        self,
        numbers: NumberDirectory,
        catalog: AgentCatalog,
        stored: StoredAgents | None = None,
        outage: DatabaseOutage | None = None,
    ) -> None:
        self.numbers = numbers
        self.catalog = catalog
        """The agents built at start-up (agents file, built-ins); stored agents join it once built."""
        self.stored = stored
        """Agents stored in MongoDB, built on demand (None: the pod serves none)."""
        self.outage = outage or DatabaseOutage()
        """The pod's one view of the database on the call path (shared with its number cache and stored agents)."""

    async def resolve(self, *, number: str | None = None, agent_id: str | None = None) -> Resolved | None:
        """The agent for the called `number` (the voice webhook) or for `agent_id` (the media
        stream, from the verified call token's claims); None when no agent answers. Raises
        `DatabaseUnavailable` when the database is down and the pod has no last good copy of the
        number's route, or of the stored agent it names."""
        if (number is None) == (agent_id is None):
            raise TypeError("resolve takes exactly one of number= or agent_id=")
        if number is not None:
            agent_id = await self.numbers.agent_for(number)
            if agent_id is None:
                return None
        assert agent_id is not None
        if self.stored is not None:
            fresh_s = 0.0 if number is not None else STREAM_FRESH_S  # the stream takes what its webhook read
            try:
                agent = await self.stored.resolve(agent_id, fresh_s)  # its stored version first, else the catalog's
            except DatabaseUnavailable:
                if number is not None:
                    raise
                agent = self.catalog.get(agent_id)  # the stream: as before the outage, the catalog's
        else:
            agent = self.catalog.get(agent_id)
        return Resolved(agent_id, agent) if agent is not None else None
