"""The agent's track as the caller heard it, one inbound frame at a time.

Twilio plays what it holds in real time and streams the caller's audio continuously, one 20 ms
frame per 20 ms. So the model is: every agent frame sent to Twilio joins a "Twilio is holding it"
queue; every inbound frame of N samples takes the next N samples off that queue (or silence) as
the agent's side of the same 20 ms; a `clear` empties the queue, as Twilio drops what it holds.
What a barge-in cut off is therefore never in the recording, and the recording is exactly as long
as the inbound audio: the call's length.
"""

from __future__ import annotations

import logging

from telephony.audio.mulaw import MULAW_SILENCE, audioop, mulaw_to_pcm16

log = logging.getLogger(__name__)

MAX_HELD_BYTES = 8000 * 60
"""Bound on agent audio (mu-law bytes = samples) held unplayed in the model: a minute. Playout keeps
Twilio's share to its lead (200 ms), so this is reached only if inbound audio stops arriving while
the agent talks; the oldest audio goes first, as it would have played first."""


class AsHeard:
    """Both sides of one call, aligned: `caller()` returns stereo PCM16 (caller left, agent right)."""

    def __init__(self, max_held_bytes: int = MAX_HELD_BYTES) -> None:
        self._held = bytearray()
        self._max_held = max_held_bytes
        self.overflowed_bytes = 0
        """Agent audio dropped because the held queue was full (see `MAX_HELD_BYTES`)."""
        self.cleared_bytes = 0
        """Agent audio sent but dropped by a `clear` (a barge-in): never heard, never recorded."""

    @property
    def held_bytes(self) -> int:
        return len(self._held)

    def agent_sent(self, mulaw: bytes) -> None:
        """An agent frame went to Twilio: it will play after what Twilio already holds."""
        self._held.extend(mulaw)
        excess = len(self._held) - self._max_held
        if excess > 0:
            del self._held[:excess]
            self.overflowed_bytes += excess

    def cleared(self) -> None:
        """Twilio was told to `clear`: what it held is dropped unplayed."""
        self.cleared_bytes += len(self._held)
        self._held.clear()

    def caller(self, pcm: bytes) -> bytes:
        """An inbound frame arrived (PCM16, as the stream decoded it for the listener): the same stretch of time on
        both sides, as stereo PCM16."""
        n = len(pcm) // 2
        played = bytes(self._held[:n])
        del self._held[:n]
        if len(played) < n:
            played += MULAW_SILENCE * (n - len(played))
        left = audioop.tostereo(pcm, 2, 1, 0)
        right = audioop.tostereo(mulaw_to_pcm16(played), 2, 0, 1)
        return audioop.add(left, right, 2)
