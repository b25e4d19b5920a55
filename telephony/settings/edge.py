"""Sections of the call edge: serving, Twilio, routing, the media stream, audio, logging."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from telephony.settings.section import Section

Resampler = Literal["fir", "QQ", "LQ", "MQ", "HQ", "VHQ"]


class ServerSettings(Section):
    """Where `switchboard serve` listens."""

    host: str = "127.0.0.1"
    """Address `switchboard serve` binds."""
    port: int = Field(8000, ge=0, le=65535)
    """Port `switchboard serve` binds (0 picks a free one)."""


class TwilioSettings(Section):
    """Trusting Twilio's webhooks and streams, and reaching its REST API."""

    twilio_auth_token: SecretStr
    """Auth token that Twilio signs webhooks with (required)."""
    twilio_account_sid: str | None = None
    """When set, webhooks and streams from any other account are refused."""
    public_url: AnyHttpUrl | None = None
    """Base URL Twilio uses to reach this service, e.g. `https://calls.example.com`.
    Signatures are checked against it. When unset, the URL is rebuilt from the request,
    honouring `X-Forwarded-Proto`/`X-Forwarded-Host` only if `trust_forwarded_headers`."""
    trust_forwarded_headers: bool = False
    """Trust `X-Forwarded-Proto` and `X-Forwarded-Host` (only behind a proxy that sets them)."""
    webhook_max_body_bytes: int = Field(64 * 1024, ge=1024)
    """Bound on a webhook body; larger requests get 413 before any parsing."""

    twilio_api_base_url: AnyHttpUrl | None = None
    """Where Twilio's REST API is reached; unset: `https://api.twilio.com`. Tests and benchmarks
    point it at the fake Twilio REST server on loopback."""
    twilio_api_timeout_seconds: float = Field(10.0, gt=0, le=120)
    """Bound on one request to Twilio's REST API."""
    twilio_api_max_retries: int = Field(5, ge=0, le=20)
    """Retries of a REST request Twilio refused with 429 or a 5xx (or that could not connect)."""
    twilio_api_backoff_seconds: float = Field(0.5, ge=0.0, le=60)
    """Wait before the first retry; doubled for each further one, at most `twilio_api_backoff_max_seconds`."""
    twilio_api_backoff_max_seconds: float = Field(8.0, ge=0.0, le=300)
    """Longest wait between two retries."""

    # -- call token --------------------------------------------------------------------
    call_token_secret: SecretStr | None = None
    """HMAC key for the token handed from the webhook to the media stream. Defaults to a key
    derived from the auth token, so every pod sharing the token accepts each other's calls."""
    call_token_ttl_seconds: int = Field(60, ge=5, le=3600)
    """How long after the webhook the stream may connect."""
    webhook_replay_window_seconds: int = Field(86_400, ge=60, le=30 * 86_400)
    """How long a CallSid answered with a call token is remembered: a signed webhook replayed for it
    meanwhile gets a polite hang-up and no token (Twilio's signatures carry no timestamp)."""
    webhook_replay_max_calls: int = Field(50_000, ge=100, le=10_000_000)
    """Bound on remembered CallSids (~150 bytes each; the oldest are forgotten first)."""
    allow_insecure_secrets: bool = False
    """Start even with empty, short or placeholder secrets (a laptop demo only; each is logged as a
    warning). Off: start-up refuses them, naming the variable to set."""

    def call_token_key(self) -> bytes:
        """The HMAC key for call tokens (explicit, or derived from the auth token)."""
        if self.call_token_secret is not None:
            return self.call_token_secret.get_secret_value().encode()
        token = self.twilio_auth_token.get_secret_value().encode()
        return hmac.new(token, b"switchboard call token v1", hashlib.sha256).digest()


class RoutingSettings(Section):
    """Which agent answers a number, and how a call that cannot be taken is answered."""

    numbers: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Called number -> agent id, as JSON (`{"+15550100": "echo"}`). Replaced by the database
    once it lands."""
    busy_response: Literal["say", "reject"] = "say"
    """How a refused call is answered: a polite `<Say>` then hang-up, or `<Reject reason="busy">`."""
    busy_message: str = Field(
        "Sorry, all of our agents are busy right now. Please call again in a few minutes.", max_length=1000
    )
    """Spoken to a caller refused by admission when `busy_response` is `say`."""
    unknown_number_message: str = Field("Sorry, this number is not in service. Goodbye.", max_length=1000)
    """Spoken to a caller of a number no agent answers."""
    outage_agent: str | None = Field(None, min_length=1, max_length=64)
    """Agent id (agents file or built-in) that answers a number the pod cannot route because the
    database is down and it has no last good route for it. Unset: `outage_message` is spoken."""
    outage_message: str = Field(
        "Sorry, we cannot take your call right now. Please call again in a few minutes. Goodbye.", max_length=1000
    )
    """Spoken to a caller whose number cannot be routed during a database outage (no `outage_agent`)."""

    max_concurrent_calls: int = Field(16, ge=1)
    """Calls this pod carries at once (reserved at the webhook, released when the stream ends);
    the webhook answers busy past it. From `benchmarks/pod_load.py` in a 1 GiB cgroup with the
    engines in process: 500-640 MB idle, 779 MB peak at 30 calls, ~0.6 MB per added call, so memory
    admits far more; CPU binds first (2 cores answered 6 concurrent calls in real time, about half
    of 20): lower it on small nodes, raise it with remote engines."""

    @field_validator("numbers", mode="before")
    @classmethod
    def _parse_numbers(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f'must be a JSON object like {{"+15550100": "echo"}}: {exc}') from None
        return value


class MediaStreamSettings(Section):
    """Bounds on one call's media stream."""

    ws_max_message_bytes: int = Field(64 * 1024, ge=4096)
    """Largest media-stream message we parse; bigger ones are logged and dropped. A Twilio
    20 ms media message is ~0.3 KB and `start` ~2 KB."""
    ws_max_frame_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024)
    """Largest WebSocket frame the server reads at all (uvicorn `ws_max_size`); above it the
    connection is closed with 1009. Must exceed `ws_max_message_bytes`."""
    stream_start_timeout_seconds: float = Field(3.0, gt=0, le=120)
    """A stream that has not sent a valid `start` by then is closed (1008); Twilio sends it at once."""
    stream_pending_max: int = Field(32, ge=1, le=10_000)
    """Media streams a pod lets wait for a valid `start` at once; past it a new connection is refused
    at the handshake (HTTP 403, cheaper than accept-then-close 1008) and counted
    (`switchboard_streams_turned_away_total`)."""
    stream_prestart_max_message_bytes: int = Field(8 * 1024, ge=4096)
    """Largest message a stream may send before its `start` is verified (Twilio's `start` is ~2 KB);
    a larger one closes the stream (1009). After `start`, `ws_max_message_bytes` applies."""
    inbound_queue_frames: int = Field(250, ge=10)
    """Caller audio frames (20 ms each) waiting for the session; the oldest are dropped past
    this (250 = 5 s)."""
    playout_queue_frames: int = Field(1500, ge=50)
    """Agent audio frames (20 ms each) queued for the caller; `play` waits past this (1500 = 30 s)."""
    playout_lead_ms: int = Field(200, ge=0, le=2000)
    """How far ahead of real time agent audio is sent to Twilio: jitter cover, and the most
    audio a `clear` has to drop on Twilio's side."""
    pending_marks: int = Field(256, ge=8)
    """Marks sent and not yet echoed; past this the oldest are forgotten (logged)."""

    @field_validator("ws_max_frame_bytes")
    @classmethod
    def _frame_above_message(cls, value: int, info) -> int:  # type: ignore[no-untyped-def]
        message = info.data.get("ws_max_message_bytes")
        if message is not None and value <= message:
            raise ValueError("must be larger than ws_max_message_bytes")
        return value


class AudioSettings(Section):
    """The audio path between Twilio (8 kHz mu-law) and the engines."""

    pipeline_sample_rate: int = Field(16000, ge=8000, le=48000)
    """Rate of the PCM16 frames the session receives."""
    inbound_resampler: Resampler = "fir"
    """8 kHz -> pipeline rate: "fir" (polyphase FIR, 4 ms delay) or a soxr quality ("MQ", "HQ"…,
    which hold back 63 ms on average and emit nothing for the first 120 ms; see
    benchmarks/audio_path.py)."""
    outbound_resampler: Resampler = "fir"
    """TTS rate -> 8 kHz: "fir" for simple ratios (24k, 16k, 48k; soxr HQ otherwise) or a soxr
    quality."""


class CallOutcomeSettings(Section):
    """Hang-up and transfer decisions waiting for Twilio's `<Connect action>` request."""

    call_outcome_ttl_seconds: int = Field(300, ge=10)
    """How long a hang-up/transfer decision waits for Twilio's `<Connect action>` request."""
    call_outcomes_max: int = Field(10_000, ge=100)
    """Bound on remembered call outcomes (oldest evicted)."""


class LoggingSettings(Section):
    """The JSON log lines."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Threshold for the JSON log lines written to stderr."""
