"""The audit trail of tool calls: one entry per call the model made, valid or not.

`ToolAudit` is what the executor writes to; `InMemoryToolAudit` keeps a bounded list (tests, a pod
without a database) and `CallRecordsAudit` appends to the call's record in MongoDB, where the calls
repository bounds the entries per call.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from db.calls import CallRecords

MAX_AUDIT_ARGUMENT_CHARS = 500
"""Arguments are stored cut to this many characters (a model may send megabytes)."""


@dataclass(frozen=True, slots=True)
class ToolAuditEntry:
    call_sid: str
    agent_id: str
    tool_call_id: str
    name: str
    arguments: str
    """The raw JSON the model sent, cut to `MAX_AUDIT_ARGUMENT_CHARS`."""
    arguments_chars: int
    """Length of the raw arguments before cutting."""
    ok: bool
    error: str | None
    duration_ms: float
    result_bytes: int
    truncated: bool
    at: datetime
    customer_key: str | None = None
    """The verified caller the call was scoped to (None: not verified yet); whose data it could touch."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ToolAudit(Protocol):
    async def record(self, entry: ToolAuditEntry) -> None: ...


class InMemoryToolAudit:
    def __init__(self, max_entries: int = 1000) -> None:
        self.entries: deque[ToolAuditEntry] = deque(maxlen=max_entries)
        """Bounded: past `max_entries` the oldest entries fall off."""

    async def record(self, entry: ToolAuditEntry) -> None:
        self.entries.append(entry)


class CallRecordsAudit:
    """Writes each entry into the call's record (`calls.tool_audit`)."""

    def __init__(self, calls: CallRecords) -> None:
        self._calls = calls

    async def record(self, entry: ToolAuditEntry) -> None:
        await self._calls.add_tool_audit(entry.call_sid, entry.as_dict())
