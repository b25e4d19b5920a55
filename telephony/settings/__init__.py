"""One settings object for the pod, read from `SWITCHBOARD_*` environment variables.

Every knob has a default that works on a laptop; the only required value is the Twilio auth
token, because without it no webhook can be trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from db.settings import DbSettings

Resampler = Literal["fir", "QQ", "LQ", "MQ", "HQ", "VHQ"]


class Settings(BaseSettings):
    """Pod configuration. Each field is `SWITCHBOARD_<FIELD NAME>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    # -- serving -----------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Address `switchboard serve` binds."""
    port: int = Field(8000, ge=0, le=65535)
    """Port `switchboard serve` binds (0 picks a free one)."""

    # -- Twilio ------------------------------------------------------------------------
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

    # -- routing -----------------------------------------------------------------------
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

    max_concurrent_calls: int = Field(16, ge=1)
    """Calls this pod carries at once (reserved at the webhook, released when the stream ends);
    the webhook answers busy past it. From `benchmarks/pod_load.py` in a 1 GiB cgroup with the
    engines in process: 500-640 MB idle, 779 MB peak at 30 calls, ~0.6 MB per added call, so memory
    admits far more; CPU binds first (2 cores answered 6 concurrent calls in real time, about half
    of 20): lower it on small nodes, raise it with remote engines."""

    # -- memory guard, health and drain -------------------------------------------------
    memory_limit_bytes: int = Field(1 << 30, ge=64 * 1024 * 1024)
    """Memory budget used when the container's cgroup sets no limit (`max`, or no cgroup at all);
    usage is then the process RSS. A cgroup limit, where there is one, is used instead."""
    memory_soft_percent: float = Field(80.0, gt=0, lt=100)
    """Memory use (share of the limit) from which new calls are refused (reason `memory`) and
    `/readyz` answers 503; below it again by 5 points, calls are admitted."""
    memory_hard_percent: float = Field(90.0, gt=0, le=100)
    """Memory use (share of the limit) from which the guard is `hard`: tool calls and long utterances
    are refused, free memory is released, and then the newest call is ended with the apology (see
    `shed_cooldown_seconds`); above the soft one."""
    memory_sample_interval_seconds: float = Field(1.0, ge=0.05, le=60)
    """How often memory is read in the background (admission and `/readyz` also read on demand)."""
    shed_cooldown_seconds: float = Field(5.0, ge=0.5, le=300)
    """At the hard threshold, at most one call is ended (and free memory released once) per this
    many seconds, so what an ended call frees is seen before another is chosen."""
    shed_goodbye_seconds: float = Field(20.0, ge=1, le=120)
    """Longest a call the pod ends may take over its apology before its stream is closed anyway."""
    drain_timeout_seconds: float = Field(900.0, ge=0, le=4 * 3600)
    """Longest `POST /drain` waits for the pod's calls to end (default: the agents' default maximum
    call length); keep the pod's `terminationGracePeriodSeconds` above it."""
    drain_token: SecretStr | None = None
    """When set, `POST /drain` needs `Authorization: Bearer <token>` (from any address); unset, it is
    accepted from loopback only (a preStop exec hook inside the pod)."""
    readiness_check_timeout_seconds: float = Field(2.0, gt=0, le=30)
    """Bound on each dependency check of `/readyz` (the database ping); slower counts as down."""

    # -- media stream bounds -----------------------------------------------------------
    ws_max_message_bytes: int = Field(64 * 1024, ge=4096)
    """Largest media-stream message we parse; bigger ones are logged and dropped. A Twilio
    20 ms media message is ~0.3 KB and `start` ~2 KB."""
    ws_max_frame_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024)
    """Largest WebSocket frame the server reads at all (uvicorn `ws_max_size`); above it the
    connection is closed with 1009. Must exceed `ws_max_message_bytes`."""
    stream_start_timeout_seconds: float = Field(10.0, gt=0, le=120)
    """A stream that has not sent a valid `start` by then is closed (1008)."""
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

    # -- audio -------------------------------------------------------------------------
    pipeline_sample_rate: int = Field(16000, ge=8000, le=48000)
    """Rate of the PCM16 frames the session receives."""
    inbound_resampler: Resampler = "fir"
    """8 kHz -> pipeline rate: "fir" (polyphase FIR, 4 ms delay) or a soxr quality ("MQ", "HQ"…,
    which hold back 63 ms on average and emit nothing for the first 120 ms; see
    benchmarks/audio_path.py)."""
    outbound_resampler: Resampler = "fir"
    """TTS rate -> 8 kHz: "fir" for simple ratios (24k, 16k, 48k; soxr HQ otherwise) or a soxr
    quality."""

    # -- agents ------------------------------------------------------------------------
    serve_stored_agents: bool = True
    """Serve agents stored in MongoDB (created and changed through the admin API) without a
    redeploy: with a database, the voice engines load at start-up even with no agents file."""
    stored_agents_max: int = Field(32, ge=1, le=1000)
    """Bound on stored agents kept built in the pod (least recently used dropped first)."""
    agents_file: Path | None = None
    """JSON file with a list of agent configs (see `agents/config.py`); each becomes a voice
    agent on this pod's engines. The built-in `echo` agent is always there."""
    transfer_number: str | None = None
    """Where agents transfer a caller (the echo agent on `0`, voice agents on `transfer_call`)
    unless an agent config names its own."""

    model_cache: Path | None = None
    """Where model files assembled from package parts are kept (unset: `~/.cache/switchboard`)."""

    # -- voice activity ----------------------------------------------------------------
    vad_threshold: float = Field(0.4, gt=0.15, lt=1.0)
    """Silero speech probability above which a window is speech."""
    vad_min_speech_ms: int = Field(120, ge=32, le=2000)
    """Speech shorter than this is ignored (a click, a cough); also the barge-in reaction time."""
    vad_end_of_turn_ms: int = Field(600, ge=100, le=5000)
    """Caller silence that ends a turn."""
    max_utterance_ms: int = Field(30_000, ge=1000, le=120_000)
    """Bound on one caller utterance kept for transcription; the turn is forced to end past it."""
    shed_utterance_ms: int = Field(8_000, ge=1000, le=120_000)
    """Bound on one caller utterance while memory is at the hard threshold (shedding)."""

    # -- speech-to-text ----------------------------------------------------------------
    stt_model: str = "bundled:tiny.en"
    """faster-whisper model: `bundled:tiny.en` (package-carried, sha256-checked), a local
    CTranslate2 directory, or a hub id such as `Systran/faster-whisper-small.en`."""
    stt_beam_size: int = Field(1, ge=1, le=10)
    """Beam width for decoding (1 = greedy, fastest)."""
    stt_threads: int = Field(2, ge=1, le=64)
    """CPU threads per transcription."""
    stt_early_transcription: bool = True
    """Transcribe while the caller pauses, so the transcript is ready when the turn ends."""
    stt_max_pending: int = Field(8, ge=1, le=256)
    """Bound on transcriptions running or queued in the pod (remote: requests in flight to the
    speech service; `switchboard speech`: jobs in its pool, past which it answers 503). Past it a
    turn fails: the apology in-process, the say-again line remote."""
    stt_backend: Literal["local", "remote"] = "local"
    """`local`: faster-whisper in this process; `remote`: the OpenAI transcription API at `stt_url`
    (`switchboard speech`, vLLM serving Whisper), and Whisper is never loaded here."""
    stt_url: AnyHttpUrl | None = None
    """Base URL of the transcription service (`/v1`); unset: `speech_url`."""
    stt_remote_model: str = Field("whisper-1", min_length=1, max_length=200)
    """Model name sent with remote transcriptions (vLLM: the model it serves; `switchboard speech`: any)."""

    # -- chat model --------------------------------------------------------------------
    llm_backend: Literal["openai", "embedded"] = "openai"
    """`openai`: an OpenAI-compatible server (vLLM, llama.cpp server, Ollama, SGLang);
    `embedded`: llama.cpp in-process (`pip install 'switchboard[embedded]'`), for CPU-only demos."""
    llm_base_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8001/v1")
    """Base URL of the OpenAI-compatible API (vLLM serves `/v1`)."""
    llm_model: str = "Qwen/Qwen2.5-7B-Instruct"
    """Model name sent with each request (the one the server serves)."""
    llm_api_key: SecretStr = SecretStr("EMPTY")
    """API key for the model server (vLLM accepts any unless started with `--api-key`)."""
    llm_first_token_timeout_seconds: float = Field(4.0, gt=0, le=60)
    """No first token by then: retry once, then apologise."""
    llm_timeout_seconds: float = Field(30.0, gt=0, le=300)
    """Bound on one whole model request."""
    llm_max_tokens: int = Field(300, ge=16, le=4096)
    """Bound on the tokens of one reply."""
    llm_temperature: float = Field(0.3, ge=0.0, le=2.0)
    """Sampling temperature (low: consistent answers on a phone line)."""
    llm_embedded_model: str = "bundled:smollm2-135m"
    """GGUF for the embedded backend: `bundled:smollm2-135m` (package-carried, sha256-checked) or a path."""
    llm_embedded_threads: int = Field(1, ge=1, le=64)
    """CPU threads for the embedded model (1 measured faster than 2 on a shared 2-core machine)."""

    # -- text-to-speech ----------------------------------------------------------------
    tts_model: str = "bundled:kokoro-82m-int8"
    """Kokoro ONNX model: `bundled:kokoro-82m-int8` (package-carried, sha256-checked) or a path."""
    tts_voices: Path | None = None
    """Kokoro voices file; unset with the bundled model: its voices (production: `voices-v1.0.bin`)."""
    tts_voice: str = "jf_nezumi"
    """Voice to speak with (production English voices: e.g. `af_heart`)."""
    tts_speed: float = Field(1.0, ge=0.5, le=2.0)
    """Speaking rate (1.0 is the voice's own)."""
    tts_threads: int = Field(2, ge=1, le=64)
    """CPU threads per synthesis."""
    tts_max_pending: int = Field(16, ge=1, le=256)
    """Bound on syntheses running or queued in the pod (remote: speech requests in flight to the
    service; `switchboard speech`: pieces in its pool, past which it answers 503). Past it a turn
    fails: the apology in-process, the say-again line remote."""
    tts_backend: Literal["local", "remote"] = "local"
    """`local`: Kokoro in this process; `remote`: the OpenAI speech API at `tts_url` (`switchboard
    speech`, Kokoro-FastAPI) streaming 24 kHz PCM, and Kokoro is never loaded here."""
    tts_url: AnyHttpUrl | None = None
    """Base URL of the speech service (`/v1`); unset: `speech_url`."""
    tts_remote_model: str = Field("kokoro", min_length=1, max_length=200)
    """Model name sent with remote speech requests (Kokoro-FastAPI and `switchboard speech`: `kokoro`)."""
    tts_max_piece_chars: int = Field(100, ge=20, le=500)
    """Bound on the text of one Kokoro model call (longer sentences are cut at a clause or word).
    It bounds the largest allocation a call makes: one run at 80 / 120 / 160 / 250 characters grows
    the process by 233 / 387 / 429 / 708 MB (onnxruntime keeps the arena), and 250 got a 1 GiB pod
    with Whisper OOM-killed in `benchmarks/pod_load.py --long-every 2`."""

    # -- remote speech engines -----------------------------------------------------------
    speech_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8002/v1")
    """Base URL of the OpenAI-compatible audio API (`switchboard speech` serves `/v1`) for the
    remote backends."""
    speech_api_key: SecretStr | None = None
    """Bearer token sent to the speech service(s), if they need one."""
    speech_timeout_seconds: float = Field(5.0, gt=0, le=60)
    """Bound on waiting for a speech request's answer to start (retries included) and on any
    gap in a streamed answer; past it the turn gets the say-again line."""
    speech_connect_timeout_seconds: float = Field(1.0, gt=0, le=30)
    """Bound on opening one connection to the speech service (a dead one fails fast, then retries)."""
    speech_retries: int = Field(2, ge=0, le=10)
    """Further attempts of a speech request that failed before any answer (connection refused,
    429, 502-504), with backoff from 0.2 s, inside `speech_timeout_seconds`."""
    speech_host: str = "127.0.0.1"
    """Address `switchboard speech` binds."""
    speech_port: int = Field(8002, ge=0, le=65535)
    """Port `switchboard speech` binds."""
    speech_max_request_bytes: int = Field(10 * 1024 * 1024, ge=64 * 1024, le=100 * 1024 * 1024)
    """`switchboard speech`: bound on an uploaded request body (413 past it); 10 MB is over
    5 minutes of 16 kHz PCM16."""
    call_outcome_ttl_seconds: int = Field(300, ge=10)
    """How long a hang-up/transfer decision waits for Twilio's `<Connect action>` request."""
    call_outcomes_max: int = Field(10_000, ge=100)
    """Bound on remembered call outcomes (oldest evicted)."""

    # -- tools and data ------------------------------------------------------------------
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
    tool_max_steps_per_turn: int = Field(4, ge=1, le=16)
    """Tool calls the model may make in one caller turn."""
    tool_max_result_bytes: int = Field(8192, ge=256, le=1_000_000)
    """Bound on one tool result handed back to the model."""
    tool_timeout_seconds: float = Field(5.0, gt=0, le=60)
    """A tool that takes longer is abandoned and the model told so."""

    # -- admin API, outbound calls and campaigns ------------------------------------------
    api_keys: SecretStr | None = None
    """Keys for the admin API under `/api`, each with its scopes: `key1:agents:read,calls:read;key2:*`
    (`;` between keys, `,` between scopes) or JSON `{"key1": ["agents:read"]}`. Scopes are
    `<resource>:read` / `<resource>:write` for agents, numbers, calls and campaigns, or `*`. Unset:
    every API request is refused (401)."""
    api_max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    """Bound on an admin API request body (contact uploads have their own bound)."""
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

    # -- logging -----------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Threshold for the JSON log lines written to stderr."""

    @field_validator("numbers", mode="before")
    @classmethod
    def _parse_numbers(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f'must be a JSON object like {{"+15550100": "echo"}}: {exc}') from None
        return value

    @field_validator("memory_hard_percent")
    @classmethod
    def _hard_above_soft(cls, value: float, info) -> float:  # type: ignore[no-untyped-def]
        soft = info.data.get("memory_soft_percent")
        if soft is not None and value <= soft:
            raise ValueError("must be larger than memory_soft_percent")
        return value

    @field_validator("ws_max_frame_bytes")
    @classmethod
    def _frame_above_message(cls, value: int, info) -> int:  # type: ignore[no-untyped-def]
        message = info.data.get("ws_max_message_bytes")
        if message is not None and value <= message:
            raise ValueError("must be larger than ws_max_message_bytes")
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_api_keys(value.get_secret_value())  # fail at start-up, naming no key
        return value

    def api_key_scopes(self) -> dict[str, frozenset[str]]:
        """API key -> its scopes (empty when no keys are configured: the API refuses everything)."""
        return parse_api_keys(self.api_keys.get_secret_value()) if self.api_keys is not None else {}

    def db_settings(self) -> DbSettings:
        """The database layer's settings (its other bounds keep their defaults: see db/settings.py)."""
        return DbSettings(
            uri=self.mongodb_uri.get_secret_value() if self.mongodb_uri else DbSettings().uri,
            database=self.mongodb_database,
            max_limit=self.db_max_limit,
            max_time_ms=self.db_max_time_ms,
            max_result_bytes=self.db_max_result_bytes,
        )

    def call_token_key(self) -> bytes:
        """The HMAC key for call tokens (explicit, or derived from the auth token)."""
        if self.call_token_secret is not None:
            return self.call_token_secret.get_secret_value().encode()
        token = self.twilio_auth_token.get_secret_value().encode()
        return hmac.new(token, b"switchboard call token v1", hashlib.sha256).digest()


API_RESOURCES = ("agents", "numbers", "calls", "campaigns")
API_SCOPES = frozenset({"*"} | {f"{r}:{a}" for r in API_RESOURCES for a in ("read", "write")})
MIN_API_KEY_CHARS = 16


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
        unknown = sorted(set(named) - API_SCOPES)
        if unknown or not named:
            raise ValueError(f"api_keys: key {n} has unknown or no scopes {unknown}; known: {sorted(API_SCOPES)}")
        keys[key] = frozenset(named)
    return keys


def settings_table() -> str:
    """Every setting as a Markdown table row: variable, default, meaning (the README's table)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.is_required():
            default = "(required)"
        elif field.default_factory is not None:
            default = repr(field.default_factory())  # type: ignore[call-arg]
        else:
            default = "(unset)" if field.default is None else str(field.default)
        meaning = " ".join((field.description or "").split()).replace("|", "/")
        rows.append(f"| `SWITCHBOARD_{name.upper()}` | `{default}` | {meaning} |")
    return "\n".join(rows)
