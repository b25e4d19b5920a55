"""Database settings: where MongoDB is, and the bounds every read and every call record obeys.

A plain frozen pydantic model, so the pod settings can expose each field as a `SWITCHBOARD_*`
variable without this room importing the edge. Every field that can let something grow says its
bound in its docstring.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

TRANSCRIPT_LINES_PER_CALL = 400
"""The one transcript bound: lines a call keeps in memory (`agents.conversation.record`) and in its
stored record (`max_turns_per_call`'s default). Both keep the first lines and count the rest as
dropped: a runaway call cannot erase how it started, and a record written as the call goes is
append-only, so what a killed pod left in the database is a prefix of what it held in memory."""


class DbSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    # -- connection ----------------------------------------------------------------------
    uri: str = "mongodb://localhost:27017"
    """MongoDB connection string."""
    database: str = Field("switchboard", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_-]+$")
    """Database name."""
    server_selection_timeout_ms: int = Field(3000, ge=100, le=60_000)
    """How long an operation waits for a reachable server before failing (instead of hanging a call)."""
    connect_timeout_ms: int = Field(3000, ge=100, le=60_000)
    """TCP connect timeout."""
    max_pool_size: int = Field(20, ge=1, le=500)
    """Bound on open connections per pod."""

    # -- the safe-query layer --------------------------------------------------------------
    default_limit: int = Field(10, ge=1)
    """Documents a read returns when the caller asks for no particular number."""
    max_limit: int = Field(50, ge=1, le=1000)
    """Hard maximum documents one read returns, whatever is asked."""
    max_time_ms: int = Field(2000, ge=1, le=60_000)
    """Server-side time limit of every read and count (`maxTimeMS`)."""
    batch_size: int = Field(20, ge=1, le=1000)
    """Documents per batch the driver fetches (and decodes) at once; with `max_limit` this bounds
    what is held in memory before the byte budget is checked."""
    max_result_bytes: int = Field(32 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Byte budget of one read: documents (BSON size after projection) are taken in order until the
    next one would pass this, then reading stops and the rest are reported as truncated."""
    count_cap: int = Field(10_000, ge=1)
    """Bound on the `count_documents` that reports "truncated: N more"; above it N is a lower bound."""
    max_filter_string_chars: int = Field(256, ge=1, le=4096)
    """Longest string value a filter may compare against."""

    # -- call records --------------------------------------------------------------------
    max_turns_per_call: int = Field(TRANSCRIPT_LINES_PER_CALL, ge=1, le=10_000)
    """Transcript turns stored per call; later turns are counted as dropped, not stored (the first
    ones are kept, as in memory: see `TRANSCRIPT_LINES_PER_CALL`)."""
    max_turn_chars: int = Field(2000, ge=1, le=100_000)
    """Characters of one transcript turn kept; longer text is cut."""
    max_tool_audit_per_call: int = Field(200, ge=1, le=10_000)
    """Tool audit entries stored per call; later ones are counted as dropped."""
    max_latency_entries_per_call: int = Field(400, ge=1, le=10_000)
    """Per-turn latency entries stored per call; later ones are counted as dropped."""
    call_retention_days: int = Field(90, ge=1, le=3650)
    """Days a call record is kept when its agent sets no `retention_days` (a TTL index removes it)."""
    max_agent_config_bytes: int = Field(64 * 1024, ge=1024, le=4 * 1024 * 1024)
    """Largest agent configuration or tool declaration document (BSON bytes) the repositories store."""
    max_listed: int = Field(1000, ge=1, le=100_000)
    """Bound on any listing repositories offer (agent ids, numbers, recent calls)."""

    @model_validator(mode="after")
    def _limits_agree(self) -> DbSettings:
        if self.default_limit > self.max_limit:
            raise ValueError(f"default_limit ({self.default_limit}) must not exceed max_limit ({self.max_limit})")
        return self
