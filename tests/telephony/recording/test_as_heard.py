"""The agent track holds what the caller heard: what Twilio held when each inbound frame arrived,
nothing a `clear` dropped, and exactly as many frames as came in."""

from __future__ import annotations

import asyncio

import numpy as np

from telephony.audio.mulaw import MULAW_FRAME_BYTES, audioop
from telephony.recording.as_heard import AsHeard
from telephony.twilio.playout import Playout

A = audioop.lin2ulaw(np.full(160, 8000, dtype=np.int16).tobytes(), 2)
B = audioop.lin2ulaw(np.full(160, -8000, dtype=np.int16).tobytes(), 2)
CALLER = np.full(160, 3000, dtype=np.int16).tobytes()
"""The caller's frame as the stream hands it over: decoded to PCM16."""


def sides(stereo: bytes) -> tuple[np.ndarray, np.ndarray]:
    samples = np.frombuffer(stereo, dtype=np.int16)
    return samples[0::2], samples[1::2]


def frame_levels(channel: np.ndarray) -> list[int]:
    """Each 20 ms frame's (constant) level, rounded to thousands."""
    return [round(int(channel[i : i + 160].mean()), -3) for i in range(0, len(channel), 160)]


def test_a_cleared_reply_is_not_recorded_and_the_length_is_the_inbound_frames() -> None:
    heard = AsHeard()
    for _ in range(10):  # a long reply goes to Twilio
        heard.agent_sent(A)
    out = [heard.caller(CALLER) for _ in range(3)]  # three frames of it played
    heard.cleared()  # the caller barged in: the other seven are dropped unplayed
    for _ in range(2):
        heard.agent_sent(B)
    out += [heard.caller(CALLER) for _ in range(5)]
    left, right = sides(b"".join(out))
    assert len(left) == len(right) == 8 * MULAW_FRAME_BYTES  # 8 inbound frames: 160 ms
    assert frame_levels(right) == [8000] * 3 + [-8000] * 2 + [0] * 3
    assert frame_levels(left) == [3000] * 8
    assert heard.cleared_bytes == 7 * MULAW_FRAME_BYTES and heard.held_bytes == 0


def test_odd_sized_frames_and_the_held_bound() -> None:
    heard = AsHeard(max_held_bytes=320)
    for _ in range(5):
        heard.agent_sent(A)
    assert heard.held_bytes == 320 and heard.overflowed_bytes == 3 * 160
    left, right = sides(heard.caller(CALLER[:200]))  # 100 samples
    assert len(left) == len(right) == 100
    assert heard.held_bytes == 220


async def test_playout_tells_its_tap_what_it_sends_and_when_it_clears() -> None:
    sent_frames: list[bytes] = []
    clears: list[int] = []

    class PlayoutTap:
        def sent(self, mulaw: bytes) -> None:
            sent_frames.append(mulaw)

        def cleared(self) -> None:
            clears.append(len(sent_frames))

    async def send(text: str) -> None:
        pass

    playout = Playout(send, "MZ1", lead_ms=100, tap=PlayoutTap())
    task = asyncio.create_task(playout.run())
    try:
        await playout.enqueue_audio(A * 20)
        for _ in range(100):
            if len(sent_frames) >= 5:  # the lead (5 frames) goes at once
                break
            await asyncio.sleep(0.005)
        await playout.clear()
        assert clears == [len(sent_frames)] and 5 <= len(sent_frames) < 20
        assert all(frame == A for frame in sent_frames)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
