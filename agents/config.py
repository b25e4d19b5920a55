"""What an agent is: its prompt, voice lines, tools and the limits of its calls.

Agent configs arrive from files, the database and the admin API, so every field is validated and
bounded here, once, and the session can trust them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agents.identity.policy import IdentityPolicy
from agents.post_call.declaration import PostCallConfig
from db.agent_configs import AGENT_ID_PATTERN
from db.tool_declarations import TOOL_REFERENCE_PATTERN
from tools.pii import MAX_PII_PATTERNS, PiiPattern

BACKCHANNEL_WORDS = (
    *("mhm", "mm-hmm", "mmhmm", "mm", "hmm", "uh-huh", "yeah", "yep", "yup"),
    *("okay", "ok", "right", "sure", "i see", "all right", "alright", "oh", "ah", "aha"),
)
"""Default `backchannel_words`, with the spellings Whisper uses for the same sounds."""
MAX_BACKCHANNEL_WORDS = 64
"""Bound on an agent's `backchannel_words`."""
MAX_NUMBER_LENGTHS = 16
"""Bound on an agent's `number_lengths`."""
NumberCue = Annotated[str, StringConstraints(pattern=r"^[a-z]+( [a-z]+){0,3}$", max_length=40)]
"""A number's cue: one to four lower-case words said just before it ("order number")."""


class SttOptions(BaseModel):
    """Speech-to-text choices for one agent; unset fields take the pod's settings."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    model: str | None = Field(None, min_length=1, max_length=200)
    """faster-whisper model (stored and versioned; the pod's engines serve every agent today)."""
    beam_size: int | None = Field(None, ge=1, le=10)


class LlmOptions(BaseModel):
    """Chat-model choices for one agent; unset fields take the pod's settings."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    model: str | None = Field(None, min_length=1, max_length=200)
    """Model name sent to the OpenAI-compatible server."""
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=16, le=4096)


class TtsOptions(BaseModel):
    """Text-to-speech choices for one agent (the voice itself is `AgentConfig.voice`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    speed: float | None = Field(None, ge=0.5, le=2.0)


class AgentConfig(BaseModel):
    """One agent. Times are in seconds or milliseconds as the name says."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    id: str = Field(pattern=AGENT_ID_PATTERN)
    """Lower-case id the phone-number routing points at (the database's rule: `db.agent_configs`)."""
    language: str = Field("en", pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")
    """BCP 47 language of the conversation (`en`, `en-US`, `es`)."""
    stt: SttOptions = Field(default_factory=SttOptions)
    llm: LlmOptions = Field(default_factory=LlmOptions)
    tts: TtsOptions = Field(default_factory=TtsOptions)
    system_prompt: str = Field(
        "You are a friendly phone agent for a call center. Answer in one or two short spoken sentences. "
        "Never use lists, markdown or emoji. Use the tools to look things up; never invent order details.",
        min_length=1,
        max_length=8000,
    )
    voice: str | None = Field(None, max_length=64)
    """TTS voice for this agent; unset: the pod's default voice."""
    greeting: str = Field("Hello, thanks for calling. How can I help you today?", max_length=500)
    """Spoken as soon as the call connects (empty: wait for the caller)."""
    tools: list[Annotated[str, StringConstraints(pattern=TOOL_REFERENCE_PATTERN)]] = Field(
        default_factory=list, max_length=32
    )
    """Tools this agent may call: a built-in or declared tool by name (a declared one follows its
    latest version), or `name@3` (pinned to version 3 of a declared tool)."""
    tool_choice: Literal["auto", "none", "required"] = "auto"
    allow_transfer: bool = True
    """Offer the model a `transfer_call` action (needs a transfer number)."""
    transfer_number: str | None = Field(None, max_length=64)
    """E.164 number or SIP URI for transfers; falls back to the pod's transfer number."""
    allow_hang_up: bool = True
    """Offer the model an `end_call` action."""
    identity: IdentityPolicy = Field(default_factory=IdentityPolicy)
    """Who the caller is and how they prove it; caller-scoped tools only ever see the verified
    caller's key (default: the calling number's own customer, no further proof)."""

    filler_phrases: list[str] = Field(
        default_factory=lambda: ["One moment while I check that.", "Still checking, thanks for waiting."],
        min_length=1,
        max_length=8,
    )
    """Spoken while a tool runs, so the line never goes silent for longer than `max_tool_silence_ms`."""
    max_tool_silence_ms: int = Field(1200, ge=200, le=10_000)
    """Longest silence allowed while a tool runs before the next filler phrase."""
    slow_first_token_ms: int = Field(700, ge=0, le=10_000)
    """The model's first token this late (from the request, or from the end of the caller's turn
    for a reply started before it) plays the first filler phrase, once per turn; 0: never."""

    digits_grace_ms: int = Field(700, ge=0, le=5_000)
    """Extra silence waited for after a turn that ends in a number still being read out ("my card
    number is 4539 1488"), beyond the end-of-turn rule: a caller reading a card in groups goes on,
    and the whole number reaches redaction (and the model) as one turn; 0: no extra wait."""
    number_lengths: dict[NumberCue, Annotated[int, Field(ge=1, le=19)]] = Field(
        default_factory=dict, max_length=MAX_NUMBER_LENGTHS
    )
    """The digit count of this business's numbers, by the words said before them: `{"order
    number": 8}`. A number read out after its cue is finished once it has that many digits, so the
    turn ends as a plain sentence would, without the digits' grace (fewer digits: still being read
    out, the turn waits). Built in: zip 5, PIN 4, a card that "ends" in 4."""

    resume_after_backchannel: bool = True
    """Speech over the agent clears the line at once but only holds the reply: if its transcript
    is empty (a cough, noise) or only `backchannel_words`, the unheard rest is replayed and the
    utterance is not answered (off: every barge-in ends the reply, as before)."""
    backchannel_words: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(
        default_factory=lambda: list(BACKCHANNEL_WORDS), max_length=MAX_BACKCHANNEL_WORDS
    )
    """Words and short phrases that do not take the turn while the agent speaks (case, punctuation
    and hyphens are ignored: "Mm-hmm." matches "mm hmm")."""
    backchannel_prompt: str = Field("Mm-hmm. Uh-huh. Yeah. Okay.", max_length=200)
    """Speech-to-text's prompt for speech over the agent while it is held: backchannels spelled
    out, so Whisper writes a hum as "Mm-hmm." rather than as words it resembles ("And then them.")
    and the hum is not answered. Empty: no prompt."""
    max_backchannel_ms: int = Field(1200, ge=200, le=10_000)
    """Speech over the agent longer than this is a real interruption at once, without waiting for
    its transcript."""
    max_hold_ms: int = Field(4000, ge=500, le=30_000)
    """Longest a reply stays held without a verdict on the interruption; then it is dropped."""

    silence_timeout_seconds: float = Field(8.0, ge=2.0, le=120.0)
    """Caller silence (agent idle) before a re-prompt."""
    silence_reprompts: int = Field(1, ge=0, le=5)
    """Re-prompts before the agent says goodbye and hangs up."""
    reprompt: str = Field("Are you still there?", max_length=300)
    silence_goodbye: str = Field("I haven't heard from you, so I'll end the call now. Goodbye.", max_length=300)
    apology: str = Field(
        "I'm sorry, I'm having technical trouble right now. Please call back a little later. Goodbye.",
        max_length=300,
    )
    """Spoken when the model is down or failing; the call then ends."""
    say_again: str = Field("Sorry, I didn't catch that. Could you say it again?", max_length=300)
    """Spoken (pre-rendered, so it plays while the speech service is down) when a remote speech
    engine is down or too slow for a turn; the call goes on and the next turn tries again."""
    max_speech_outages: int = Field(2, ge=0, le=10)
    """Turns in a row that may fail on an unavailable speech service (each answered by `say_again`)
    before the apology and hang-up."""
    max_call_seconds: float = Field(900.0, ge=10.0, le=4 * 3600)
    """The call is wrapped up (`time_limit_goodbye`, then hang-up) after this long."""
    time_limit_goodbye: str = Field("We've reached the time limit for this call. Goodbye.", max_length=300)

    history_budget_chars: int = Field(12_000, ge=1000, le=200_000)
    """Bound on the conversation sent to the model (system prompt excluded); oldest turns go first."""
    max_reply_chars: int = Field(1200, ge=100, le=10_000)
    """Bound on one spoken reply; the model's text beyond it is not spoken."""
    max_tool_steps: int = Field(4, ge=0, le=16)
    """Tool rounds per caller turn before the model must answer without tools."""
    dtmf_timeout_ms: int = Field(1500, ge=200, le=10_000)
    """Keys pressed within this gap form one entry; `#` ends an entry at once."""
    echo_guard: bool = True
    """Cancel the agent's own voice coming back on the caller's track (line echo, speakerphones)
    before listening, so it neither interrupts the agent nor is answered (`benchmarks/echo.py`)."""

    redact_keypad: bool = True
    """Keypad entries are personal data (an account number, a card): the model, the transcript and
    the logs see "[keypad entry 1]", and only a tool the model passes that placeholder to gets the digits."""
    pii_patterns: list[PiiPattern] = Field(default_factory=list, max_length=MAX_PII_PATTERNS)
    """This business's own kinds of personal data (a member id), redacted like card numbers and SSNs."""
    tenant: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    """The business this agent serves. An API key restricted to a tenant (`tenant:<name>` among its scopes) sees
    only the calls, recordings and agents of that tenant's agents; unset: only unrestricted keys see them."""
    post_call: PostCallConfig = Field(default_factory=PostCallConfig)
    """After the call ends the model writes a summary and fills these declared fields, stored on the
    call record (`post_call`) by the pod's post-call queue, never while the call runs (default: off)."""
    retention_days: int | None = Field(None, ge=1, le=3650)
    """Days this agent's call records are kept (a TTL index removes them); unset: the pod's
    `SWITCHBOARD_CALL_RETENTION_DAYS`."""
    record: bool = False
    """Record this agent's calls (both sides, as the caller heard them) into the pod's recording
    store; kept as long as the call record (`retention_days`)."""
    recording_consent: str | None = Field(None, min_length=1, max_length=300)
    """Spoken before the greeting when set (e.g. "This call is recorded."); many places require
    callers to be told before a recording starts."""
