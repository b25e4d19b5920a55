"""Lines an agent speaks again and again, rendered once: its fixed lines, and its replies' openers.

Rendering them ahead means the greeting plays the moment the call connects, a filler fills a
tool's silence at once, and the apology can still be played when the TTS engine itself fails.

Replies open with the same few words ("Of course,", "Thank you.", "Sure."), and their first piece
is what the caller waits for: Kokoro takes 300-500 ms to speak even "Of course," on two cores.
So a reply's first piece, when it is short and holds no digit, is kept once spoken (`learn`) and
plays at once the next time any call's reply opens with exactly that text. Kokoro speaks the same
text the same way every time, so the caller hears what synthesis would have given. Learned pieces
sit apart from the fixed lines, under their own byte bound, so they never push out the apology.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator

from agents.engines.protocols import SpeechSynthesisError, TextToSpeech

log = logging.getLogger("switchboard.agents")

MAX_LEARNED_CHARS = 32
"""Longest reply piece that is learned: openers are short, and a long piece rarely comes back word
for word."""
LEARNED_BYTES = 1024 * 1024
"""Default bound on learned audio per agent (~22 s of 24 kHz PCM16: dozens of openers)."""


def learnable(text: str) -> bool:
    """A short piece without digits: an opener, not a balance, a date or an order number (what
    varies by caller stays out of memory that outlives the call)."""
    stripped = text.strip()
    return 0 < len(stripped) <= MAX_LEARNED_CHARS and not any(ch.isdigit() for ch in stripped)


class PhraseCache:
    """Text -> PCM16 at the TTS rate: fixed lines (least recently used out past `max_phrases`) and
    learned reply openers (least recently used out past `max_learned_bytes`)."""

    def __init__(
        self,
        tts: TextToSpeech,
        max_phrases: int = 128,
        max_phrase_chars: int = 300,
        max_learned_bytes: int = LEARNED_BYTES,
    ) -> None:
        if max_learned_bytes < 0:
            raise ValueError(f"max_learned_bytes must be 0 (learn nothing) or more, got {max_learned_bytes}")
        self.tts = tts
        self.max_phrases = max_phrases
        """Bound on phrases kept (a few seconds of 24 kHz audio each, ~100 KB)."""
        self.max_phrase_chars = max_phrase_chars
        """Longer text is not cached (it is not a fixed phrase)."""
        self.max_learned_bytes = max_learned_bytes
        """Bound on the audio of learned reply openers (0: learn none)."""
        self._audio: OrderedDict[str, bytes] = OrderedDict()
        self._learned: OrderedDict[str, bytes] = OrderedDict()
        self._learned_bytes = 0

    @property
    def sample_rate(self) -> int:
        return self.tts.sample_rate

    @property
    def learned_bytes(self) -> int:
        return self._learned_bytes

    def cached(self, text: str) -> bytes | None:
        for store in (self._audio, self._learned):
            pcm = store.get(text)
            if pcm is not None:
                store.move_to_end(text)
                return pcm
        return None

    async def render(self, text: str) -> bytes:
        """The phrase's audio, synthesizing it on first use. Raises `SpeechSynthesisError`."""
        pcm = self.cached(text)
        if pcm is not None:
            return pcm
        chunks = [chunk async for chunk in self.tts.synthesize(text)]
        pcm = b"".join(chunks)
        if not pcm:
            raise SpeechSynthesisError(f"no audio for phrase {text!r}")
        if len(text) <= self.max_phrase_chars:
            self._audio[text] = pcm
            while len(self._audio) > self.max_phrases:
                self._audio.popitem(last=False)
        return pcm

    async def speak(self, text: str, learn: bool = False) -> AsyncIterator[bytes]:
        """`text`'s audio: at once when cached, else as it is synthesized. With `learn`, a
        `learnable` piece synthesized to the end is kept (a stopped or failed one never is).
        Raises what the engine raises."""
        pcm = self.cached(text)
        if pcm is not None:
            yield pcm
            return
        keep = learn and self.max_learned_bytes > 0 and learnable(text)
        chunks: list[bytes] = []
        async for chunk in self.tts.synthesize(text):
            if keep:
                chunks.append(chunk)
            yield chunk
        if keep and chunks:
            self._learn(text, b"".join(chunks))

    def _learn(self, text: str, pcm: bytes) -> None:
        if len(pcm) > self.max_learned_bytes or text in self._learned:
            return
        self._learned[text] = pcm
        self._learned_bytes += len(pcm)
        while self._learned_bytes > self.max_learned_bytes:
            _, dropped = self._learned.popitem(last=False)
            self._learned_bytes -= len(dropped)

    async def prepare(self, texts: list[str]) -> None:
        """Render `texts` now; a failure is logged, and that phrase is rendered when first used."""
        for text in texts:
            if text.strip():
                try:
                    await self.render(text)
                except Exception:
                    log.exception("could not pre-render a phrase", extra={"phrase": text[:80]})
