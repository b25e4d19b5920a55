"""Sections of the database and the tools that read it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from db.settings import DbSettings
from telephony.settings.section import Section
from tools.declared.hosts import parse_allowed_hosts


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
    call_retention_days: int = Field(90, ge=1, le=3650)
    """Days a call record (transcript, tool audit) is kept when its agent sets no `retention_days`;
    a TTL index on `expires_at` then removes it."""
    call_record_flush_seconds: float = Field(0.5, gt=0, le=1.0)
    """Interval at which a call's queued record entries (transcript lines, tool audit, latency) are
    written as the call goes: a killed pod loses at most this much of a call (a full batch goes sooner)."""
    call_record_queue_entries: int = Field(20_000, ge=100, le=1_000_000)
    """Bound on record entries queued in the pod while the database is slow or down (retried with
    backoff); past it new entries are dropped and counted (`switchboard_call_record_entries_dropped`)."""
    call_record_queue_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024)
    """Bound on the bytes of record entries queued (an estimate of their text), as `call_record_queue_entries`."""
    call_record_shutdown_seconds: float = Field(10.0, ge=0, le=120)
    """At shutdown, how long the pod keeps writing queued call records; what is left is counted
    (`switchboard_call_record_writes_failed`)."""
    post_call_queue: int = Field(100, ge=1, le=10_000)
    """Bound on ended calls waiting for their post-call summary and fields; past it a call's
    `post_call` is marked failed ("queue full") and counted (`switchboard_post_call_jobs`)."""
    post_call_workers: int = Field(1, ge=1, le=8)
    """Post-call jobs run at once (each is one chat-model request, after its call has ended)."""
    post_call_timeout_seconds: float = Field(60.0, ge=1.0, le=600.0)
    """Bound on one post-call job (reading the record, the model's answer, storing it); past it
    the job is marked failed."""
    db_call_path_timeout_ms: int = Field(1000, ge=50, le=30_000)
    """Bound on a database read a call waits on (number routing, stored agent): past it the read
    counts as failed and the pod answers from its last good copy, instead of the driver's
    server-selection wait (seconds) on a dead server."""
    db_outage_retry_seconds: float = Field(2.0, ge=0, le=300)
    """After a failed call-path read, how long calls are answered from the last good copies
    without asking the database again (so calls in an outage do not each wait the timeout)."""
    db_routes_cached: int = Field(10_000, ge=1, le=1_000_000)
    """Bound on the numbers whose last good route the pod keeps for an outage (least recently
    used dropped first); stored agents are kept up to `stored_agents_max`."""

    def db_settings(self) -> DbSettings:
        """The database layer's settings (its other bounds keep their defaults: see db/settings.py)."""
        return DbSettings(
            uri=self.mongodb_uri.get_secret_value() if self.mongodb_uri else DbSettings().uri,
            database=self.mongodb_database,
            max_limit=self.db_max_limit,
            max_time_ms=self.db_max_time_ms,
            max_result_bytes=self.db_max_result_bytes,
            call_retention_days=self.call_retention_days,
        )


class RecordingStoreSettings(Section):
    """Where call recordings go: MongoDB's GridFS (the default) or an S3-compatible bucket."""

    recording_store: Literal["mongodb", "s3"] = "mongodb"
    """`mongodb`: recordings go into the database's GridFS bucket `recordings`. `s3`: into an
    S3-compatible bucket (AWS S3, MinIO, Ceph, R2...; the `s3_*` settings), expired by bucket
    lifecycle rules on the tag `switchboard-retention-days` (see telephony/recording/s3_store.py)."""
    s3_endpoint: str | None = Field(None, pattern=r"^https?://[^/?#\s]+/?$")
    """The S3 API's base URL, scheme and host only (`https://s3.us-east-1.amazonaws.com`,
    `http://minio:9000`); objects are addressed path-style, `{endpoint}/{bucket}/{key}`."""
    s3_bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    """The bucket recordings go into (it must exist)."""
    s3_region: str = Field("us-east-1", pattern=r"^[a-z0-9-]{1,32}$")
    """The region requests are signed for (SigV4); S3-compatible servers mostly accept `us-east-1`."""
    s3_prefix: str = Field("recordings/", max_length=200, pattern=r"^([A-Za-z0-9!_.*'()-]+/)*$")
    """Key prefix of every recording object (`<prefix><CallSid>/chunk-000001`); empty or ending in `/`."""
    s3_access_key_id: str | None = None
    """Access key id requests are signed with."""
    s3_secret_access_key: SecretStr | None = None
    """Secret access key requests are signed with."""
    s3_timeout_seconds: float = Field(10.0, gt=0, le=120)
    """Bound on one S3 request (a chunk, the manifest, a list page), connecting included; past it the
    request fails (a chunk being written is counted as dropped)."""

    def s3_missing(self) -> list[str]:
        """The variables `recording_store: s3` needs that are unset (checked as the pod opens, not here:
        a model validator's error would print every setting's value, secrets included)."""
        names = ("s3_endpoint", "s3_bucket", "s3_access_key_id", "s3_secret_access_key")
        return [f"SWITCHBOARD_{name.upper()}" for name in names if getattr(self, name) is None]


class ToolSettings(Section):
    """Bounds on the model's tool calls."""

    tool_max_steps_per_turn: int = Field(4, ge=1, le=16)
    """Tool calls the model may make in one caller turn."""
    tool_max_result_bytes: int = Field(8192, ge=256, le=1_000_000)
    """Bound on one tool result handed back to the model."""
    tool_timeout_seconds: float = Field(5.0, gt=0, le=60)
    """A tool that takes longer is abandoned and the model told so."""
    tool_http_allowed_hosts: str | None = None
    """Hosts declared `http` tools may call, comma-separated (`api.example.com,billing.example.com:8443`; a
    port must be listed to be used). Names only, compared exactly: no IP addresses, no wildcards. Unset: no
    `http` tool can be built. Header secrets are read from the environment (see tools/declared/secret_headers.py)."""

    @field_validator("tool_http_allowed_hosts")
    @classmethod
    def _hosts_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_allowed_hosts(value)  # fail at start-up, naming the bad entry
        return value

    def http_allowed_hosts(self) -> frozenset[str]:
        """The hosts declared http tools may call (empty when unset)."""
        return parse_allowed_hosts(self.tool_http_allowed_hosts or "")
