"""Wiring the database into the pod: where call records go (its number routes are in
`telephony.routing`, agents' tools in `telephony.agent_tools`).

Without `SWITCHBOARD_MONGODB_URI` the pod still runs: numbers come from settings, agents get
call control but no data tools, and call records stay in memory.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agents.conversation.record import CallRecord, TranscriptLine, TurnMetrics
from telephony.call_records import CallRecordWriter
from tools.audit import ToolAuditEntry

if TYPE_CHECKING:
    from telephony.post_call_queue import PostCallQueue

log = logging.getLogger("switchboard.data")

MAX_OPEN_RECORDS = 4096
"""Bound on calls the store follows at once (far above a pod's call limit); past it the oldest is
ended as it stands."""
SUMMARY_FIELDS = (
    "barge_ins",
    "resumed_replies",
    "transcripts_cut",
    "speculation_started",
    "speculation_used",
    "speculation_wasted",
    "transcript_dropped",
)
"""The record's counters written with its end."""


class DatabaseCallStore:
    """Implements `CallStore`, `RecordFollower` and `ToolAudit` on the pod's `CallRecordWriter`:
    the record is created when the call starts, each transcript line, turn's latency and tool
    audit entry is queued as it happens, and the end (outcome, counters) when the call ends. Nothing
    here waits on the database."""

    def __init__(self, writer: CallRecordWriter) -> None:
        self.writer = writer
        self.calls = writer.calls
        self.post_call: PostCallQueue | None = None
        """Runs each ended call's summary and declared fields (set by the pod), when it has one."""
        self._open: OrderedDict[str, CallRecord] = OrderedDict()

    async def call_started(self, record: CallRecord) -> None:
        self.writer.start(
            record.call_sid,
            agent_id=record.agent_id,
            from_number=record.from_number,
            to_number=record.to_number,
            direction=record.direction,
            started_at=datetime.fromtimestamp(record.started_at, UTC),
            agent_version=record.agent_version,
            retention_days=record.retention_days,
        )
        self._open[record.call_sid] = record
        while len(self._open) > MAX_OPEN_RECORDS:
            self.stream_closed(next(iter(self._open)))
        for line in record.transcript:  # said before the store followed it
            self.transcript_line(record, line)
        record.follow(self)

    def transcript_line(self, record: CallRecord, line: TranscriptLine) -> None:
        at = datetime.fromtimestamp(record.started_at + line.at_s, UTC)
        self.writer.append(record.call_sid, "transcript", {"role": line.role, "text": line.text, "at": at})

    def turn_metrics(self, record: CallRecord, metrics: TurnMetrics) -> None:
        self.writer.append(record.call_sid, "latency", asdict(metrics))

    async def record(self, entry: ToolAuditEntry) -> None:
        """A tool call's audit entry (`ToolAudit`), queued onto its call's record."""
        self.writer.append(entry.call_sid, "tool_audit", entry.as_dict())

    async def call_ended(self, record: CallRecord) -> None:
        self._open.pop(record.call_sid, None)
        self._end(record)

    def operator_note(self, call_sid: str, outcome: str, line: str) -> None:
        """An operator ended or transferred the call (the admin API): a system line in its transcript,
        and its outcome unless the session had already decided how the call ends."""
        record = self._open.get(call_sid)
        if record is not None:
            record.end_reason = record.end_reason or outcome
            record.say("system", line)

    def stream_closed(self, call_sid: str) -> None:
        """The call's stream is gone: a record whose session never reported its end (cancelled,
        crashed) is ended as it stands, so its outcome is not lost."""
        record = self._open.pop(call_sid, None)
        if record is not None:
            record.ended_at = record.ended_at or time.time()
            record.end_reason = record.end_reason or "stream closed"
            log.warning("call record ended by its stream", extra={"call_sid": call_sid})
            self._end(record)

    def _end(self, record: CallRecord) -> None:
        record.follow(None)
        ended = datetime.fromtimestamp(record.ended_at, UTC) if record.ended_at else None
        self.writer.end(
            record.call_sid,
            outcome=record.end_reason or "ended",
            ended_at=ended,
            verified_customer=record.verified_customer,
            summary={name: getattr(record, name) for name in SUMMARY_FIELDS},
            dropped={"transcript": record.transcript_dropped},
        )
