"""Wiring the database into the pod: where call records go (its number routes are in
`telephony.routing`, agents' tools in `telephony.agent_tools`).

Without `SWITCHBOARD_MONGODB_URI` the pod still runs: numbers come from settings, agents get
call control but no data tools, and call records stay in memory.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime

from agents.conversation.record import CallRecord
from db import CallRecords, Database

log = logging.getLogger("switchboard.data")


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
            retention_days=record.retention_days,
        )
        await self.calls.note_agent_version(record.call_sid, record.agent_version)

    async def call_ended(self, record: CallRecord) -> None:
        for line in record.transcript:
            at = datetime.fromtimestamp(record.started_at + line.at_s, UTC)
            await self.calls.add_turn(record.call_sid, line.role, line.text, at=at)
        for turn in record.turns:
            await self.calls.add_latency(record.call_sid, asdict(turn))
        ended = datetime.fromtimestamp(record.ended_at, UTC) if record.ended_at else None
        await self.calls.finish(
            record.call_sid,
            outcome=record.end_reason or "ended",
            ended_at=ended,
            verified_customer=record.verified_customer,
        )
