"""The call edge's shared state: settings and the collaborators every request needs.

Built once by `create_app` (the composition root) and reached by handlers through
`request.app.state.edge`; tests build one with in-memory collaborators.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.port import AgentCatalog
from telephony.active_calls import ActiveCalls
from telephony.admission import Admission
from telephony.call_outcomes import CallOutcomes
from telephony.routing import NumberDirectory
from telephony.settings import Settings


@dataclass
class CallEdge:
    settings: Settings
    numbers: NumberDirectory
    agents: AgentCatalog
    calls: ActiveCalls
    admission: Admission
    outcomes: CallOutcomes
    stats: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, by: int = 1) -> None:
        """Bump a named counter (exposed by /healthz until the metrics issue brings Prometheus)."""
        self.stats[name] = self.stats.get(name, 0) + by
