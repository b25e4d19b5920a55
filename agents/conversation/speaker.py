"""Putting the agent's words on the line, part by part, each followed by a mark.

The marks are how the session learns what the caller actually heard: the carrier reports each one
when the audio before it has played, or as unheard when a barge-in cleared it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from agents.conversation.history import AssistantReply, SpokenPart
from agents.conversation.phrases import PhraseCache
from agents.engines.protocols import TextToSpeech
from agents.port import CallPort, MarkHeard

MAX_PENDING_MARKS = 256
"""Bound on marks awaiting the carrier's report (older ones are forgotten as unheard)."""


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

    @property
    def speaking(self) -> bool:
        """Audio is queued or playing, or a mark for it is still outstanding."""
        return bool(self._pending) or self.playing_until > self.clock()

    async def say(
        self, text: str, reply: AssistantReply | None = None, on_first_audio: Callable[[], None] | None = None
    ) -> SpokenPart:
        """Synthesize `text` and play it as it comes, then mark it. A cached phrase plays at once."""
        cached = self.phrases.cached(text)
        if cached is not None:
            return await self._say_audio(text, cached, self.phrases.sample_rate, reply, on_first_audio)
        async with contextlib.AsyncExitStack() as holding:
            part: SpokenPart | None = None
            stream = self.tts.synthesize(text)
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:  # a barge-in ends the synthesis now (a remote one: its request)
                holding.push_async_callback(aclose)
            async for pcm in stream:
                if part is None:  # take the line once there is something to say, not while synthesizing
                    await holding.enter_async_context(self._turn)
                    part = self._new_part(text, reply)
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
            await self._play(pcm, sample_rate, on_first_audio)
            await self._mark(part)
        return part

    async def play_audio(self, pcm: bytes, sample_rate: int) -> None:
        """Play raw audio (a fallback clip) without a transcript part."""
        async with self._turn:
            await self._play(pcm, sample_rate, None)

    def on_mark(self, event: MarkHeard) -> None:
        part = self._pending.pop(event.name, None)
        if part is not None:
            part.heard = event.heard

    async def clear(self) -> None:
        """Barge-in: drop everything queued; the carrier reports the outstanding marks unheard."""
        await self.port.clear()
        self.playing_until = self.clock()

    def _new_part(self, text: str, reply: AssistantReply | None) -> SpokenPart:
        self._seq += 1
        part = SpokenPart(text=text, mark=f"say-{self._seq}")
        if reply is not None:
            reply.parts.append(part)
        return part

    async def _play(self, pcm: bytes, sample_rate: int, on_first_audio: Callable[[], None] | None) -> None:
        if not pcm:
            return
        if on_first_audio is not None:
            on_first_audio()
        await self.port.play(pcm, sample_rate)
        seconds = len(pcm) / 2 / sample_rate
        self.playing_until = max(self.playing_until, self.clock()) + seconds

    async def _mark(self, part: SpokenPart) -> None:
        if len(self._pending) >= MAX_PENDING_MARKS:
            oldest = next(iter(self._pending))
            self._pending.pop(oldest).heard = False
        self._pending[part.mark] = part
        await self.port.mark(part.mark)
