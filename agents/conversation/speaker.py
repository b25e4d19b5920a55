"""Putting the agent's words on the line, part by part, each followed by a mark.

The marks are how the session learns what the caller actually heard: the carrier reports each one
when the audio before it has played, or as unheard when a barge-in cleared it.

A barge-in may turn out to be a backchannel ("mhm") or a cough, so the speaker can `hold` instead
of dropping the reply: the line is cleared at once, nothing more is put on it, and the audio of
every part not yet reported heard is kept (bounded), so that `resume` can replay the unheard rest
from the first unheard part, under new marks, and let the held reply go on where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from agents.conversation.history import AssistantReply, SpokenPart
from agents.conversation.phrases import PhraseCache
from agents.engines.protocols import TextToSpeech
from agents.port import CallPort, MarkHeard

MAX_PENDING_MARKS = 256
"""Bound on marks awaiting the carrier's report (older ones are forgotten as unheard)."""
MAX_KEPT_AUDIO_SECONDS = 30.0
"""Bound on the audio kept for parts not yet reported heard (the playout holds up to 30 s ahead);
past it the oldest part's audio is dropped, and a held reply missing it cannot be resumed."""


class PlayTap(Protocol):
    """Told what the speaker puts on the line and when it plays (the echo guard's reference)."""

    def played(self, pcm: bytes, sample_rate: int, starts_at: float) -> None: ...

    def cleared(self) -> None: ...


@dataclass(eq=False)
class _Kept:
    """A part's audio, kept until the caller is known to have heard it."""

    part: SpokenPart
    rate: int = 0
    audio: bytearray | None = field(default_factory=bytearray)
    """None once dropped past `MAX_KEPT_AUDIO_SECONDS`."""
    done: bool = False
    """All of the part's audio is in; its mark is placed (or, while held, due on resume)."""

    @property
    def seconds(self) -> float:
        return len(self.audio) / 2 / self.rate if self.audio and self.rate else 0.0


class Speaker:
    def __init__(
        self, port: CallPort, tts: TextToSpeech, phrases: PhraseCache, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.port = port
        self.tts = tts
        self.phrases = phrases
        self.clock = clock
        self._pending: dict[str, SpokenPart] = {}
        self._seq = 0
        self._turn = asyncio.Lock()
        """Held while one text is put on the line, so a filler and an answer never interleave."""
        self.playing_until = 0.0
        """When the audio queued so far should finish playing (clock time, an estimate)."""
        self.tap: PlayTap | None = None
        """Told of every piece of audio played and every clear (the call's echo guard)."""
        self._kept: list[_Kept] = []
        """Parts not yet reported heard, in the order played, with their audio."""
        self._kept_seconds = 0.0
        self._current: _Kept | None = None
        """The part being put on the line now (its audio is still coming)."""
        self._held = False
        self._unheld = asyncio.Event()
        """Set while nothing is held: audio waits on it before it goes on the line."""
        self._unheld.set()
        self._holds = 0
        """Counts holds and clears, so a replay can tell it was overtaken by another barge-in."""

    @property
    def speaking(self) -> bool:
        """Audio is queued or playing, a mark for it is still outstanding, or a reply is held."""
        return bool(self._pending) or self._held or self.playing_until > self.clock()

    @property
    def held(self) -> bool:
        """The line was cleared for a barge-in that may be a backchannel; the reply waits."""
        return self._held

    @property
    def resumable(self) -> bool:
        """Held, and every unheard part's audio is still kept."""
        return self._held and all(kept.audio is not None for kept in self._kept)

    async def say(
        self,
        text: str,
        reply: AssistantReply | None = None,
        on_first_audio: Callable[[], None] | None = None,
        *,
        audio: AsyncIterator[bytes] | None = None,
    ) -> SpokenPart:
        """Synthesize `text` and play it as it comes, then mark it. A cached phrase plays at once.
        `audio`: its synthesis, already started (a speculative reply's held first piece)."""
        cached = self.phrases.cached(text) if audio is None else None
        if cached is not None:
            return await self._say_audio(text, cached, self.phrases.sample_rate, reply, on_first_audio)
        async with contextlib.AsyncExitStack() as holding:
            part: SpokenPart | None = None
            stream = audio if audio is not None else self.tts.synthesize(text)
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:  # a barge-in ends the synthesis now (a remote one: its request)
                holding.push_async_callback(aclose)
            async for pcm in stream:
                if part is None:  # take the line once there is something to say, not while synthesizing
                    await holding.enter_async_context(self._turn)
                    part = self._new_part(text, reply)
                    holding.callback(self._part_ended)
                await self._play(pcm, self.tts.sample_rate, on_first_audio)
                on_first_audio = None
            if part is None:
                return SpokenPart(text=text, mark="", heard=False)  # nothing speakable in it
            await self._mark(part)
        return part

    async def say_phrase(
        self, text: str, reply: AssistantReply | None = None, on_first_audio: Callable[[], None] | None = None
    ) -> SpokenPart:
        """Play a fixed phrase, rendering it first if it is not cached."""
        pcm = await self.phrases.render(text)
        return await self._say_audio(text, pcm, self.phrases.sample_rate, reply, on_first_audio)

    async def _say_audio(
        self,
        text: str,
        pcm: bytes,
        sample_rate: int,
        reply: AssistantReply | None,
        on_first_audio: Callable[[], None] | None,
    ) -> SpokenPart:
        """Audio already in hand for `text`: play it whole, then mark it."""
        async with self._turn:
            part = self._new_part(text, reply)
            try:
                await self._play(pcm, sample_rate, on_first_audio)
                await self._mark(part)
            finally:
                self._part_ended()
        return part

    async def play_audio(self, pcm: bytes, sample_rate: int) -> None:
        """Play raw audio (a fallback clip) without a transcript part."""
        async with self._turn:
            await self._play(pcm, sample_rate, None)

    def on_mark(self, event: MarkHeard) -> None:
        part = self._pending.pop(event.name, None)
        if part is None:
            return
        part.heard = event.heard
        if event.heard:
            self._forget(lambda kept: kept.part is part)

    async def clear(self) -> None:
        """Barge-in: drop everything queued; the carrier reports the outstanding marks unheard."""
        self._drop_held()
        await self._clear_line()

    async def hold(self) -> None:
        """Barge-in that may be a backchannel: clear the line at once (first, before anything else
        can be queued), then keep the unheard parts and put nothing more on the line until
        `resume` or `release`."""
        self._held = True  # before the clear's first await: a reply running meanwhile queues nothing
        self._unheld.clear()
        self._holds += 1
        for kept in self._kept:  # the clear drops them all; a late report of an old mark is ignored
            if self._pending.pop(kept.part.mark, None) is not None:
                kept.part.heard = False
        await self._clear_line()

    def release(self) -> None:
        """The held reply is not coming back: forget its kept audio; waiting audio may go on (the
        held reply's turn is cancelled first, so what goes on is a goodbye, never the reply)."""
        self._drop_held()

    async def resume(self) -> bool:
        """Replay the unheard parts from the first unheard one, under new marks, then let the held
        reply go on. False (and released) when a part's audio was dropped past the bound, or when
        another barge-in came during the replay (that one holds the reply now)."""
        if not self._held:
            return False
        if not self.resumable:
            self.release()
            return False
        holds = self._holds
        for kept in list(self._kept):
            if kept.audio:
                await self._put(bytes(kept.audio), kept.rate)
            if holds != self._holds:
                return False
            if kept.done and kept in self._kept:
                self._seq += 1
                kept.part.mark, kept.part.heard = f"say-{self._seq}", None
                await self._send_mark(kept.part)
                if holds != self._holds:
                    return False
        self._held = False
        self._unheld.set()
        return True

    async def _clear_line(self) -> None:
        await self.port.clear()
        self.playing_until = self.clock()
        if self.tap is not None:
            self.tap.cleared()

    def _drop_held(self) -> None:
        self._holds += 1
        self._kept.clear()
        self._kept_seconds = 0.0
        self._current = None
        self._held = False
        self._unheld.set()

    def _new_part(self, text: str, reply: AssistantReply | None) -> SpokenPart:
        self._seq += 1
        part = SpokenPart(text=text, mark=f"say-{self._seq}")
        if reply is not None:
            reply.parts.append(part)
        self._current = _Kept(part)
        self._kept.append(self._current)
        return part

    def _part_ended(self) -> None:
        """The part being said is done; one cut short (its task cancelled) is never replayed."""
        current, self._current = self._current, None
        if current is not None and not current.done:
            self._forget(lambda kept: kept is current)

    def _forget(self, which: Callable[[_Kept], bool]) -> None:
        for kept in [kept for kept in self._kept if which(kept)]:
            self._kept.remove(kept)
            self._kept_seconds -= kept.seconds

    def _keep(self, pcm: bytes, sample_rate: int) -> None:
        """Keep the current part's audio; past the bound the oldest kept audio goes."""
        current = self._current
        if current is None or current.audio is None:
            return
        self._kept_seconds -= current.seconds
        current.rate = sample_rate
        current.audio += pcm
        self._kept_seconds += current.seconds
        for kept in self._kept:
            if self._kept_seconds <= MAX_KEPT_AUDIO_SECONDS:
                break
            self._kept_seconds -= kept.seconds
            kept.audio = None

    async def _play(self, pcm: bytes, sample_rate: int, on_first_audio: Callable[[], None] | None) -> None:
        if not pcm:
            return
        while self._held:  # a held reply waits here, mid-part, until it is resumed or dropped
            await self._unheld.wait()
        self._keep(pcm, sample_rate)
        if on_first_audio is not None:
            on_first_audio()
        await self._put(pcm, sample_rate)

    async def _put(self, pcm: bytes, sample_rate: int) -> None:
        """Queue audio on the line (the tap hears it as it will play)."""
        if self.tap is not None:  # before queuing: its first frames go out (and echo back) at once
            self.tap.played(pcm, sample_rate, max(self.playing_until, self.clock()))
        await self.port.play(pcm, sample_rate)
        seconds = len(pcm) / 2 / sample_rate
        self.playing_until = max(self.playing_until, self.clock()) + seconds

    async def _mark(self, part: SpokenPart) -> None:
        if self._current is not None and self._current.part is part:
            self._current.done = True
        if self._held:  # its audio was cleared or never sent: the mark is placed when it is replayed
            part.heard = False
            return
        await self._send_mark(part)

    async def _send_mark(self, part: SpokenPart) -> None:
        if len(self._pending) >= MAX_PENDING_MARKS:
            oldest = next(iter(self._pending))
            self._pending.pop(oldest).heard = False
        self._pending[part.mark] = part
        await self.port.mark(part.mark)
