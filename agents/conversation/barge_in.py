"""Barge-in, the part of a call's session that yields to the caller.

Caller speech (or a key press) over the agent stops it at once: the line is cleared before anything
else. Speech over the agent's audio only holds the reply (`HeldReply`, `Speaker.hold`) until the
interruption's transcript says whether the caller took the turn: a backchannel or a cough resumes
the unheard rest of the reply and is not answered; real words cancel the reply and are answered, as
every barge-in was before. Mixed into `CallSession`, whose turn state it works on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from agents.config import AgentConfig
from agents.conversation.held_reply import HeldReply
from agents.conversation.history import ConversationHistory
from agents.conversation.listener import TurnListener, UtteranceReady
from agents.conversation.record import CallObserver, CallRecord
from agents.conversation.reply import ReplyPipeline, observe
from agents.conversation.speaker import Speaker

log = logging.getLogger("switchboard.agents")


class BargeIns:
    """The session's barge-in handling; `CallSession` provides the state and the turn methods."""

    config: AgentConfig
    speaker: Speaker
    listener: TurnListener
    reply: ReplyPipeline
    history: ConversationHistory
    record: CallRecord
    observer: CallObserver | None
    _turn: asyncio.Task[None] | None
    _held: HeldReply | None
    _ending: bool

    if TYPE_CHECKING:

        def _start_turn(self, work: Awaitable[None]) -> None: ...

        def _hold_words(self, ready: UtteranceReady) -> None: ...

        def _answer_speech(self, ready: UtteranceReady, speech_end_wall: float) -> Awaitable[None]: ...

    def _agent_busy(self) -> bool:
        return self._turn_active() or self.speaker.speaking

    def _turn_active(self) -> bool:
        return self._turn is not None and not self._turn.done()

    def _holding(self) -> bool:
        """A reply is held after a barge-in until the verdict on it: no speculative reply starts."""
        return self._held is not None

    def _may_hold(self) -> bool:
        """Speech over the agent's audio may hold the reply on its onset: only a hold, never a
        cancelled turn, is safe to start before the speech is sure (a faded onset resumes it)."""
        resumable = self.config.resume_after_backchannel and self._held is None
        return resumable and self.speaker.speaking and not self._ending

    async def _barge_in(self, why: str, speech_at_ms: int | None = None) -> None:
        """The caller spoke or pressed a key over the agent: stop at once.

        Speech over the agent's audio (`speech_at_ms`) clears the line first, as fast as ever, but
        holds the reply until its transcript tells a backchannel from the caller taking the turn
        (`_judge`). Otherwise the turn is cancelled before the line is cleared, so no audio it had
        in hand can be queued after the `clear`. If the agent was only thinking, nothing is
        cleared or counted.
        """
        audible = self.speaker.speaking
        if speech_at_ms is not None and self._may_hold():
            await self.speaker.hold()
            self._held = HeldReply(self.reply.current, speech_at_ms, self.config)
            self.listener.prompt = self.config.backchannel_prompt or None  # likely a hum: spell it as one
            self._held.verdict = asyncio.create_task(self._judge(self._held), name=f"held-{self.record.call_sid}")
            self._barged_in(why)
            return
        if self._held is not None:  # a key press over a held reply: the line is clear already
            await self._drop_hold()
            return
        turn, self._turn = self._turn, None
        if self.reply.current is not None:
            self.reply.current.interrupted = True  # parts not yet reported heard were not heard
        if turn is not None and not turn.done():
            turn.cancel()
        if audible:
            await self.speaker.clear()
            self._barged_in(why)
        await self._settle(turn)

    def _barged_in(self, why: str) -> None:
        self.record.barge_ins += 1
        observe(self.observer, lambda observer: observer.barged_in())
        self.record.say("system", f"barge-in ({why})")
        log.info("barge-in", extra={"event": "barge_in", "why": why})

    async def _judge(self, held: HeldReply) -> None:
        """Only a backchannel or noise: replay the unheard rest of the held reply and answer nothing.
        Anything else: drop the reply and answer the interruption, as a barge-in always did."""
        backchannel = await held.is_backchannel()
        if self._held is held and backchannel and self.speaker.resumable:
            self._held, self.listener.prompt = None, None
            await held.resume(self.speaker, self.record, self.observer)
        elif self._held is held:
            await self._drop_hold()

    async def _drop_hold(self) -> None:
        """The held reply is dropped: its turn cancelled, and the interruption answered if it has ended."""
        if self._held is None:
            return
        held, turn, self._turn = self._held, self._turn, None
        if turn is not None and not turn.done():
            turn.cancel()  # before the release: its waiting audio must never reach the line
        self._release_hold()
        if held.ready is not None and not self._ending:
            self._hold_words(held.ready)
            self._start_turn(self._answer_speech(held.ready, held.speech_end_wall))
        await self._settle(turn)

    def _release_hold(self) -> None:
        held, self._held, self.listener.prompt = self._held, None, None
        if held is not None:
            held.stop()
            self.speaker.release()

    async def _cancel_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None and not turn.done():
            turn.cancel()
        self._release_hold()
        await self._settle(turn)

    async def _settle(self, turn: asyncio.Task[None] | None) -> None:
        if turn is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await turn
        self.history.close_unanswered_tool_calls("cancelled: the caller interrupted")
