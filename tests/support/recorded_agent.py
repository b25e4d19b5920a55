"""An agent (the model-free echo agent, say) whose calls are recorded: it carries an `AgentConfig`
with `record: true`, as a voice agent built from such a config does."""

from __future__ import annotations

from agents.config import AgentConfig
from agents.port import Agent, CallPort


class RecordedAgent:
    def __init__(self, agent: Agent, agent_id: str = "echo", **config: object) -> None:
        self.agent = agent
        self.config = AgentConfig(id=agent_id, record=True, **config)  # type: ignore[arg-type]

    async def run(self, port: CallPort) -> None:
        await self.agent.run(port)
