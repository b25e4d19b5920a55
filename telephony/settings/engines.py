"""Sections of the agents and their engines: voice activity, speech-to-text, the chat model,
text-to-speech, the remote speech service, and `switchboard speech` itself."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from telephony.settings.section import Section


class AgentSettings(Section):
    """Which agents the pod serves."""

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
    transfer_allowed_numbers: str = "+1*"
    """Where calls may be transferred: comma-separated E.164 prefixes with an optional trailing `*`
    (`+1*,+4420*`) or SIP URIs with a fixed host (`sip:*@pbx.example.com`); checked when an agent is
    written (422), for `transfer_number` at start-up, and again before Twilio dials. Premium-rate
    (+1 900, exchange 976) and +1 numbers outside the US and Canada are refused whatever this says.
    Empty: no transfers."""
    agent_voices: str | None = None
    """Voices an agent config may name (comma-separated), checked when an agent is written (422).
    Unset: the in-process TTS's own voices, or with a remote TTS only `tts_voice`."""

    @field_validator("transfer_allowed_numbers")
    @classmethod
    def _transfer_patterns(cls, value: str) -> str:
        from telephony.twilio.transfer_numbers import parse_patterns

        parse_patterns(value)  # refuse a pattern that opens everything at start-up
        return value

    @model_validator(mode="after")
    def _transfer_number_allowed(self) -> AgentSettings:
        from telephony.twilio.transfer_numbers import TransferNumbers

        if self.transfer_number is not None:
            refusal = TransferNumbers(self.transfer_allowed_numbers).refusal(self.transfer_number)
            if refusal is not None:
                raise ValueError(f"transfer_number: {refusal}")
        return self

    model_cache: Path | None = None
    """Where model files assembled from package parts are kept (unset: `~/.cache/switchboard`)."""


class ListeningSettings(Section):
    """Voice activity: when the caller speaks, and how long one utterance may be."""

    vad_threshold: float = Field(0.4, gt=0.15, lt=1.0)
    """Silero speech probability above which a window is speech."""
    vad_min_speech_ms: int = Field(120, ge=32, le=2000)
    """Speech shorter than this is ignored (a click, a cough); also the barge-in reaction time when
    `vad_barge_in_onset_ms` is off."""
    vad_barge_in_onset_ms: int = Field(64, ge=0, le=2000)
    """Speech over the agent's audio clears the line (holding the reply) once it lasts this long; a
    sound that never reaches `vad_min_speech_ms` lets the reply resume. 0, or not below
    `vad_min_speech_ms`: the line is cleared at `vad_min_speech_ms`."""
    vad_end_of_turn_ms: int = Field(600, ge=100, le=5000)
    """Caller silence that ends a turn (the `silence` rule)."""
    turn_detection: Literal["silence", "words", "smart_turn"] = "words"
    """`words`: the early transcript's words and the silence so far may end a turn from
    `turn_smart_silence_ms` on (a question after ~350 ms, a statement after ~470, an unfinished
    "and" or a number still being read only at `turn_smart_max_wait_ms`; `agents/conversation/
    end_of_turn.py`). `silence`: a turn ends after `vad_end_of_turn_ms` of silence. `smart_turn`:
    `words` with Smart Turn v3.2's probability added (`turn_smart_model_weight`). On the turn set
    (`benchmarks/turn_taking.py`) `words` cut off fewer callers than silence 600 ms (22.1 % against
    24.3 %) and ended turns sooner (p50 548 against 682 ms, p95 859 against 849)."""
    turn_smart_silence_ms: int = Field(200, ge=0, le=2000)
    """`words`, `smart_turn`: pause before the rule first judges the turn (and Smart Turn runs)."""
    turn_smart_max_wait_ms: int = Field(750, ge=300, le=5000)
    """`words`, `smart_turn`: silence that ends a turn whatever the words and the model say."""
    turn_smart_threshold: float = Field(0.8, gt=0.0, lt=1.0)
    """`words`, `smart_turn`: completion (transcript's words, silence so far, the model's probability
    in `smart_turn`; see `agents/conversation/end_of_turn.py`) that ends a turn."""
    turn_smart_model_weight: float = Field(1.0, ge=0.0, le=4.0)
    """`smart_turn`: weight of Smart Turn's log-odds in that completion (0: ignored; `words` ignores
    it always). Recalibrate on recorded calls."""
    max_utterance_ms: int = Field(30_000, ge=1000, le=120_000)
    """Bound on one caller utterance kept for transcription; the turn is forced to end past it."""
    shed_utterance_ms: int = Field(8_000, ge=1000, le=120_000)
    """Bound on one caller utterance while memory is at the hard threshold (shedding)."""


class SpeechToTextSettings(Section):
    """Speech-to-text, in process (faster-whisper) or remote."""

    stt_model: str = "bundled:tiny.en"
    """faster-whisper model: `bundled:tiny.en` (package-carried, sha256-checked), a local
    CTranslate2 directory, or a hub id such as `Systran/faster-whisper-small.en`."""
    stt_beam_size: int = Field(1, ge=1, le=10)
    """Beam width for decoding (1 = greedy, fastest)."""
    stt_threads: int = Field(2, ge=1, le=64)
    """CPU threads per transcription."""
    stt_min_window_seconds: float = Field(10.0, ge=1.0, le=30.0)
    """Audio window Whisper's encoder hears for a short turn (one that leaves 5 s of silence in it;
    longer audio gets Whisper's own 30 s); 30: always Whisper's own. Shorter is faster (tiny.en on 2
    cores: ~100 ms instead of ~300 ms for a 2 s turn) and was as accurate on the turn set at 10 s
    (`benchmarks/stt_wer.py`); much shorter was not."""
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


class LlmSettings(Section):
    """The chat model: an OpenAI-compatible server, or llama.cpp in process."""

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
    speculative_replies: bool = True
    """Start the model request (and the first TTS piece) during the caller's pause, before the turn
    is confirmed; nothing plays until it is, and the request is cancelled if the caller goes on
    (a pod knob: wasted requests load the shared model server and TTS)."""
    llm_embedded_model: str = "bundled:smollm2-135m"
    """GGUF for the embedded backend: `bundled:smollm2-135m` (package-carried, sha256-checked) or a path."""
    llm_embedded_threads: int = Field(1, ge=1, le=64)
    """CPU threads for the embedded model (1 measured faster than 2 on a shared 2-core machine)."""


class TextToSpeechSettings(Section):
    """Text-to-speech, in process (Kokoro) or remote."""

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
    tts_opener_cache_bytes: int = Field(1024 * 1024, ge=0, le=16 * 1024 * 1024)
    """Bound per agent on the audio of learned reply openers (a reply's first piece, when short and
    without digits, kept once spoken and played at once when a reply opens with it again: Kokoro
    takes 300-500 ms even for "Of course," on 2 cores). 1 MiB is ~22 s of audio; 0 learns none."""
    tts_max_piece_chars: int = Field(100, ge=20, le=500)
    """Bound on the text of one Kokoro model call (longer sentences are cut at a clause or word).
    It bounds the largest allocation a call makes: one run at 80 / 120 / 160 / 250 characters grows
    the process by 233 / 387 / 429 / 708 MB (onnxruntime keeps the arena), and 250 got a 1 GiB pod
    with Whisper OOM-killed in `benchmarks/pod_load.py --long-every 2`."""


class RemoteSpeechSettings(Section):
    """How a pod with remote engines reaches the speech service."""

    speech_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8002/v1")
    """Base URL of the OpenAI-compatible audio API (`switchboard speech` serves `/v1`) for the
    remote backends."""
    speech_api_key: SecretStr | None = None
    """Bearer token sent to the speech service(s); `switchboard speech` requires one of its
    `SWITCHBOARD_SPEECH_SERVER_API_KEYS`."""
    speech_timeout_seconds: float = Field(5.0, gt=0, le=60)
    """Bound on waiting for a speech request's answer to start (retries included) and on any
    gap in a streamed answer; past it the turn gets the say-again line."""
    speech_connect_timeout_seconds: float = Field(1.0, gt=0, le=30)
    """Bound on opening one connection to the speech service (a dead one fails fast, then retries)."""
    speech_retries: int = Field(2, ge=0, le=10)
    """Further attempts of a speech request that failed before any answer (connection refused,
    429, 502-504), with backoff from 0.2 s, inside `speech_timeout_seconds`."""


class SpeechServerSettings(Section):
    """Where `switchboard speech` listens, and what it accepts."""

    speech_host: str = "127.0.0.1"
    """Address `switchboard speech` binds."""
    speech_port: int = Field(8002, ge=0, le=65535)
    """Port `switchboard speech` binds."""
    speech_max_request_bytes: int = Field(10 * 1024 * 1024, ge=64 * 1024, le=100 * 1024 * 1024)
    """`switchboard speech`: bound on an uploaded request body (413 past it); 10 MB is over
    5 minutes of 16 kHz PCM16."""
    speech_max_upload_seconds: float = Field(120.0, gt=0, le=600)
    """`switchboard speech`: bound on an upload's audio, checked from a WAV's header before any
    decode or resample, and while decoding compressed input (400 past it)."""
    speech_server_api_keys: SecretStr | None = None
    """`switchboard speech`: the bearer keys it accepts, comma-separated (old and new during a
    rotation; each at least 16 characters). Pods send theirs as `SWITCHBOARD_SPEECH_API_KEY`. Without
    one the service refuses to start unless `SWITCHBOARD_SPEECH_ALLOW_UNAUTHENTICATED` is set."""
    speech_allow_unauthenticated: bool = False
    """`switchboard speech`: serve without keys (a laptop or a test; never where others can reach it)."""

    def speech_server_keys(self) -> list[str]:
        """The accepted keys, one per comma-separated entry (blanks dropped)."""
        text = self.speech_server_api_keys.get_secret_value() if self.speech_server_api_keys else ""
        return [key.strip() for key in text.split(",") if key.strip()]
