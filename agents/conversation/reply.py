"""One answer to the caller: model -> sentences -> speech -> tool steps, until the model just talks.

The model's text is cut into sentences as it streams and each is spoken while the rest is still
being generated. Tool calls are run through the executor and the model asked again, with filler
phrases keeping the line from going silent meanwhile; call control (end, transfer) goes through
the port. The session decides when an answer starts and cancels it when the caller barges in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from agents.config import AgentConfig
from agents.conversation.control import CONTROL_ACTIONS, END_CALL, TRANSFER_CALL, control_schemas
from agents.conversation.history import AssistantReply, ConversationHistory
from agents.conversation.record import CallObserver, CallRecord, TurnMetrics
from agents.conversation.sentences import SentenceChunker
from agents.conversation.speaker import Speaker
from agents.conversation.speculation import HeldAudio, ReplyGate
from agents.engines.protocols import ChatModel, StreamEnd, TextDelta, ToolCallRequest
from agents.port import CallPort
from tools import CallerIdentity, ToolCall, ToolContext, ToolExecutor, ToolOutcome, ToolTurn
from tools.pii import SecretVault

log = logging.getLogger("switchboard.agents")

SENTENCE_QUEUE = 8
"""Bound on sentences waiting for TTS while the model keeps streaming."""
FIRST_CLAUSE_MIN_CHARS = 8
"""A reply's first chunk may end at a clause this short ("Of course,"): synthesis time grows with
the text, so the first audio leaves sooner while the rest of the sentence is synthesized."""


class CallEnded(Exception):
    """Raised inside a turn once it has ended the call through the port (end_call, transfer_call)."""


class ReplyPipeline:
    """Answers one call's caller turns; the session owns it and runs one `respond` at a time."""

    def __init__(
        self,
        port: CallPort,
        config: AgentConfig,
        *,
        chat: ChatModel,
        speaker: Speaker,
        history: ConversationHistory,
        record: CallRecord,
        tools: ToolExecutor | None,
        transfer_number: str | None,
        observer: CallObserver | None,
        clock: Callable[[], float],
        on_ending: Callable[[], None],
        vault: SecretVault | None = None,
        caller: CallerIdentity | None = None,
    ) -> None:
        """`on_ending` is called just before a control action reaches the port, so the session
        stops taking caller input for a call that is being handed over or hung up."""
        self.port = port
        self.config = config
        self.chat = chat
        self.speaker = speaker
        self.history = history
        self.record = record
        self.tools = tools
        self.transfer_number = transfer_number
        self.observer = observer
        self.clock = clock
        self.on_ending = on_ending
        self.caller = caller or CallerIdentity()
        """The call's identity (the session's verifier updates it): what caller-scoped tools read."""
        self.vault = vault if vault is not None else SecretVault()  # (an empty vault is falsy)
        """The call's secrets: caller words reach the record and the model redacted, tools get values."""
        self.current: AssistantReply | None = None
        """The model step being spoken now: a barge-in marks it interrupted."""
        self._schemas = self._tool_schemas()

    async def respond(self, text: str, metrics: TurnMetrics, since: float, gate: ReplyGate | None = None) -> None:
        """Answer `text`, the caller's words; `since` is when the caller stopped (for voice-to-voice).

        `gate`: a speculative reply, started before the turn was confirmed. Nothing of it reaches
        the caller, a tool or the port before `gate` is confirmed; cancelled before that, it leaves
        the history and the call record as they were (its words are answered by the next turn)."""
        # A turn superseded mid-tool (the caller said more) left calls without results: close them,
        # or the model server would refuse the history.
        self.history.close_unanswered_tool_calls("cancelled: the caller said more")
        checkpoint = self.history.checkpoint()
        text = self.vault.redact(text, follows=self.history.last_user_text())  # the rest of a card paused in
        self.record.say("caller", text)
        line = self.record.transcript[-1]
        self.history.add_user(text)
        try:
            await self._steps(metrics, since, gate)
        except Exception:
            if gate is not None:
                await gate.wait()  # a failure is the turn's only once the turn is confirmed
            raise
        else:
            if gate is not None:
                await gate.wait()  # done early (nothing to say): still the turn's answer only once confirmed
        finally:
            if gate is not None and not gate.confirmed:  # dropped: the caller went on
                self.history.rollback(checkpoint)
                self.record.transcript[:] = [kept for kept in self.record.transcript if kept is not line]
            else:
                if gate is not None:
                    gate.settle(metrics)
                metrics.interrupted = bool(self.current and self.current.interrupted)
                self.record.add_turn(metrics)
                observe(self.observer, lambda observer: observer.turn_ended(metrics))

    async def _steps(self, metrics: TurnMetrics, since: float, gate: ReplyGate | None) -> None:
        """Model steps, each followed by its tool calls, until the model just talks."""
        tool_turn = self.tools.turn(self._tool_context(), self.vault) if self.tools else None
        first_audio = False
        filler: asyncio.Task[None] | None = None
        answering = asyncio.Event()

        def on_first_audio() -> None:
            nonlocal first_audio
            if not first_audio:
                first_audio = True
                metrics.voice_to_voice_ms = to_ms(self.clock() - since)

        def on_answer_audio() -> None:
            on_first_audio()
            answering.set()  # the answer is on the line: no more fillers

        try:
            for step in range(self.config.max_tool_steps + 1):
                reply = AssistantReply()
                self.current = reply
                self.history.add_reply(reply)
                last_step = step == self.config.max_tool_steps
                await self._model_step(
                    reply,
                    metrics,
                    on_answer_audio,
                    tools_allowed=not last_step,
                    gate=gate,
                    slow_start_filler=on_first_audio if step == 0 else None,
                )
                if reply.spoken_text():
                    self.record.say("agent", self.vault.redact(reply.spoken_text()))
                if not reply.tool_calls:
                    return
                if gate is not None:
                    await gate.wait()  # no tool runs and the call is not ended before the turn is confirmed
                metrics.tool_calls += len(reply.tool_calls)
                control = [c for c in reply.tool_calls if c.name in CONTROL_ACTIONS]
                if control:
                    await self._control(control[0], reply)
                if filler is None or filler.done():
                    # From here until the answer's first audio (the tools, then the model again),
                    # the line is never silent for longer than the bound.
                    answering.clear()
                    said = int(metrics.slow_token_filler)  # the first filler was said while the model was slow
                    filler = asyncio.create_task(self._fill_silence(answering, on_first_audio, said))
                await self._execute([c for c in reply.tool_calls if c.name not in CONTROL_ACTIONS], tool_turn)
        finally:
            await _cancelled(filler)

    async def _fill_silence(self, answering: asyncio.Event, on_first_audio: Callable[[], None], said: int) -> None:
        """Until the answer starts, say the next filler (after the `said` first ones) whenever the
        line has been quiet for `max_tool_silence_ms`. A filler already playing is never cut: the
        answer waits for it."""
        fillers = self.config.filler_phrases
        while not answering.is_set():
            quiet_for = max(0.0, self.speaker.playing_until - self.clock()) + self.config.max_tool_silence_ms / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answering.wait(), quiet_for)
            if not answering.is_set() and self.speaker.playing_until <= self.clock():
                await self.speaker.say_phrase(fillers[min(said, len(fillers) - 1)], on_first_audio=on_first_audio)
                said += 1

    async def _cover_slow_start(
        self, first_token: asyncio.Event, gate: ReplyGate | None, on_first_audio: Callable[[], None]
    ) -> bool:
        """One filler when the model's first token is late: `slow_first_token_ms` after the request,
        or after the turn was confirmed if the reply was held until then. Never once the answer
        has begun, never over other audio. True if it played."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        if gate is not None and not gate.confirmed:
            await gate.wait()
            start = loop.time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first_token.wait(), start + self.config.slow_first_token_ms / 1000 - loop.time())
        phrase = self.config.filler_phrases[0]
        if first_token.is_set() or self.speaker.playing_until > self.clock():
            return False
        await self.speaker.phrases.render(phrase)  # rendered at start-up: no wait
        if first_token.is_set() or self.speaker.playing_until > self.clock():
            return False
        await self.speaker.say_phrase(phrase, on_first_audio=on_first_audio)
        return True

    async def _model_step(
        self,
        reply: AssistantReply,
        metrics: TurnMetrics,
        on_first_audio: Callable[[], None],
        *,
        tools_allowed: bool,
        gate: ReplyGate | None = None,
        slow_start_filler: Callable[[], None] | None = None,
    ) -> None:
        """Stream one model answer; speak its sentences while the rest is still being generated.

        `gate`: a speculative reply; its first sentence is synthesized at once but played only once the turn is
        confirmed. `slow_start_filler`: cover a slow first token with a filler (it is told when
        the filler's audio starts)."""
        sentences: asyncio.Queue[str | None] = asyncio.Queue(SENTENCE_QUEUE)
        messages = self.history.messages(self.config.system_prompt)
        tools = self._schemas if tools_allowed else []
        tool_choice: Any = self.config.tool_choice if tools else None
        measure_ttft = metrics.llm_ttft_ms is None
        first_token = asyncio.Event()

        async def think() -> None:
            chunker = SentenceChunker(first_clause_min_chars=FIRST_CLAUSE_MIN_CHARS)
            budget = self.config.max_reply_chars
            started = self.clock()
            try:
                async for event in self.chat.stream(messages, tools, tool_choice):
                    if not isinstance(event, StreamEnd):
                        first_token.set()
                        if measure_ttft and metrics.llm_ttft_ms is None:
                            metrics.llm_ttft_ms = to_ms(self.clock() - started)
                    if isinstance(event, TextDelta) and budget > 0:
                        text = event.text[:budget]
                        budget -= len(text)
                        for sentence in chunker.feed(text):
                            await sentences.put(sentence)
                    elif isinstance(event, ToolCallRequest):
                        reply.tool_calls.append(event)
                for sentence in chunker.flush():
                    await sentences.put(sentence)
            finally:
                first_token.set()  # (the stream ended or failed: nothing is late any more)
                await sentences.put(None)

        async def speak() -> None:
            opener = True  # the piece the caller waits for: learned once spoken, at once next time
            while (sentence := await sentences.get()) is not None:
                audio: AsyncIterator[bytes] | None = None
                if opener:
                    metrics.opener_cached = self.speaker.phrases.cached(sentence) is not None
                    audio = self.speaker.phrases.speak(sentence, learn=True)
                elif gate is not None and not gate.confirmed:
                    audio = self.speaker.tts.synthesize(sentence)
                if audio is not None and gate is not None and not gate.confirmed:
                    audio = HeldAudio(audio, gate)
                opener = False
                if metrics.tts_first_audio_ms is None:
                    handed = self.clock()

                    def first_audio(handed: float = handed) -> None:
                        since = max(handed, gate.confirmed_at) if gate is not None else handed
                        metrics.tts_first_audio_ms = to_ms(self.clock() - since)
                        on_first_audio()

                    await self.speaker.say(sentence, reply, first_audio, audio=audio)
                else:
                    await self.speaker.say(sentence, reply, on_first_audio, audio=audio)

        async def cover() -> None:
            assert slow_start_filler is not None
            metrics.slow_token_filler = await self._cover_slow_start(first_token, gate, slow_start_filler)

        thinking = asyncio.create_task(think())
        covering = asyncio.create_task(cover()) if slow_start_filler and self.config.slow_first_token_ms else None
        try:
            await speak()
            await thinking
        finally:
            await _cancelled(covering)
            await _cancelled(thinking)

    async def _execute(self, calls: list[ToolCallRequest], tool_turn: ToolTurn | None) -> None:
        for call in calls:
            if tool_turn is None:
                content = '{"error": "no tools are available on this call"}'
            else:
                outcome = await tool_turn.run(ToolCall(id=call.id, name=call.name, arguments=call.arguments))
                content = outcome.content  # the executor logs the call's start and finish (tools/call_log.py)
                self._tool_called(outcome)
            self.history.add_tool_result(call.id, content)

    def _tool_called(self, outcome: ToolOutcome) -> None:
        observe(self.observer, lambda observer: observer.tool_called(outcome.name, outcome.ok, outcome.error))

    async def _control(self, call: ToolCallRequest, reply: AssistantReply) -> None:
        """Carry out end_call / transfer_call through the port; the turn ends there. An action the
        agent does not allow is refused with an error the model reads (hiding it is not enough)."""
        allowed = self.config.allow_transfer if call.name == TRANSFER_CALL else self.config.allow_hang_up
        if not allowed:
            log.warning("refused a call control action the agent does not allow", extra={"action": call.name})
            self.history.add_tool_result(call.id, f'{{"error": "{call.name} is not allowed on this line"}}')
            return
        if call.name == TRANSFER_CALL and self.transfer_number:
            if not reply.spoken_text():
                await self.speaker.say_phrase("Let me transfer you now.", reply)
            self.on_ending()
            self.record.end_reason = "transferred"
            self.record.say("system", f"transfer to {self.transfer_number}")
            await self.port.transfer(self.transfer_number)
            raise CallEnded
        if call.name == END_CALL:
            if not reply.spoken_text():
                await self.speaker.say_phrase("Thank you for calling. Goodbye.", reply)
            self.on_ending()
            self.record.end_reason = "agent ended the call"
            await self.port.hang_up("agent ended the call")
            raise CallEnded
        self.history.add_tool_result(call.id, '{"error": "transfer is not available on this line"}')

    def _tool_schemas(self) -> list[dict[str, Any]]:
        return agent_tool_schemas(self.config, self.tools, self.transfer_number)

    def _tool_context(self) -> ToolContext:
        info = self.port.info
        return ToolContext(
            call_sid=info.call_sid, agent_id=info.agent_id, caller_number=info.from_number, caller=self.caller
        )


def agent_tool_schemas(
    config: AgentConfig, tools: ToolExecutor | None, transfer_number: str | None
) -> list[dict[str, Any]]:
    """The `tools` list every request of this agent's calls sends: its tools, then call control.
    Also what an in-process model pre-fills at warm-up, so it must match what a call sends."""
    schemas = list(tools.schemas()) if tools else []
    return schemas + control_schemas(
        hang_up=config.allow_hang_up, transfer=config.allow_transfer and bool(transfer_number)
    )


def observe(observer: CallObserver | None, notify: Callable[[CallObserver], None]) -> None:
    """Tell the observer (the pod's metrics); its failure is logged, never the call's."""
    if observer is None:
        return
    try:
        notify(observer)
    except Exception:
        log.exception("call observer failed")


def to_ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def _cancelled(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` if it is still running, and wait for it to end (its failure is not news)."""
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
