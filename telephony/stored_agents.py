"""Agents stored in MongoDB (written through the admin API) answer calls without a redeploy.

When a call arrives for an agent id, the pod's `AgentDirectory` (for the voice webhook and the
media stream alike, on whichever pod each lands) asks `StoredAgents.resolve`: the agent's current
stored version is read (one `find_one` by id), and a voice agent is built for it on first use and
rebuilt when the version has changed, or a declared tool it follows (`"name"`, not `"name@3"`) has
a new version (one more read of those tools' versions), so an update applies from the next call
on, while calls in progress keep the version they started with (and each call records it). A stored agent takes
precedence over one of the same id from the agents file. At most `max_agents` are kept built (the
least recently used is dropped first); a stored config that no longer validates, or whose tools
can no longer be built, is logged and the call is answered as for an unknown agent.

The built agents are also the pod's last good copy for an outage (stale-while-error): when the
database cannot answer (`DatabaseOutage`: a short timeout, then a breaker), the agent built last is
served and counted; with none built, the catalog's own agent of that id, else `DatabaseUnavailable`.
The media stream, which follows its webhook within a second or two, takes a version read less than
`fresh_s` ago as it is, so the greeting does not wait on a second read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from agents.config import AgentConfig
from agents.port import Agent, AgentCatalog
from db import AgentConfigs, Database, StoredConfig, ToolDeclarations
from telephony.agent_tools import followed
from telephony.outage import DatabaseOutage, DatabaseUnavailable

log = logging.getLogger("switchboard.stored_agents")

BuildAgent = Callable[[AgentConfig, int], Awaitable[Agent]]
"""Builds a ready voice agent from a config and its stored version (renders its fixed lines)."""
Built = tuple[int, tuple[tuple[str, int], ...]]
"""What a built agent was built from: its stored version and the versions of the tools it follows."""


class StoredAgents:
    def __init__(
        self,
        database: Database,
        catalog: AgentCatalog,
        build: BuildAgent,
        max_agents: int = 32,
        outage: DatabaseOutage | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`max_agents` also bounds the last good copies kept for an outage (they are the built agents)."""
        if max_agents < 1:
            raise ValueError("max_agents must be at least 1")
        self.outage = outage or DatabaseOutage()
        self._clock = clock
        self._read_at: dict[str, float] = {}
        """Agent id -> when its built version was last confirmed by the database (same keys as `_built`)."""
        self._configs = AgentConfigs(database)
        self._tools = ToolDeclarations(database)
        self._catalog = catalog
        self._build = build
        self.max_agents = max_agents
        self._built: OrderedDict[str, tuple[Built, Agent]] = OrderedDict()
        """Agent id -> (what it was built from, agent), least recently used first."""
        self._fallback: dict[str, Agent] = {}
        """Agents of the catalog (file, built-in) that a stored agent of the same id displaced."""
        self._lock = asyncio.Lock()

    async def resolve(self, agent_id: str, fresh_s: float = 0.0) -> Agent | None:
        """The agent that answers `agent_id` now: its current stored version (built if needed), or
        the catalog's own agent when none is stored. A built version confirmed less than `fresh_s`
        ago is served without reading again. Raises `DatabaseUnavailable` when the database cannot
        answer and neither a built version nor the catalog has the agent."""
        built = self._built.get(agent_id)
        if built is not None and fresh_s > 0 and self._clock() - self._read_at.get(agent_id, -1e18) < fresh_s:
            self._built.move_to_end(agent_id)
            return built[1]
        try:
            stored, built_from = await self.outage.read(lambda: self._current(agent_id))
        except ValueError:  # not a well-formed id: no stored agent can have it
            stored, built_from = None, None
        except DatabaseUnavailable:  # serve the last good copy, never fail the call for the database
            built = self._built.get(agent_id)
            agent = built[1] if built is not None else self._catalog.get(agent_id)
            if agent is None:
                raise
            self.outage.served_stale("agent")
            return agent
        if stored is None:
            self._forget(agent_id)
            return self._catalog.get(agent_id)
        async with self._lock:  # one build per version, however many calls arrive at once
            built = self._built.get(agent_id)
            if built is not None and built[0] == built_from:
                self._built.move_to_end(agent_id)
                self._read_at[agent_id] = self._clock()
                return built[1]
            try:
                config = AgentConfig.model_validate({**stored.config, "id": agent_id})
            except ValidationError as exc:
                log.error(
                    "stored agent config is invalid; not serving it",
                    extra={"agent_id": agent_id, "version": stored.version, "error": str(exc)[:300]},
                )
                return None
            try:
                agent = await self._build(config, stored.version)
            except ValueError as exc:  # a tool it names is gone or cannot be built here (ValidationError too)
                log.error(
                    "stored agent's tools cannot be built; not serving it",
                    extra={"agent_id": agent_id, "version": stored.version, "error": str(exc)[:300]},
                )
                return None
            if agent_id not in self._built and agent_id in self._catalog.agents:
                self._fallback[agent_id] = self._catalog.agents[agent_id]
            assert built_from is not None
            self._built[agent_id] = (built_from, agent)
            self._built.move_to_end(agent_id)
            self._read_at[agent_id] = self._clock()
            self._catalog.agents[agent_id] = agent
            log.info("stored agent ready", extra={"agent_id": agent_id, "version": stored.version})
            while len(self._built) > self.max_agents:
                self._forget(next(iter(self._built)))
            return agent

    async def _current(self, agent_id: str) -> tuple[StoredConfig | None, Built | None]:
        """The agent's current stored config and what a build of it is made from (None, None: not stored)."""
        stored = await self._configs.current(agent_id)
        if stored is None:
            return None, None
        return stored, (stored.version, await self._followed_versions(stored.config.get("tools")))

    async def _followed_versions(self, tools: object) -> tuple[tuple[str, int], ...]:
        """The current versions of the declared tools an agent follows (empty: it follows none)."""
        names = followed(tools) if isinstance(tools, list) else []
        return tuple(sorted((await self._tools.current_versions(names)).items())) if names else ()

    def _forget(self, agent_id: str) -> None:
        """Drop a built agent (deleted, or evicted); the catalog gets back what it displaced.
        Calls in progress keep their agent: the session holds it, not the catalog."""
        self._read_at.pop(agent_id, None)
        if self._built.pop(agent_id, None) is None:
            return
        previous = self._fallback.pop(agent_id, None)
        if previous is not None:
            self._catalog.agents[agent_id] = previous
        else:
            self._catalog.agents.pop(agent_id, None)
