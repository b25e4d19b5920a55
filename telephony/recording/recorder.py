"""One call's recording (the playout's tap and the inbound frames in, a WAV out) and the pod's recorders.

A call is recorded when its agent's config says `record: true`. Nothing here may hurt the call: a
recorder that fails stops recording (logged) and the call goes on; finishing (the last chunks, the
header, the files document) runs as a task of its own after the stream has closed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from db.calls import MAX_RETENTION_DAYS
from db.recordings import RecordingStore
from telephony.recording.as_heard import AsHeard
from telephony.recording.writer import RecordingWriter, Written

log = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 10.0
"""At pod shutdown, how long recordings of ended calls may take to finish before they are abandoned."""


def records(agent: Any) -> tuple[bool, int | None]:
    """Whether `agent` (any `Agent`) records its calls, and its `retention_days`: read from its
    config where it has one (voice agents), else not recorded (the built-in echo agent)."""
    config = getattr(agent, "config", None)
    return bool(getattr(config, "record", False)), getattr(config, "retention_days", None)


class CallRecorder:
    """Both sides of one call into one `RecordingWriter`. Also the `Playout`'s tap (`sent`, `cleared`)."""

    def __init__(self, writer: RecordingWriter) -> None:
        self._writer = writer
        self._heard = AsHeard()
        self.inbound_frames = 0
        self.failed = False
        self.written: Written | None = None

    @property
    def call_sid(self) -> str:
        return self._writer.call_sid

    def sent(self, mulaw: bytes) -> None:
        """An agent frame went to Twilio."""
        if not self.failed:
            self._guard(self._heard.agent_sent, mulaw)

    def cleared(self) -> None:
        """Twilio was told to drop what it holds (a barge-in)."""
        if not self.failed:
            self._guard(self._heard.cleared)

    def caller(self, pcm: bytes) -> None:
        """An inbound frame, already decoded to PCM16 by the stream: 20 ms of the call, both sides."""
        if not self.failed:
            self._guard(self._record, pcm)

    def _record(self, pcm: bytes) -> None:
        self._writer.write(self._heard.caller(pcm))
        self.inbound_frames += 1

    def _guard(self, step: Any, *args: Any) -> None:
        try:
            step(*args)
        except Exception:
            self.failed = True
            log.exception(
                "call recorder failed; the rest of the call is not recorded", extra={"call_sid": self.call_sid}
            )

    async def finish(self) -> Written:
        self.written = await self._writer.finish()
        if not self.written.complete:
            log.warning(
                "recording incomplete",
                extra={
                    "call_sid": self.call_sid,
                    "dropped_chunks": self.written.dropped_chunks,
                    "truncated": self.written.truncated,
                    "stored": self.written.stored,
                },
            )
        return self.written

    async def abandon(self) -> None:
        await self._writer.abandon()


class Recorders:
    """The pod's recordings: one `CallRecorder` per recorded call on `store`, finished in the
    background. Finishing tasks are bounded by the calls the pod admits, each by the writer's time
    bound (`RecordingWriter.finish`)."""

    def __init__(self, store: RecordingStore, default_retention_days: int) -> None:
        self.store = store
        self._default_days = default_retention_days
        self._finishing: dict[asyncio.Task[Written], CallRecorder] = {}

    def start(self, call_sid: str, retention_days: int | None = None) -> CallRecorder:
        """A recorder for a call; it expires with the call's record (`db.calls`: the agent's
        `retention_days`, else the pod's)."""
        days = self._default_days if retention_days is None else retention_days
        days = max(1, min(int(days), MAX_RETENTION_DAYS))
        expires_at = datetime.now(UTC) + timedelta(days=days)
        return CallRecorder(RecordingWriter(self.store, call_sid, expires_at))

    def for_call(self, agent: Any, call_sid: str) -> CallRecorder | None:
        """A recorder when `agent` records its calls (`records`), else None."""
        wanted, retention_days = records(agent)
        return self.start(call_sid, retention_days) if wanted else None

    def finish(self, recorder: CallRecorder) -> asyncio.Task[Written]:
        """The call ended: store the rest in the background (never awaited by the call)."""
        task = asyncio.create_task(recorder.finish(), name=f"recording-finish-{recorder.call_sid}")
        self._finishing[task] = recorder
        task.add_done_callback(lambda done: self._finishing.pop(done, None))
        return task

    @property
    def finishing(self) -> int:
        return len(self._finishing)

    async def close(self, timeout_s: float) -> None:
        """Pod shutdown: let recordings finish within `timeout_s`, abandon the rest."""
        if not self._finishing:
            return
        _, late = await asyncio.wait(set(self._finishing), timeout=timeout_s)
        for task in late:
            recorder = self._finishing.get(task)
            task.cancel()
            if recorder is not None:
                await recorder.abandon()
        await asyncio.gather(*late, return_exceptions=True)
