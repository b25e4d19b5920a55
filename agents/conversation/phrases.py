"""Fixed lines an agent speaks (greeting, fillers, re-prompts, apologies), rendered once.

Rendering them ahead means the greeting plays the moment the call connects, a filler fills a
tool's silence at once, and the apology can still be played when the TTS engine itself fails.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from agents.engines.protocols import SpeechSynthesisError, TextToSpeech

log = logging.getLogger("switchboard.agents")


class PhraseCache:
    """Text -> PCM16 at the TTS rate, least recently used out past `max_phrases`."""

    def __init__(self, tts: TextToSpeech, max_phrases: int = 128, max_phrase_chars: int = 300) -> None:
        self.tts = tts
        self.max_phrases = max_phrases
        """Bound on phrases kept (a few seconds of 24 kHz audio each, ~100 KB)."""
        self.max_phrase_chars = max_phrase_chars
        """Longer text is not cached (it is not a fixed phrase)."""
        self._audio: OrderedDict[str, bytes] = OrderedDict()

    @property
    def sample_rate(self) -> int:
        return self.tts.sample_rate

    def cached(self, text: str) -> bytes | None:
        pcm = self._audio.get(text)
        if pcm is not None:
            self._audio.move_to_end(text)
        return pcm

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

    async def prepare(self, texts: list[str]) -> None:
        """Render `texts` now; a failure is logged, and that phrase is rendered when first used."""
        for text in texts:
            if text.strip():
                try:
                    await self.render(text)
                except Exception:
                    log.exception("could not pre-render a phrase", extra={"phrase": text[:80]})
