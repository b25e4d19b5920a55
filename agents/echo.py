"""A minimal agent that proves the whole loop before the conversation engine exists.

It greets with two short beeps, listens with a simple energy detector, and after each utterance
plays it back (after a short pause). Speaking over the playback is a barge-in: it asks for
`clear`. DTMF `*` hangs up, `0` transfers (when a transfer number is configured), `#` repeats the
last utterance.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from agents.port import AudioIn, CallPort, DtmfIn, EndRequested, MarkHeard


@dataclass(frozen=True)
class EchoTuning:
    speech_rms: float = 500.0
    """Frame RMS (PCM16) above which the caller is speaking."""
    end_of_utterance_ms: int = 600
    """Silence that ends an utterance."""
    min_utterance_ms: int = 200
    """Shorter bursts are noise, not speech."""
    max_utterance_ms: int = 10_000
    """Bound on the audio kept for one utterance; the rest is not recorded."""
    reply_pause_ms: int = 300
    max_call_seconds: float = 900.0
    """The agent hangs up after this long, whatever is happening."""


def beep(sample_rate: int, hz: float = 660.0, ms: int = 150, gap_ms: int = 100, count: int = 2) -> bytes:
    """`count` short sine beeps separated by silence, as PCM16."""
    t = np.arange(int(sample_rate * ms / 1000)) / sample_rate
    tone = (np.sin(2 * np.pi * hz * t) * 8000 * np.hanning(t.size)).astype(np.int16)
    gap = np.zeros(int(sample_rate * gap_ms / 1000), dtype=np.int16)
    parts = [tone, gap] * count
    return np.concatenate(parts[:-1]).tobytes()


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0


class EchoAgent:
    def __init__(self, transfer_number: str | None = None, tuning: EchoTuning | None = None) -> None:
        self.transfer_number = transfer_number
        self.tuning = tuning or EchoTuning()

    async def run(self, port: CallPort) -> None:
        try:
            async with asyncio.timeout(self.tuning.max_call_seconds):
                await _EchoCall(port, self).run()
        except TimeoutError:
            await port.hang_up("max call duration")


class _EchoCall:
    """The state of one echo call."""

    def __init__(self, port: CallPort, agent: EchoAgent) -> None:
        self.port = port
        self.agent = agent
        self.tuning = agent.tuning
        self.rate = port.info.sample_rate
        self.utterance = bytearray()
        self.last_utterance = b""
        self.in_speech = False
        self.speech_ms = 0.0
        self.silence_ms = 0.0
        self.replies = 0
        self.speaking_until: str | None = None
        """The mark that ends what the agent is saying now, or None when it is quiet."""
        self.reply_task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        await self.say(beep(self.rate), "greeting")
        try:
            async for event in self.port.events():
                if isinstance(event, AudioIn):
                    await self.on_audio(event.pcm)
                elif isinstance(event, DtmfIn):
                    if await self.on_digit(event.digit):
                        return
                elif isinstance(event, MarkHeard) and event.name == self.speaking_until:
                    self.speaking_until = None
                elif isinstance(event, EndRequested):
                    await self.port.hang_up(f"ended by the pod ({event.reason})")
                    return
        finally:
            if self.reply_task is not None:
                self.reply_task.cancel()

    async def say(self, pcm: bytes, mark: str) -> None:
        self.speaking_until = mark
        await self.port.play(pcm, self.rate)
        await self.port.mark(mark)

    async def on_audio(self, pcm: bytes) -> None:
        frame_ms = len(pcm) / 2 / self.rate * 1000
        loud = rms(pcm) >= self.tuning.speech_rms
        if loud and not self.in_speech:
            self.in_speech, self.speech_ms, self.silence_ms = True, 0.0, 0.0
            self.utterance.clear()
            await self.barge_in()
        if not self.in_speech:
            return
        if len(self.utterance) < self.tuning.max_utterance_ms * self.rate // 1000 * 2:
            self.utterance.extend(pcm)
        if loud:
            self.speech_ms += frame_ms + self.silence_ms
            self.silence_ms = 0.0
        else:
            self.silence_ms += frame_ms
        if self.silence_ms >= self.tuning.end_of_utterance_ms:
            self.in_speech = False
            if self.speech_ms >= self.tuning.min_utterance_ms:
                keep = int((self.speech_ms + 100) * self.rate / 1000) * 2
                self.last_utterance = bytes(self.utterance[:keep])
                self.reply_task = asyncio.create_task(self.reply(self.last_utterance))

    async def barge_in(self) -> None:
        """The caller started talking: stop any reply, scheduled or playing."""
        if self.reply_task is not None and not self.reply_task.done():
            self.reply_task.cancel()
        if self.speaking_until is not None:
            self.speaking_until = None
            await self.port.clear()

    async def reply(self, pcm: bytes) -> None:
        await asyncio.sleep(self.tuning.reply_pause_ms / 1000)
        self.replies += 1
        await self.say(pcm, f"reply-{self.replies}")

    async def on_digit(self, digit: str) -> bool:
        """Act on a key press; True when the call is over."""
        if digit == "*":
            await self.port.hang_up("caller pressed *")
            return True
        if digit == "0" and self.agent.transfer_number:
            await self.port.transfer(self.agent.transfer_number)
            return True
        if digit == "#" and self.last_utterance:
            await self.barge_in()
            self.reply_task = asyncio.create_task(self.reply(self.last_utterance))
        return False


__all__ = ["EchoAgent", "EchoTuning", "beep", "rms"]
