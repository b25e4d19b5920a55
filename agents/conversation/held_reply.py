"""A reply held by a barge-in until the interruption is judged: a backchannel, or the caller's turn.

The session clears the line the moment the caller speaks over the agent, as it always did, but
only holds the reply (`Speaker.hold`). This keeps what is known about the interruption: how much
speech it has had so far (past `max_backchannel_ms` it is a real interruption at once), and the
utterance once it ends, whose transcript gives the verdict within `max_hold_ms` of the hold.
"""

from __future__ import annotations

import asyncio
import contextlib

from agents.config import AgentConfig
from agents.conversation.backchannel import BackchannelWords
from agents.conversation.history import AssistantReply
from agents.conversation.listener import UtteranceReady
from agents.conversation.record import CallObserver, CallRecord
from agents.conversation.reply import observe
from agents.conversation.speaker import Speaker
from agents.engines.protocols import SpeechPaused, SpeechResumed, SpeechStarted


class HeldReply:
    """One hold; the session keeps at most one at a time."""

    def __init__(
        self,
        reply: AssistantReply | None,
        speech_at_ms: int,
        config: AgentConfig,
    ) -> None:
        """`speech_at_ms`: where the interrupting speech began, on the listener's audio timeline."""
        self.reply = reply
        """The model step that was speaking: marked interrupted while held, unmarked on resume."""
        if reply is not None:
            reply.interrupted = True
        self.words = BackchannelWords(config.backchannel_words)
        self.max_speech_ms = config.max_backchannel_ms
        self.deadline = asyncio.get_running_loop().time() + config.max_hold_ms / 1000
        """Loop time by which the verdict must be in, or the reply is dropped."""
        self._voiced_ms = 0
        self._voiced_since: int | None = speech_at_ms
        self.ready: UtteranceReady | None = None
        """The interrupting utterance, once it has ended."""
        self.speech_end_wall = 0.0
        """When its speech stopped (session clock), for the answer's latency if it is answered."""
        self.faded = False
        """The interrupting sound faded before it counted as speech (`fade`)."""
        self._arrived = asyncio.Event()
        self.verdict: asyncio.Task[None] | None = None
        """The session's task that waits for the verdict and acts on it."""

    def observe(self, event: object) -> None:
        """Follow the interrupting speech through the detector's events (pauses do not count)."""
        if isinstance(event, SpeechStarted | SpeechResumed) and self._voiced_since is None:
            self._voiced_since = event.at_ms
        elif isinstance(event, SpeechPaused) and self._voiced_since is not None:
            self._voiced_ms += max(0, event.at_ms - self._voiced_since)
            self._voiced_since = None

    def too_long(self, audio_ms: int) -> bool:
        """The caller has spoken longer than any backchannel: a real interruption."""
        ongoing = audio_ms - self._voiced_since if self._voiced_since is not None else 0
        return self._voiced_ms + ongoing > self.max_speech_ms

    def take(self, ready: UtteranceReady, speech_end_wall: float) -> bool:
        """The interrupting utterance has ended: its transcript decides. False if one already
        has (the caller said a second thing: no backchannel)."""
        if self.ready is not None:
            return False
        self.ready, self.speech_end_wall = ready, speech_end_wall
        self._arrived.set()
        return True

    def fade(self) -> None:
        """The sound the reply was held for never lasted long enough to be speech: no turn, so the
        verdict is in at once (unless an utterance already decides)."""
        if self.ready is None:
            self.faded = True
            self._arrived.set()

    async def is_backchannel(self) -> bool:
        """Wait (until the deadline) for the utterance's transcript: True when it has no words or
        only backchannel words, or when the sound faded before it was speech. No verdict in time,
        or a failed transcription, is False: the utterance is then answered as a turn, which
        reports a failure as any turn does."""
        try:
            async with asyncio.timeout_at(self.deadline):
                await self._arrived.wait()
                if self.ready is None:
                    return self.faded
                transcript = await asyncio.shield(self.ready.transcript)
        except Exception:
            return False
        return self.words.only_backchannel(transcript.text)

    async def resume(self, speaker: Speaker, record: CallRecord, observer: CallObserver | None) -> None:
        """The reply goes on, counted: its parts replayed under new marks are judged by those marks."""
        if self.reply is not None:
            self.reply.interrupted = False
        record.resumed_replies += 1
        record.say("system", "resumed after backchannel")
        observe(observer, lambda observer: observer.reply_resumed())
        await speaker.resume()

    def stop(self) -> None:
        """The hold is over: stop waiting for the verdict (unless this is the waiting task)."""
        if self.verdict is not None and self.verdict is not asyncio.current_task():
            self.verdict.cancel()

    async def wait_stopped(self) -> None:
        """Let a cancelled verdict task finish (nothing of a call is left running)."""
        if self.verdict is not None and self.verdict is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.verdict
