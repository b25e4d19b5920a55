"""Sections of the database and the tools that read it."""

from __future__ import annotations

from pydantic import Field, SecretStr

from db.settings import DbSettings
from telephony.settings.section import Section


class DatabaseSettings(Section):
    """Where MongoDB is, and the bounds of every tool read."""

    mongodb_uri: SecretStr | None = None
    """MongoDB connection string (PyMongo's async client). Unset: numbers come from `numbers`,
    agents get no data tools, and call records stay in memory."""
    mongodb_database: str = Field("switchboard", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_-]+$")
    """Database name."""
    db_max_limit: int = Field(50, ge=1, le=1000)
    """Hard maximum documents one tool read returns, whatever the model asks."""
    db_max_time_ms: int = Field(2000, ge=1, le=60_000)
    """Server-side time limit (`maxTimeMS`) of every tool read."""
    db_max_result_bytes: int = Field(32 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Byte budget of one tool read: reading stops there and the rest is reported as truncated."""

    def db_settings(self) -> DbSettings:
        """The database layer's settings (its other bounds keep their defaults: see db/settings.py)."""
        return DbSettings(
            uri=self.mongodb_uri.get_secret_value() if self.mongodb_uri else DbSettings().uri,
            database=self.mongodb_database,
            max_limit=self.db_max_limit,
            max_time_ms=self.db_max_time_ms,
            max_result_bytes=self.db_max_result_bytes,
        )


class ToolSettings(Section):
    """Bounds on the model's tool calls."""

    tool_max_steps_per_turn: int = Field(4, ge=1, le=16)
    """Tool calls the model may make in one caller turn."""
    tool_max_result_bytes: int = Field(8192, ge=256, le=1_000_000)
    """Bound on one tool result handed back to the model."""
    tool_timeout_seconds: float = Field(5.0, gt=0, le=60)
    """A tool that takes longer is abandoned and the model told so."""
