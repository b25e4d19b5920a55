"""One call's conversation: listen, think, look things up, talk back, and yield to the caller.

The session reads the port's events in one loop and never blocks it: each caller turn runs as a
task (transcript, then `ReplyPipeline`: model -> tools -> speech), so that caller speech arriving
while the agent talks can clear the line at once and cancel that task. What the caller heard
decides what the history says the agent said.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable

from agents.config import AgentConfig
from agents.conversation.barge_in import BargeIns
from agents.conversation.echo_guard import EchoGuard
from agents.conversation.end_of_turn import ends_in_number, known_lengths
from agents.conversation.held_reply import HeldReply
from agents.conversation.history import AssistantReply, ConversationHistory
from agents.conversation.listener import TurnListener, TurnPending, UtteranceReady
from agents.conversation.number_cues import lengths_from_tools
from agents.conversation.record import CallObserver, CallRecord, TurnMetrics
from agents.conversation.reply import CallEnded, ReplyPipeline, observe, to_ms
from agents.conversation.speaker import Speaker
from agents.conversation.speculation import ReplyGate, Speculation, provisional
from agents.conversation.transcript_guard import guarded
from agents.engines.local.pool import InferenceOverloaded
from agents.engines.protocols import (
    ChatModel,
    ChatModelUnavailable,
    SpeechEnded,
    SpeechEngineUnavailable,
    SpeechFaded,
    SpeechOnset,
    SpeechResumed,
    SpeechStarted,
    SpeechSynthesisError,
    Transcript,
    TranscriptionError,
)
from agents.identity import CallerVerifier
from agents.port import AudioIn, CallPort, DtmfIn, EndRequested, MarkHeard
from db.caller_records import CallerRecords
from tools import ToolExecutor
from tools.pii import KEYPAD_ENTRY, Redactor, SecretVault, active_vault

log = logging.getLogger("switchboard.agents")

MAX_DTMF_DIGITS = 32
"""Bound on keys collected into one keypad entry."""
MAX_UNANSWERED = 4
"""Bound on caller utterances kept while the caller keeps talking before we can answer."""
WRAP_UP_SECONDS = 15.0
"""How long a goodbye (time limit, apology) may take before the call is cut regardless."""
STALLED_AUDIO_S = 5.0
"""Longest wall-clock wait beyond `digits_grace_ms` for caller audio that has stopped coming."""


class CallSession(BargeIns):
    def __init__(
        self,
        port: CallPort,
        config: AgentConfig,
        *,
        listener: TurnListener,
        chat: ChatModel,
        speaker: Speaker,
        tools: ToolExecutor | None = None,
        transfer_number: str | None = None,
        fallback_audio: tuple[bytes, int] | None = None,
        on_record: Callable[[CallRecord], Awaitable[None]] | None = None,
        observer: CallObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        caller_records: CallerRecords | None = None,
        echo_guard: EchoGuard | None = None,
        speculate: bool = True,
    ) -> None:
        """`caller_records`: where the caller's identity is checked (the business database);
        `echo_guard`: this call's, built on the speaker's clock (None: caller audio as it comes)."""
        self.port = port
        self.config = config
        self.listener = listener
        from_tools = lengths_from_tools(tools.schemas()) if tools is not None else {}
        self.number_lengths = known_lengths({**from_tools, **config.number_lengths})
        """Numbers' known lengths by cue (the built-ins, the tools' digit arguments, then the
        agent's own): a number of its length is finished (no digits' grace)."""
        listener.expect_numbers(self.number_lengths)
        self.speaker = speaker
        self.echo_guard = echo_guard
        """Takes the agent's own voice out of the caller's audio before the listener hears it."""
        if echo_guard is not None:
            speaker.tap = echo_guard
        self.transfer_number = config.transfer_number or transfer_number
        self.fallback_audio = fallback_audio
        """Audio played when even TTS fails (rendered at start-up), with its rate."""
        self.on_record = on_record
        self.observer = observer
        self.clock = clock
        info = port.info
        self.record = CallRecord(info.call_sid, info.agent_id, info.from_number, info.to_number, info.direction)
        self.record.retention_days = config.retention_days
        self.vault = SecretVault(Redactor(config.pii_patterns))
        """This call's secrets: the model, the transcript and the logs see placeholders, tools the values."""
        self.history = ConversationHistory(config.history_budget_chars)
        self.caller = CallerVerifier(config.identity, caller_records, on_verified=self._verified)
        """Who is calling, decided by the server; its identity is the one every tool call reads."""
        self._turn: asyncio.Task[None] | None = None
        self._turn_count = 0
        self._unanswered: list[asyncio.Task[Transcript]] = []
        self._caller_speaking = False
        self._audio_in = asyncio.Event()
        """Set by each caller frame: what a turn waiting for more digits waits on."""
        self._last_activity = clock()
        self._reprompts = 0
        self._ending = False
        self._digits: list[str] = []
        self._dtmf_timer: asyncio.TimerHandle | None = None
        self._goodbye: asyncio.Task[None] | None = None
        """The goodbye the pod asked for (`EndRequested`), running beside the event loop."""
        self._held: HeldReply | None = None
        """The reply a barge-in holds until its verdict: a backchannel resumes it, words end it."""
        self.speculate = speculate
        """Start a reply on a likely end of turn (`TurnPending`), held until the turn is confirmed."""
        self._speculation: Speculation | None = None
        """The speculative reply waiting for its turn to be confirmed (at most one)."""
        self.reply = ReplyPipeline(
            port,
            config,
            chat=chat,
            speaker=speaker,
            history=self.history,
            record=self.record,
            tools=tools,
            caller=self.caller.identity,
            vault=self.vault,
            transfer_number=self.transfer_number,
            observer=observer,
            clock=clock,
            on_ending=self._end_taking_input,
        )
        """Model -> sentences -> speech -> tool steps, for each caller turn."""
        self._speech_outages = 0
        """Turns in a row that failed on an unavailable speech service."""

    # -- the event loop ------------------------------------------------------------------

    async def run(self) -> None:
        vault_token = active_vault.set(self.vault)  # for this task and its turns: the log filter masks its secrets
        watchdog = asyncio.create_task(self._silence_watchdog(), name=f"silence-{self.record.call_sid}")
        self.caller.start(self.port.info)  # beside the greeting
        if self.config.greeting or self.config.recording_consent:
            self._start_turn(self._greet())
        try:
            async with asyncio.timeout(self.config.max_call_seconds):
                async for event in self.port.events():
                    if isinstance(event, AudioIn):
                        await self._on_audio(event)
                    elif isinstance(event, DtmfIn):
                        await self._on_dtmf(event)
                    elif isinstance(event, MarkHeard):
                        self.speaker.on_mark(event)
                    elif isinstance(event, EndRequested):
                        self._end_requested(event)
            self.record.end_reason = self.record.end_reason or "caller hung up"
        except TimeoutError:
            await self._wrap_up(self.config.time_limit_goodbye, "max call duration")
        finally:
            try:
                await self._stop(watchdog)
            finally:
                active_vault.reset(vault_token)

    async def _on_audio(self, event: AudioIn) -> None:
        self._audio_in.set()
        pcm = event.pcm if self.echo_guard is None else self.echo_guard.process(event.pcm)
        for item in self.listener.feed(pcm):
            if self._held is not None:
                self._held.observe(item)
            if isinstance(item, SpeechStarted | SpeechResumed):
                await self._end_speculation()  # the caller goes on: the reply started on the pause is dropped
            if isinstance(item, SpeechOnset) and self._may_hold():
                await self._barge_in(f"speech at {item.at_ms} ms", speech_at_ms=item.at_ms)
            elif isinstance(item, SpeechFaded) and self._held is not None:
                self._held.fade()  # the sound it was held for never became speech: the reply goes on
            elif isinstance(item, SpeechStarted):
                self._caller_speaking = True
                self._touch()
                if self._agent_busy() and not self._ending and self._held is None:
                    await self._barge_in(f"speech at {item.at_ms} ms", speech_at_ms=item.at_ms)
            elif isinstance(item, SpeechEnded):
                self._caller_speaking = False
                self._touch()
            elif isinstance(item, TurnPending) and self.speculate and not self._ending:
                self._speculate(item)
            elif isinstance(item, UtteranceReady) and not self._ending:
                speech_end_wall = self.clock() - (self.listener.audio_ms - item.speech_end_ms) / 1000
                if await self._end_speculation(item):
                    continue  # the reply started on this turn's pause plays now
                if self._held is not None and self._held.take(item, speech_end_wall):
                    continue  # its transcript decides: the held reply resumes, or this is answered
                await self._drop_hold()  # a second utterance over a held reply: the caller has the turn
                self._hold_words(item)  # now, not in the turn: a turn replaced before it ran still has them
                self._start_turn(self._answer_speech(item, speech_end_wall))
        if self._held is not None and self._held.too_long(self.listener.audio_ms):
            await self._drop_hold()  # longer than any backchannel: a real interruption, without the transcript

    async def _on_dtmf(self, event: DtmfIn) -> None:
        if self._ending:
            return
        self._touch()
        await self._end_speculation()
        if self._agent_busy():
            await self._barge_in("a key press")  # not which key: the entry is a secret
        if self._dtmf_timer:
            self._dtmf_timer.cancel()
        if event.digit != "#" and len(self._digits) < MAX_DTMF_DIGITS:
            self._digits.append(event.digit)
        if event.digit == "#":
            self._flush_digits()
        else:
            loop = asyncio.get_running_loop()
            self._dtmf_timer = loop.call_later(self.config.dtmf_timeout_ms / 1000, self._flush_digits)

    def _flush_digits(self) -> None:
        self._dtmf_timer = None
        digits, self._digits = "".join(self._digits), []
        if digits and not self._ending and self.caller.expects_pin():
            self._start_turn(self._answer_pin(digits))  # a PIN: to the verifier, never the model or the record
        elif digits and not self._ending:
            entry = self.vault.keep(KEYPAD_ENTRY, digits) if self.config.redact_keypad else digits
            self._start_turn(self._answer_text(f"(The caller typed {entry} on the keypad.)", source="dtmf"))

    # -- turns ---------------------------------------------------------------------------

    def _start_turn(self, work: Awaitable[None]) -> None:
        previous = self._turn
        if previous is not None and not previous.done():
            previous.cancel()  # the caller said more before we answered: answer everything at once
        self._turn = asyncio.ensure_future(self._guarded(work))
        if inspect.iscoroutine(work):  # a turn replaced before it ran: its work is dropped, not left unawaited
            self._turn.add_done_callback(lambda _: work.close())

    async def _guarded(self, work: Awaitable[None]) -> None:
        """Run one turn; a failure ends the call politely instead of leaving it silent."""
        try:
            await work
            self._speech_outages = 0
        except CallEnded:
            pass
        except ChatModelUnavailable as exc:
            log.warning("model unavailable", extra={"event": "llm_unavailable", "error": str(exc)})
            observe(self.observer, lambda observer: observer.engine_failed("model_unavailable"))
            await self._fail("model unavailable")
        except SpeechEngineUnavailable as exc:
            log.warning("speech service unavailable", extra={"event": "speech_unavailable", "error": str(exc)})
            observe(self.observer, lambda observer: observer.engine_failed("speech_unavailable"))
            await self._speech_outage()
        except (SpeechSynthesisError, TranscriptionError, InferenceOverloaded) as exc:
            log.warning("speech engine failed", extra={"event": "engine_failed", "error": str(exc)})
            observe(self.observer, lambda observer: observer.engine_failed("speech_failed"))
            await self._fail("speech engine failed")
        finally:
            self._touch()

    async def _greet(self) -> None:
        """The recording consent line (when the agent has one) first, then the greeting."""
        reply = AssistantReply()
        self.history.add_reply(reply)
        for line in (self.config.recording_consent, self.config.greeting):
            if line:
                self.record.say("agent", line)
                await self.speaker.say(line, reply)

    def _hold_words(self, ready: UtteranceReady) -> None:
        """Keep the utterance's transcript until a turn answers it (the oldest go past the bound)."""
        if len(self._unanswered) >= MAX_UNANSWERED:
            del self._unanswered[0]
        self._unanswered.append(ready.transcript)

    async def _answer_speech(
        self, ready: UtteranceReady, speech_end_wall: float, gate: ReplyGate | None = None
    ) -> None:
        """Answer the caller's words; `gate`: a speculative reply's, held until the turn is confirmed."""
        self._turn_count += 1
        metrics = TurnMetrics(turn=self._turn_count, speech_ms=ready.speech_end_ms - ready.speech_start_ms)
        metrics.endpoint_ms = (ready.ended_at_ms - ready.speech_end_ms) if ready.ended_at_ms else None
        ended_wall = self.clock()
        texts = []
        try:
            for pending in list(self._unanswered):
                # shielded: if the caller goes on talking this turn is cancelled, but the words stay
                # pending and the next turn answers them together with what follows.
                texts.append(guarded(await asyncio.shield(pending), self.record, gate))  # loops cut here
        except (SpeechEngineUnavailable, TranscriptionError, InferenceOverloaded):
            self._unanswered.clear()  # words lost to a failed transcription are not asked for again
            if gate is not None:
                await gate.wait()  # a speculative turn's failure counts once the turn is confirmed
            raise
        metrics.stt_ms = to_ms(self.clock() - ended_wall)
        metrics.transcript_ms = to_ms(self.clock() - speech_end_wall)
        metrics.early_transcript = ready.early
        text = " ".join(t for t in texts if t)
        if text and ends_in_number(text, self.number_lengths):
            if gate is not None:
                await gate.wait()  # a number read out in the pause (a card?) reaches the model only as a whole turn
            await self._wait_for_more_digits()  # the words stay unanswered: a turn replacing this one has them
        self._unanswered.clear()
        if not text:
            return  # noise, a cough: nothing to answer
        self._reprompts = 0
        await self.caller.settled()
        await self.reply.respond(text, metrics, speech_end_wall, gate)

    async def _wait_for_more_digits(self) -> None:
        """A turn ending in a number still being read out waits `digits_grace_ms` more of the caller's
        silence first. A card read out in groups, with pauses as long as the end-of-turn silence,
        would otherwise reach the model group by group (each too short to be recognised and redacted
        as a card, the whole of it in the history) and be answered between groups. Speech in that
        time makes this turn a thinking agent's barge-in: it is cancelled, and the next turn answers
        all the words at once. A stalled stream (no audio) ends the wait after `STALLED_AUDIO_S`."""
        grace_ms = self.config.digits_grace_ms
        loop = asyncio.get_running_loop()
        give_up = loop.time() + grace_ms / 1000 + STALLED_AUDIO_S
        start = self.listener.audio_ms
        while self._caller_speaking or self.listener.audio_ms - start < grace_ms:
            self._audio_in.clear()
            left = give_up - loop.time()
            if left <= 0 and not self._caller_speaking:
                return
            with contextlib.suppress(TimeoutError):  # speaking: the end of it replaces this turn
                async with asyncio.timeout(None if self._caller_speaking else left):
                    await self._audio_in.wait()

    def _speculate(self, pending: TurnPending) -> None:
        """A likely end of turn: start the reply now, held until the turn is confirmed. Never over
        the agent (speaking, thinking or holding a reply) nor beside another speculative reply."""
        if self._agent_busy() or self._holding() or self._speculation is not None:
            return
        ready, gate = provisional(pending), ReplyGate()
        speculation = Speculation(pending, gate, list(self._unanswered), self._turn_count)
        self._hold_words(ready)
        since = self.clock() - (self.listener.audio_ms - ready.speech_end_ms) / 1000
        self._start_turn(self._answer_speech(ready, since, gate))
        speculation.task, self._speculation = self._turn, speculation
        self.record.speculation_started += 1

    async def _end_speculation(self, ready: UtteranceReady | None = None) -> bool:
        """`ready` confirms the turn the speculative reply was started on: it plays now (True).
        Otherwise (the caller went on, or another turn ended) it is dropped: cancelled, and its
        words wait again for the next turn, which answers them with what follows."""
        speculation, self._speculation = self._speculation, None
        if speculation is None:
            return False
        used = ready is not None and speculation.matches(ready) and self._turn is speculation.task
        speculation.count(self.record, used)
        observe(self.observer, lambda observer: observer.speculation_ended(used))
        if used and ready is not None:
            speculation.gate.confirm(ready, self.clock())
            return True
        self._unanswered, self._turn_count = speculation.words, speculation.turn_count
        if self._turn is speculation.task:
            await self._cancel_turn()
        return False

    async def _answer_text(self, text: str, source: str) -> None:
        await self.caller.settled()
        self._turn_count += 1
        await self.reply.respond(text, TurnMetrics(turn=self._turn_count, source=source), self.clock())

    async def _answer_pin(self, digits: str) -> None:
        """A keypad entry while a PIN is expected: the model hears only the verifier's verdict;
        once the attempts are used up the agent says it cannot verify (and offers the transfer)."""
        await self.caller.settled()
        note = await self.caller.check_pin(digits)
        if not self.caller.locked:
            await self._answer_text(note, source="dtmf")
            return
        self.record.say("caller", note)
        self.history.add_user(note)
        await self._say_line(self.config.identity.cannot_verify)

    def _verified(self, key: str) -> None:
        self.record.verified_customer = key

    # -- silence, failure, wrap-up --------------------------------------------------------

    def _end_taking_input(self) -> None:
        """The call is being hung up or handed over: caller input no longer starts turns."""
        self._ending = True

    def _touch(self) -> None:
        self._last_activity = self.clock()

    async def _silence_watchdog(self) -> None:
        while not self._ending:
            await asyncio.sleep(0.25)
            if self._ending or self._caller_speaking or self._agent_busy() or self._digits:
                continue
            quiet = self.clock() - max(self._last_activity, self.speaker.playing_until)
            if quiet < self.config.silence_timeout_seconds:
                continue
            if self._reprompts < self.config.silence_reprompts:
                self._reprompts += 1
                self._start_turn(self._say_line(self.config.reprompt))
            else:
                await self._wrap_up(self.config.silence_goodbye, "caller silent")
                return

    def _end_requested(self, event: EndRequested) -> None:
        """The pod sheds this call: the apology, then hang-up. Run beside the event loop, which
        must keep reading marks (they tell the speaker the apology was heard)."""
        if self._ending or self._goodbye is not None:
            return
        log.warning("the pod is ending this call", extra={"event": "call_shed", "why": event.reason})
        self._goodbye = asyncio.create_task(
            self._wrap_up(self.config.apology, f"ended by the pod ({event.reason})"),
            name=f"goodbye-{self.record.call_sid}",
        )

    async def _say_line(self, text: str) -> None:
        reply = AssistantReply()
        self.history.add_reply(reply)
        self.record.say("agent", text)
        await self.speaker.say_phrase(text, reply)

    async def _speech_outage(self) -> None:
        """A remote speech engine is down or slow: ask the caller to say it again (the line was
        rendered at start-up, so it plays while the service is away) and keep listening; after
        `max_speech_outages` such turns in a row, apologise and hang up."""
        self._speech_outages += 1
        if self._speech_outages > self.config.max_speech_outages:
            await self._fail("speech service unavailable")
            return
        self.record.say("agent", self.config.say_again)
        try:
            await self.speaker.say_phrase(self.config.say_again)
        except (SpeechSynthesisError, SpeechEngineUnavailable, InferenceOverloaded):
            if self.fallback_audio is not None:
                await self.speaker.play_audio(*self.fallback_audio)

    async def _fail(self, reason: str) -> None:
        await self._wrap_up(self.config.apology, reason)

    async def _wrap_up(self, text: str, reason: str) -> None:
        """Say a last line (or play the fallback clip if speech fails) and hang up."""
        if self._ending:
            return
        self._ending = True
        self.record.end_reason = reason
        self.record.say("agent", text)
        current = asyncio.current_task()
        if self._turn is not None and self._turn is not current and not self._turn.done():
            await self._cancel_turn()
        self._release_hold()  # the goodbye must not wait behind a held reply
        try:
            async with asyncio.timeout(WRAP_UP_SECONDS):
                try:
                    await self.speaker.say_phrase(text)
                except (SpeechSynthesisError, SpeechEngineUnavailable, InferenceOverloaded):
                    if self.fallback_audio is not None:
                        await self.speaker.play_audio(*self.fallback_audio)
                await self.port.hang_up(reason)
        except TimeoutError:
            await self.port.hang_up(reason)

    async def _stop(self, watchdog: asyncio.Task[None]) -> None:
        """Leave nothing running: turn, watchdog, timers, background transcription."""
        self._ending = True
        if self._dtmf_timer:
            self._dtmf_timer.cancel()
        watchdog.cancel()
        await self._end_speculation()  # a reply still held when the call ends was never used
        current = asyncio.current_task()
        if self._turn is not None and self._turn is not current:
            await self._cancel_turn()
        self._release_hold()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watchdog
        if self._goodbye is not None:  # it ends in hang-up, which is what ended the events
            self._goodbye.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._goodbye
        self.listener.close()
        await self.caller.close()
        self.record.ended_at = time.time()
        if self.on_record is not None:
            try:
                await self.on_record(self.record)
            except Exception:
                log.exception("could not store the call record")
