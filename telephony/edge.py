"""The call edge's shared state: settings and the collaborators every request needs.

Built once by `create_app` (the composition root) and reached by handlers through
`request.app.state.edge`; tests build one with in-memory collaborators.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agents.port import Agent, AgentCatalog
from telephony.pod_health.active_calls import ActiveCalls
from telephony.pod_health.admission import Admission
from telephony.pod_health.drain import Drain
from telephony.pod_health.guard import MemorySampler
from telephony.pod_health.metrics import Metrics
from telephony.pod_health.shedding import LoadShedder
from telephony.routing import NumberDirectory
from telephony.settings import Settings
from telephony.twilio.outcomes import CallOutcomes

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises (or times out) when what it checks is unreachable; its name is the readiness reason."""

if TYPE_CHECKING:
    from db import Database
    from telephony.stored_agents import StoredAgents
    from telephony.twilio.rest import TwilioRest


@dataclass
class CallEdge:
    settings: Settings
    numbers: NumberDirectory
    agents: AgentCatalog
    calls: ActiveCalls
    admission: Admission
    outcomes: CallOutcomes
    memory: MemorySampler
    drain: Drain
    metrics: Metrics
    shedder: LoadShedder
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    """Dependencies `/readyz` checks, by name (the lifespan adds `database` when one is configured)."""
    stats: dict[str, int] = field(default_factory=dict)
    database: Database | None = None
    """MongoDB (set at start-up from `mongodb_uri`, or by tests); the admin API and campaigns need it."""
    twilio: TwilioRest | None = None
    """Twilio's REST API, for outbound calls (set at start-up when `twilio_account_sid` is)."""
    clock: Callable[[], float] = time.time
    """Wall-clock epoch seconds for campaign times (leases, retries, calling windows); tests move it."""
    stored_agents: StoredAgents | None = None
    """Agents stored in MongoDB, built on demand (set at start-up with a database and voice engines)."""

    async def agent(self, agent_id: str) -> Agent | None:
        """The agent answering `agent_id` now: its stored version, else the catalog's."""
        if self.stored_agents is not None:
            return await self.stored_agents.resolve(agent_id)
        return self.agents.get(agent_id)

    def count(self, name: str, by: int = 1) -> None:
        """Bump a named counter (shown by /healthz; the Prometheus series are in `metrics`)."""
        self.stats[name] = self.stats.get(name, 0) + by
