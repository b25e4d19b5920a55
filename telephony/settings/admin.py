"""Sections of the admin API, outbound calls and campaigns, and the API keys' format."""

from __future__ import annotations

import json
import re

from pydantic import Field, SecretStr, field_validator

from telephony.settings.section import Section


class AdminSettings(Section):
    """Who may use the admin API under `/api`."""

    api_keys: SecretStr | None = None
    """Keys for the admin API under `/api`, each with its scopes: `key1:agents:read,calls:read;key2:*`
    (`;` between keys, `,` between scopes) or JSON `{"key1": ["agents:read"]}`. Scopes are
    `<resource>:read` / `<resource>:write` for agents, tools, numbers, calls and campaigns, `audit:read`
    (the audit log of admin writes), `ops:write` (`POST /api/ops/heap-snapshot`), or `*`; plus at most one
    `tenant:<name>`, which keeps the key to that tenant's agents, their calls and recordings. Unset: every
    API request is refused (401). The operator console logs in with the same keys."""
    api_max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    """Bound on an admin API request body (contact uploads have their own bound)."""
    audit_retention_days: int = Field(365, ge=1, le=3650)
    """How long the audit log keeps each admin write (which key, what, when; `GET /api/audit`)."""
    live_event_streams: int = Field(50, ge=1, le=10_000)
    """Bound on open live-call event streams (`GET /api/calls/{sid}/events`) per pod; past it, 503."""
    live_event_stream_seconds: float = Field(3600.0, ge=1.0, le=86_400)
    """How long one live-call event stream stays open before the pod closes it (the client may
    reconnect with `Last-Event-ID` and go on from where it was)."""

    console_secret: SecretStr | None = None
    """Signs the operator console's session cookies (at least 16 characters, 32 random bytes advised; rotating it
    ends every session).
    Unset: `/console` answers 503 and says to set it."""
    console_session_hours: float = Field(8.0, ge=0.1, le=24 * 30)
    """How long a console login lasts; the session also ends at once when its API key is removed."""
    console_secure_cookie: bool = True
    """Mark the console's cookie `Secure` (sent over HTTPS only; browsers treat http://localhost as secure too)."""
    console_login_failures_per_minute: int = Field(10, ge=1, le=10_000)
    """Bound on failed console logins per client address per minute; past it, 429 until the minute is over."""

    @field_validator("api_keys")
    @classmethod
    def _api_keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_api_keys(value.get_secret_value())  # fail at start-up, naming no key
        return value

    def api_key_scopes(self) -> dict[str, frozenset[str]]:
        """API key -> its scopes (empty when no keys are configured: the API refuses everything)."""
        return parse_api_keys(self.api_keys.get_secret_value()) if self.api_keys is not None else {}


class CampaignSettings(Section):
    """Outbound calls, contact uploads and the campaign dialer."""

    outbound_ring_timeout_seconds: int = Field(30, ge=5, le=600)
    """How long Twilio lets an outbound call ring before it counts as no answer."""
    campaign_upload_max_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    """Bound on one contact upload (CSV or JSON); upload bigger lists in parts."""
    campaign_upload_max_rows: int = Field(20_000, ge=1, le=1_000_000)
    """Bound on contacts in one upload."""
    dialer_enabled: bool = False
    """Run the campaign dialer in this pod (needs `mongodb_uri` and `public_url`); any number of pods
    may run it over the same campaigns."""
    dialer_lease_seconds: float = Field(30.0, ge=1.0, le=600)
    """How long a leased contact (or a concurrency slot not yet on a call) stays reserved for this
    pod; a pod that dies loses them after this."""
    dialer_poll_seconds: float = Field(1.0, ge=0.01, le=60)
    """How often an idle dialer looks for running campaigns and due contacts."""
    dialer_max_campaigns: int = Field(50, ge=1, le=10_000)
    """Bound on running campaigns one pod dials at once."""
    dialer_call_slack_seconds: float = Field(300.0, ge=10.0, le=86_400)
    """Beyond ring time plus the agent's maximum call length, how long a placed call waits for its
    status callback before its attempt counts as failed and its concurrency slot is freed."""


API_RESOURCES = ("agents", "tools", "numbers", "calls", "campaigns", "audit", "ops")
API_SCOPES = frozenset({"*"} | {f"{r}:{a}" for r in API_RESOURCES for a in ("read", "write")})
MIN_API_KEY_CHARS = 16
TENANT_SCOPE = re.compile(r"^tenant:[a-z0-9][a-z0-9_-]{0,63}$")
"""`tenant:<name>` restricts a key to one tenant's agents, calls and recordings (see `AgentConfig.tenant`)."""


def parse_api_keys(text: str) -> dict[str, frozenset[str]]:
    """`key:scope,scope;key2:*` or JSON `{"key": ["scope", ...]}` -> key -> scopes. Errors never
    quote a key."""
    text = text.strip()
    if not text:
        return {}
    entries: dict[str, list[str]] = {}
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("api_keys: not valid JSON") from None
        if not isinstance(raw, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in raw.items()
        ):
            raise ValueError('api_keys: JSON must map each key to a list of scopes: {"key": ["agents:read"]}')
        entries = raw
    else:
        for n, part in enumerate(filter(None, (p.strip() for p in text.split(";"))), start=1):
            key, sep, scopes = part.partition(":")
            if not sep:
                raise ValueError(f"api_keys: entry {n} has no ':' between the key and its scopes")
            entries[key.strip()] = [scope.strip() for scope in scopes.split(",") if scope.strip()]
    keys: dict[str, frozenset[str]] = {}
    for n, (key, named) in enumerate(entries.items(), start=1):
        if len(key) < MIN_API_KEY_CHARS:
            raise ValueError(f"api_keys: key {n} is shorter than {MIN_API_KEY_CHARS} characters")
        tenants = [scope for scope in named if TENANT_SCOPE.match(scope)]
        unknown = sorted(set(named) - API_SCOPES - set(tenants))
        if unknown or not set(named) - set(tenants):
            raise ValueError(
                f"api_keys: key {n} has unknown or no scopes {unknown}; known: {sorted(API_SCOPES)} and tenant:<name>"
            )
        if len(tenants) > 1:
            raise ValueError(f"api_keys: key {n} names more than one tenant")
        keys[key] = frozenset(named)
    return keys
