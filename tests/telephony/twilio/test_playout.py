"""Playout: real-time pacing of agent audio, marks, clear and backpressure, on the real event loop."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.tasks import cancel_and_wait
from telephony.twilio.playout import Playout
from tests.support.waiting import until

SID = "MZ0123456789abcdef0123456789abcdef"
FRAME = 160


class Recorder:
    """A fake `send`: keeps (monotonic time, parsed message) for every message."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, Any]]] = []

    async def __call__(self, message: str) -> None:
        self.sent.append((time.monotonic(), json.loads(message)))

    @property
    def events(self) -> list[str]:
        return [message["event"] for _, message in self.sent]

    @property
    def media(self) -> list[bytes]:
        return [base64.b64decode(m["media"]["payload"]) for _, m in self.sent if m["event"] == "media"]

    @property
    def media_times(self) -> list[float]:
        return [t for t, m in self.sent if m["event"] == "media"]

    def summary(self) -> list[str]:
        """'media' for audio, 'mark:<name>' for marks, 'clear' for clear."""
        out = []
        for _, message in self.sent:
            if message["event"] == "mark":
                out.append(f"mark:{message['mark']['name']}")
            else:
                out.append(message["event"])
        return out


@contextlib.asynccontextmanager
async def running(playout: Playout) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(playout.run())
    try:
        yield task
    finally:
        await cancel_and_wait(task)


async def settle() -> None:
    """Let ready tasks run without letting any timer-based sleep finish."""
    for _ in range(5):
        await asyncio.sleep(0)


def audio(frames: float, start: int = 0) -> bytes:
    """Distinct, recognisable mu-law bytes (not silence), `frames` * 20 ms long."""
    return bytes((start + i) % 127 for i in range(int(frames * FRAME)))


async def test_audio_is_sent_in_160_byte_frames() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=2000)
    data = audio(3) + audio(50 / FRAME, start=7)
    async with running(playout):
        await playout.enqueue_audio(data)
        await until(lambda: len(send.media) == 3)
        await settle()
        assert len(send.media) == 3  # the 50-byte remainder is held back, not sent short
        assert all(len(frame) == FRAME for frame in send.media)
        assert b"".join(send.media) == data[: 3 * FRAME]
        assert all(m["streamSid"] == SID for _, m in send.sent)
        assert playout.frames_sent == 3


async def test_partial_frames_join_across_enqueue_calls() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=2000)
    data = audio(4)
    async with running(playout):
        for start in range(0, len(data), 100):  # 100-byte pieces: frames straddle the calls
            await playout.enqueue_audio(data[start : start + 100])
        await until(lambda: len(send.media) == 4)
        assert b"".join(send.media) == data


async def test_first_lead_goes_at_once_then_real_time() -> None:
    """With lead_ms=100, the first 100 ms (5 frames) leave without waiting; 1 s of audio takes at
    least (1 s - lead) to send in full, i.e. no faster than real time."""
    send = Recorder()
    playout = Playout(send, SID, lead_ms=100)
    duration = 1.0
    async with running(playout):
        started = time.monotonic()
        await playout.enqueue_audio(audio(duration / 0.02))
        await settle()
        assert len(send.media) >= 5  # the lead went out with no timer wait at all
        assert len(send.media) < 50  # ...but not the whole reply
        await until(lambda: len(send.media) == 50)
        elapsed = send.media_times[-1] - started
    assert elapsed >= duration - 0.1 - 0.03
    # Twilio never holds more than the lead (+ one frame) unplayed: frame i (20 ms each) leaves no
    # earlier than i*20 ms - lead after the start.
    for i, sent_at in enumerate(send.media_times):
        assert sent_at - started >= i * 0.02 - 0.1 - 0.03


async def test_buffered_ms_counts_queued_and_unplayed_audio() -> None:
    """With the playout's clock frozen, audio moves from 'queued here' to 'sent, unplayed' without
    changing the total; advancing the clock plays it."""
    now = [1000.0]
    send = Recorder()
    playout = Playout(send, SID, lead_ms=100, clock=lambda: now[0])
    assert playout.buffered_ms == 0
    await playout.enqueue_audio(audio(10))
    assert playout.buffered_ms == pytest.approx(200)  # nothing sent yet: 10 queued frames
    async with running(playout):
        await settle()
        assert len(send.media) >= 5
        # 5 sent (100 ms unplayed at Twilio) + 5 queued here; the one frame run() holds while
        # waiting for its slot is currently counted in neither, hence the 20 ms allowance
        before = playout.buffered_ms
        assert 180 - 1e-6 <= before <= 200 + 1e-6
        assert playout.idle is False
        now[0] += 0.06  # 60 ms of the sent audio has played
        assert playout.buffered_ms == pytest.approx(before - 60)


async def test_marks_follow_the_audio_queued_before_them() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=2000)
    async with running(playout):
        await playout.enqueue_audio(audio(3))
        playout.enqueue_mark("a")
        await playout.enqueue_audio(audio(2))
        playout.enqueue_mark("b")
        playout.enqueue_mark("c")
        await until(lambda: len(send.sent) == 8)
        assert send.summary() == ["media"] * 3 + ["mark:a"] + ["media"] * 2 + ["mark:b", "mark:c"]
        assert send.sent[3][1] == {"event": "mark", "streamSid": SID, "mark": {"name": "a"}}


async def test_mark_waits_for_paced_audio() -> None:
    """A mark behind paced audio leaves only after the last frame before it."""
    send = Recorder()
    playout = Playout(send, SID, lead_ms=20)
    async with running(playout):
        await playout.enqueue_audio(audio(6))
        playout.enqueue_mark("end")
        await settle()
        assert "mark:end" not in send.summary()
        await until(lambda: "mark:end" in send.summary())
        assert send.summary() == ["media"] * 6 + ["mark:end"]


async def test_partial_frame_is_padded_with_silence_when_a_mark_is_queued() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=2000)
    data = audio(200 / FRAME)
    async with running(playout):
        await playout.enqueue_audio(data)
        playout.enqueue_mark("m")
        await until(lambda: len(send.sent) == 3)
        assert send.summary() == ["media", "media", "mark:m"]
        first, second = send.media
        assert first == data[:FRAME]
        assert second == data[FRAME:] + b"\xff" * (2 * FRAME - len(data))
        assert len(second) == FRAME


async def test_clear_drops_queued_audio_and_reports_unheard_marks() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=100)
    async with running(playout):
        await playout.enqueue_audio(audio(2))
        playout.enqueue_mark("sent-1")
        await playout.enqueue_audio(audio(40))
        playout.enqueue_mark("queued-1")
        await playout.enqueue_audio(audio(10))
        playout.enqueue_mark("queued-2")
        await playout.enqueue_audio(audio(0.5))  # a held partial frame is dropped too
        await until(lambda: "mark:sent-1" in send.summary())

        dropped = await playout.clear()

        assert dropped == ["sent-1", "queued-1", "queued-2"]
        assert send.sent[-1][1] == {"event": "clear", "streamSid": SID}
        assert playout.buffered_ms == 0
        media_before_clear = len(send.media)
        await asyncio.sleep(0.15)  # longer than the lead: any paced frame would have gone by now
        assert send.events[-1] == "clear"
        assert len(send.media) == media_before_clear
        assert len(send.media) < 42


async def test_playout_continues_after_clear() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=100)
    async with running(playout):
        await playout.enqueue_audio(audio(30))
        await settle()
        assert await playout.clear() == []
        new = audio(2, start=50)
        await playout.enqueue_audio(new)
        playout.enqueue_mark("after")
        await until(lambda: send.summary()[-1:] == ["mark:after"])
        clear_at = send.events.index("clear")
        assert send.summary()[clear_at + 1 :] == ["media", "media", "mark:after"]
        assert b"".join(send.media[-2:]) == new


async def test_marks_echoed_in_order_were_heard() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=2000)
    async with running(playout):
        for name in ("a", "b", "c"):
            await playout.enqueue_audio(audio(1))
            playout.enqueue_mark(name)
        await until(lambda: len(send.sent) == 6)
        assert playout.mark_echoed("a") is True
        assert playout.mark_echoed("b") is True
        assert playout.mark_echoed("c") is True
        assert await playout.clear() == []  # nothing left outstanding


async def test_echo_of_a_later_mark_means_the_earlier_ones_were_heard() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=2000)
    async with running(playout):
        for name in ("a", "b", "c"):
            await playout.enqueue_audio(audio(1))
            playout.enqueue_mark(name)
        await until(lambda: len(send.sent) == 6)
        assert playout.mark_echoed("b") is True
        assert playout.mark_echoed("a") is False  # already settled as heard: no longer outstanding
        assert await playout.clear() == ["c"]


async def test_echo_of_a_cleared_mark_is_false_and_swallowed() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=2000)
    async with running(playout):
        await playout.enqueue_audio(audio(1))
        playout.enqueue_mark("m")
        await until(lambda: len(send.sent) == 2)
        assert await playout.clear() == ["m"]

        # a new mark reusing the name, sent after the clear
        await playout.enqueue_audio(audio(1))
        playout.enqueue_mark("m")
        await until(lambda: send.summary()[-1:] == ["mark:m"] and len(send.sent) == 5)

        assert playout.mark_echoed("m") is False  # Twilio's echo of the cleared one: not heard
        assert playout.mark_echoed("m") is True  # the echo of the new one


async def test_mark_cleared_before_it_was_sent_is_reported_but_not_awaited() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=2000)
    playout.enqueue_mark("never-sent")  # run() not started: stays queued here
    assert await playout.clear() == ["never-sent"]
    assert send.summary() == ["clear"]
    assert playout.mark_echoed("never-sent") is False


def test_unknown_mark_echo_is_false() -> None:
    playout = Playout(Recorder(), SID)
    assert playout.mark_echoed("nobody-sent-this") is False


async def test_enqueue_waits_when_full_and_close_releases_it() -> None:
    send = Recorder()
    playout = Playout(send, SID, max_frames=3)
    producer = asyncio.create_task(playout.enqueue_audio(audio(5)))
    try:
        await settle()
        assert not producer.done()  # 3 frames queued, waiting for space for the 4th
        assert playout.buffered_ms == pytest.approx(60)
        playout.close()
        await asyncio.wait_for(producer, timeout=1)
        assert playout.buffered_ms == pytest.approx(60)  # nothing more accepted once closed
        await playout.enqueue_audio(audio(2))
        assert playout.buffered_ms == pytest.approx(60)
    finally:
        producer.cancel()
    assert send.sent == []


async def test_enqueue_resumes_as_frames_are_sent() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=100, max_frames=3)
    async with running(playout):
        await asyncio.wait_for(playout.enqueue_audio(audio(12)), timeout=2)
        await until(lambda: len(send.media) == 12)
        assert b"".join(send.media) == audio(12)


async def test_clear_releases_a_waiting_producer() -> None:
    send = Recorder()
    playout = Playout(send, SID, max_frames=2)
    producer = asyncio.create_task(playout.enqueue_audio(audio(3)))
    try:
        await settle()
        assert not producer.done()
        await playout.clear()
        await asyncio.wait_for(producer, timeout=1)
    finally:
        producer.cancel()


async def test_wait_idle_returns_once_everything_has_played() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=100)
    async with running(playout):
        await playout.enqueue_audio(audio(3) + audio(0.5))  # 3.5 frames: the half frame is padded
        assert playout.idle is False
        assert await playout.wait_idle(timeout=2) is True
        assert len(send.media) == 4
        assert send.media[-1].endswith(b"\xff" * 80)
        assert playout.idle is True
        assert playout.buffered_ms == 0


async def test_wait_idle_times_out_while_audio_is_playing() -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=100)
    async with running(playout):
        await playout.enqueue_audio(audio(50))
        assert await playout.wait_idle(timeout=0.05) is False
        assert len(send.media) < 50


async def test_wait_idle_returns_when_closed() -> None:
    playout = Playout(Recorder(), SID)
    await playout.enqueue_audio(audio(5))  # run() never started: would never become idle
    playout.close()
    assert await asyncio.wait_for(playout.wait_idle(timeout=5), timeout=1) is True


def test_idle_when_nothing_was_queued() -> None:
    playout = Playout(Recorder(), SID)
    assert playout.idle is True
    assert playout.buffered_ms == 0


@pytest.mark.parametrize("lead_ms", [0, 10])
async def test_wait_idle_with_a_short_lead_waits_for_the_last_frame(lead_ms: int) -> None:
    send = Recorder()
    playout = Playout(send, SID, lead_ms=lead_ms)
    async with running(playout):
        await playout.enqueue_audio(audio(3))
        assert await playout.wait_idle(timeout=2) is True
        assert len(send.media) == 3


async def test_audio_from_before_a_clear_is_not_queued_after_it() -> None:
    send = Recorder()
    playout = Playout(send, SID, max_frames=2)
    producer = asyncio.create_task(playout.enqueue_audio(audio(5)))
    try:
        await settle()
        assert not producer.done()  # 2 frames queued, waiting to queue the 3rd
        await playout.clear()
        await settle()
        assert playout.buffered_ms == 0  # the cut-off reply must not come back
    finally:
        await cancel_and_wait(producer)
