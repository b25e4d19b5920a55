"""The port between a call's carrier and the conversation.

A session sees a call only through `CallPort`: it reads `CallEvent`s (caller audio as PCM16 at
the pipeline rate, DTMF digits, and which marks the caller has heard) and asks the carrier to
play audio, mark a point in it, clear it, hang up or transfer. Telephony implements the port for
Twilio; tests implement it in memory. Keeping call control on the port (not in a tool) means the
conversation never reaches into telephony.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Who is calling whom, as the webhook saw it (carried by the signed call token)."""

    call_sid: str
    stream_sid: str
    agent_id: str
    from_number: str
    to_number: str
    direction: str = "inbound"
    sample_rate: int = 16000
    """Rate of the PCM16 mono frames in `AudioIn`."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Per-call values for the agent's prompt (a campaign contact's columns): `{name}` in the
    system prompt becomes the value."""


@dataclass(frozen=True, slots=True)
class AudioIn:
    """A frame of the caller's audio: PCM16 little-endian mono at `CallInfo.sample_rate`."""

    pcm: bytes
    timestamp_ms: int
    """Milliseconds since the stream started, as the carrier stamped the frame."""


@dataclass(frozen=True, slots=True)
class DtmfIn:
    """The caller pressed a key (0-9, *, #, A-D)."""

    digit: str


@dataclass(frozen=True, slots=True)
class MarkHeard:
    """A mark the session placed has been reached.

    `heard` is True when the caller heard all audio queued before the mark, and False when a
    `clear` dropped that audio first: after `clear()` every outstanding mark is reported at once
    with `heard=False`, so a session can cut its history to what was actually heard.
    """

    name: str
    heard: bool = True


@dataclass(frozen=True, slots=True)
class EndRequested:
    """The pod asks the agent to end this call now, gracefully: say a short goodbye (the apology)
    and hang up. Sent when the pod sheds load under memory pressure; the call is the newest one."""

    reason: str


CallEvent = AudioIn | DtmfIn | MarkHeard | EndRequested


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call (after the audio already queued has played)."""

    reason: str = "completed"


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the caller to a phone number or SIP address."""

    to: str
    reason: str = "transfer"


CallOutcome = Hangup | Transfer


class CallPort(Protocol):
    """What a session may ask of the call it is handling."""

    @property
    def info(self) -> CallInfo: ...

    def events(self) -> AsyncIterator[CallEvent]:
        """Caller events in order; the iteration ends when the call ends."""
        ...

    async def play(self, pcm: bytes, sample_rate: int) -> None:
        """Queue PCM16 mono audio at any rate; waits while the outbound buffer is full."""
        ...

    async def mark(self, name: str) -> None:
        """Place a mark after the audio queued so far; it comes back as `MarkHeard`."""
        ...

    async def clear(self) -> None:
        """Drop all queued and in-flight agent audio at once (barge-in)."""
        ...

    async def hang_up(self, reason: str = "completed") -> None:
        """End the call once queued audio has played; `events()` then ends."""
        ...

    async def transfer(self, to: str) -> None:
        """Hand the caller to `to` (E.164 number or SIP URI) once queued audio has played."""
        ...


class Agent(Protocol):
    """An agent handles one call from answer to hang-up."""

    async def run(self, port: CallPort) -> None: ...


@dataclass
class AgentCatalog:
    """Agent ids -> agents, the lookup the media stream uses after verifying the call token."""

    agents: dict[str, Agent] = field(default_factory=dict)

    def get(self, agent_id: str) -> Agent | None:
        return self.agents.get(agent_id)
