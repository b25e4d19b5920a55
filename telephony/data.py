"""Wiring the database into the pod: agents' tools, and where call records go (its number routes
are in `telephony.routing`).

Without `SWITCHBOARD_MONGODB_URI` the pod still runs: numbers come from settings, agents get
call control but no data tools, and call records stay in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

from agents.config import AgentConfig
from agents.conversation.record import CallRecord
from db import BusinessData, CallRecords, Database, SafeQuery
from telephony.settings import Settings
from tools import CallRecordsAudit, ToolExecutor, builtin_tools

log = logging.getLogger("switchboard.data")


def tools_for(
    config: AgentConfig,
    database: Database | None,
    settings: Settings,
    shedding: Callable[[], bool] | None = None,
) -> ToolExecutor | None:
    """The agent's enabled built-in tools on the database, or None when it has none. While
    `shedding()` (the memory guard at its hard threshold), tool calls are refused.

    An agent naming tools on a pod without a database is a configuration error, said at start-up.
    """
    if not config.tools:
        return None
    if database is None:
        raise ValueError(f"agent {config.id!r} uses tools {config.tools} but SWITCHBOARD_MONGODB_URI is not set")
    data = BusinessData(SafeQuery(database))
    return ToolExecutor(
        builtin_tools(data, config.tools),
        CallRecordsAudit(CallRecords(database)),
        max_steps_per_turn=settings.tool_max_steps_per_turn,
        max_result_bytes=settings.tool_max_result_bytes,
        default_timeout_s=settings.tool_timeout_seconds,
        shedding=shedding,
    )


class DatabaseCallStore:
    """Implements `CallStore`: each call's record, transcript, tool audit and per-turn latency
    (bounded per call by the db layer). The record is created when the call starts, so the tool
    audit written during the call has somewhere to go."""

    def __init__(self, database: Database) -> None:
        self.calls = CallRecords(database)

    async def call_started(self, record: CallRecord) -> None:
        await self.calls.start(
            record.call_sid,
            agent_id=record.agent_id,
            from_number=record.from_number,
            to_number=record.to_number,
            direction=record.direction,
            started_at=datetime.fromtimestamp(record.started_at, UTC),
            agent_version=record.agent_version,
        )
        await self.calls.note_agent_version(record.call_sid, record.agent_version)

    async def call_ended(self, record: CallRecord) -> None:
        for line in record.transcript:
            at = datetime.fromtimestamp(record.started_at + line.at_s, UTC)
            await self.calls.add_turn(record.call_sid, line.role, line.text, at=at)
        for turn in record.turns:
            await self.calls.add_latency(record.call_sid, asdict(turn))
        ended = datetime.fromtimestamp(record.ended_at, UTC) if record.ended_at else None
        await self.calls.finish(record.call_sid, outcome=record.end_reason or "ended", ended_at=ended)
