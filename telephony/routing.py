"""Which agent answers a call, in one place for the voice webhook and the media stream.

The webhook knows the called number; the media stream knows the agent id the webhook signed into
the call token. Both ask `AgentDirectory.resolve`, so a stream that lands on another pod than its
webhook (normal behind a load balancer) finds the same agent: a stored one is built there on first
use, exactly as the webhook's pod built it.

Numbers are looked up in the database's routes first, then the settings' `numbers`; an agent id
in the stored agents (MongoDB) first, then the pod's catalog (the agents file, the built-ins).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

from agents.port import Agent, AgentCatalog

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


class LayeredNumberDirectory:
    """The first directory that knows the number wins (the database's routes, then the settings'
    `numbers`, so a pod can be set up either way)."""

    def __init__(self, *directories: NumberDirectory) -> None:
        self.directories = directories

    async def agent_for(self, number: str) -> str | None:
        for directory in self.directories:
            agent_id = await directory.agent_for(number)
            if agent_id is not None:
                return agent_id
        return None


class Resolved(NamedTuple):
    agent_id: str
    agent: Agent


class AgentDirectory:
    """Called number or agent id -> the agent answering it now."""

    def __init__(self, numbers: NumberDirectory, catalog: AgentCatalog, stored: StoredAgents | None = None) -> None:
        self.numbers = numbers
        self.catalog = catalog
        """The agents built at start-up (agents file, built-ins); stored agents join it once built."""
        self.stored = stored
        """Agents stored in MongoDB, built on demand (None: the pod serves none)."""

    async def resolve(self, *, number: str | None = None, agent_id: str | None = None) -> Resolved | None:
        """The agent for the called `number` (the voice webhook) or for `agent_id` (the media
        stream, from the verified call token's claims); None when no agent answers."""
        if (number is None) == (agent_id is None):
            raise TypeError("resolve takes exactly one of number= or agent_id=")
        if number is not None:
            agent_id = await self.numbers.agent_for(number)
            if agent_id is None:
                return None
        assert agent_id is not None
        if self.stored is not None:
            agent = await self.stored.resolve(agent_id)  # its stored version first, else the catalog's
        else:
            agent = self.catalog.get(agent_id)
        return Resolved(agent_id, agent) if agent is not None else None
