"""The call edge's shared state: settings and the collaborators every request needs.

Built once by `create_app` (the composition root) and reached by handlers through
`request.app.state.edge`; tests build one with in-memory collaborators.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agents.port import AgentCatalog
from telephony.active_calls import ActiveCalls
from telephony.admission import Admission
from telephony.call_outcomes import CallOutcomes
from telephony.drain import Drain
from telephony.memory_guard import MemorySampler
from telephony.metrics import Metrics
from telephony.routing import NumberDirectory
from telephony.settings import Settings
from telephony.shedding import LoadShedder

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises (or times out) when what it checks is unreachable; its name is the readiness reason."""


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

    def count(self, name: str, by: int = 1) -> None:
        """Bump a named counter (shown by /healthz; the Prometheus series are in `metrics`)."""
        self.stats[name] = self.stats.get(name, 0) + by
