"""A 30-minute recorded call costs the pod constant memory: RSS growth with recording on vs off.

Why: a recording streams to storage in bounded chunks while the call runs (chunk 0, the chunk
filling and at most `WRITE_QUEUE_CHUNKS` waiting), so a long call must not grow the pod by the size
of its WAV (30 minutes of 8 kHz stereo PCM16 is 57.6 MB).

Method: the pod (the real app under uvicorn, the model-free echo agent, wrapped with an agent config
that says `record: true` for the recorded variant) runs as a child process, one per variant, so
RSS is the pod's alone. Its recording store is a file on disk (`FileRecordingStore`, a
`RecordingStore` like GridFS's): storage memory stays out of the pod, as a real MongoDB's would.
This process is Twilio: it opens the real `/twilio/media` WebSocket with a valid call token
(`call_token.issue` with the pod's key, as the tests mint them), sends `connected` and `start`,
then 30 minutes of inbound 20 ms frames (90 000 `media` messages: a 1.2 s synthetic utterance
every 10 s, silence between, so the echo agent answers and the agent track has audio) FASTER THAN
REAL TIME (`SPEED`, 30x: 60 s for the call), reading what the pod sends meanwhile, then `stop`.
A short call first warms the pod up. The pod's RSS (VmRSS) is sampled every 50 ms; its growth is
the peak during the call less the RSS just before it.

Faster than real time, the pod's playout still paces the agent's replies in real time, so the
agent track is mostly silence; what the recording costs (the as-heard model, the WAV chunks, the
upload queue) is the same per inbound frame whatever the speed.

Run from the repository root (about 2.5 minutes on 2 cores; BENCH_POD_LOG=file keeps the pods' logs):

    .venv/bin/python benchmarks/recording_memory.py [--minutes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db.recordings import RecordingInfo
from telephony.simulator import new_sid, synthetic_utterance
from telephony.twilio import call_token
from tests.support.settings import make_settings

WINDOW = 250
"""Frames sent before yielding to the reader (the socket's flow control bounds what is in flight)."""
SPEED = 30.0
"""How much faster than real time the call is driven: 30 minutes in 60 s. Much faster (60x on a
shared 2-core machine) the pod no longer keeps up: messages pile up in its socket, the stream's
reader runs through them without yielding, the session drops caller audio and the recording's
writer task, starved, drops chunks (counted: the run says so); a real call makes one chunk every 8 s."""
TARGET_BYTES = 2 * 1024 * 1024
"""The growth recording may add to a 30-minute call."""
FRAME = 160


class FileRecordingStore:
    """A `RecordingStore` on local files: chunk n at offset n x chunk size, metadata beside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, call_sid: str) -> Path:
        return self.folder / f"{call_sid}.wav"

    def _write(self, call_sid: str, n: int, data: bytes, chunk_size: int) -> None:
        path = self._path(call_sid)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, data, n * chunk_size)
        finally:
            os.close(fd)

    async def put_chunk(self, call_sid: str, n: int, data: bytes, *, expires_at: datetime) -> None:
        from db.recordings import CHUNK_BYTES

        await asyncio.to_thread(self._write, call_sid, n, data, CHUNK_BYTES)

    async def finish(
        self,
        call_sid: str,
        first_chunk: bytes,
        *,
        length: int,
        chunk_size: int,
        expires_at: datetime,
        metadata: Mapping[str, Any],
    ) -> None:
        await asyncio.to_thread(self._write, call_sid, 0, first_chunk, chunk_size)
        meta = {"length": length, "chunk_size": chunk_size, **metadata}
        (self.folder / f"{call_sid}.json").write_text(json.dumps(meta))

    async def info(self, call_sid: str) -> RecordingInfo | None:
        meta_path = self.folder / f"{call_sid}.json"
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        return RecordingInfo(
            call_sid,
            meta["length"],
            meta["chunk_size"],
            meta["duration_s"],
            meta["complete"],
            meta["dropped_chunks"],
            datetime.now(UTC),
        )

    async def read(self, info: RecordingInfo, start: int, end: int) -> AsyncIterator[bytes]:
        with self._path(info.call_sid).open("rb") as file:
            file.seek(start)
            yield file.read(end - start)

    async def delete(self, call_sid: str) -> bool:
        return False


# -- the pod (child process) -------------------------------------------------------------------


def serve(record: bool, folder: Path) -> None:
    from agents.echo import EchoAgent
    from agents.port import AgentCatalog
    from telephony.app import create_app
    from telephony.server import BackgroundServer
    from tests.support.recorded_agent import RecordedAgent

    settings = make_settings()
    echo = EchoAgent(transfer_number=settings.transfer_number)
    agent = RecordedAgent(echo) if record else echo
    app = create_app(settings, agents=AgentCatalog({"echo": agent}), recording_store=FileRecordingStore(folder))
    with BackgroundServer(app, settings) as url:
        print(url, flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin


# -- Twilio (this process) ---------------------------------------------------------------------


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def frames(minutes: float) -> list[bytes]:
    """The caller's track: a 1.2 s utterance every 10 s, silence between (mu-law, 20 ms frames)."""
    utterance = synthetic_utterance(1.2)
    block = utterance + b"\xff" * (8000 * 10 - len(utterance))
    track = block * int(minutes * 6 + 1)
    count = int(minutes * 60 * 50)
    return [track[i * FRAME : (i + 1) * FRAME] for i in range(count)]


async def call(url: str, count: int, speed: float = SPEED) -> float:
    """One call of `count` inbound frames at `speed` x real time (at most); returns its wall seconds."""
    import websockets

    settings = make_settings()
    call_sid, stream_sid = new_sid("CA"), new_sid("MZ")
    token = call_token.issue(settings.call_token_key(), call_sid=call_sid, agent_id="echo", ttl_seconds=600)
    track = frames(count / 3000 + 1)[:count]
    started = time.monotonic()
    async with websockets.connect(url.replace("http://", "ws://") + "/twilio/media", max_size=2**20) as ws:

        async def drain() -> None:
            try:
                async for _ in ws:
                    pass
            except websockets.ConnectionClosed:
                pass

        reader = asyncio.create_task(drain())
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": new_sid("AC"),
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"token": token},
        }
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": start}))
        for i, frame in enumerate(track):
            media = {
                "track": "inbound",
                "chunk": str(i + 1),
                "timestamp": str(i * 20),
                "payload": base64.b64encode(frame).decode(),
            }
            message = {"event": "media", "sequenceNumber": str(i + 2), "streamSid": stream_sid, "media": media}
            await ws.send(json.dumps(message))
            if i % WINDOW == 0:  # `speed` x real time at most
                await asyncio.sleep(max(0.0, started + i * 0.02 / speed - time.monotonic()))
        stop = {"accountSid": start["accountSid"], "callSid": call_sid}
        ending = {"event": "stop", "sequenceNumber": str(len(track) + 2), "streamSid": stream_sid, "stop": stop}
        await ws.send(json.dumps(ending))
        await asyncio.wait_for(reader, timeout=30)
    return time.monotonic() - started


async def measured(url: str, pid: int, count: int) -> tuple[int, int, float]:
    """(RSS before, peak RSS during the call, wall seconds)."""
    await asyncio.sleep(1.0)
    before = rss(pid)
    peak = before
    task = asyncio.create_task(call(url, count))
    while not task.done():
        peak = max(peak, rss(pid))
        await asyncio.sleep(0.05)
    seconds = await task
    for _ in range(20):  # the recording finishes in the background: keep sampling meanwhile
        peak = max(peak, rss(pid))
        await asyncio.sleep(0.05)
    return before, peak, seconds


def variant(record: bool, minutes: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", "1" if record else "0", "--store", folder],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(os.environ.get("BENCH_POD_LOG", os.devnull), "w"),
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdin is not None
            url = child.stdout.readline().strip()
            asyncio.run(call(url, 500))  # warm-up: 10 s of call
            count = int(minutes * 60 * 50)
            before, peak, seconds = asyncio.run(measured(url, child.pid, count))
            result: dict[str, Any] = {"before": before, "growth": peak - before, "seconds": seconds, "frames": count}
            if record:
                deadline = time.monotonic() + 30
                metas = []
                while time.monotonic() < deadline and len(metas) < 2:  # the warm-up's and the long call's
                    metas = sorted(Path(folder).glob("*.json"), key=lambda p: json.loads(p.read_text())["length"])
                    time.sleep(0.1)
                meta = json.loads(metas[-1].read_text())
                wav = metas[-1].with_suffix(".wav")
                result |= {"length": meta["length"], "file_bytes": wav.stat().st_size, "meta": meta}
            child.stdin.close()
            child.wait(timeout=30)
            return result
        finally:
            if child.poll() is None:
                child.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--serve", choices=["0", "1"], help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve == "1", args.store)
        return
    mib = 1024 * 1024
    off = variant(False, args.minutes)
    on = variant(True, args.minutes)
    call_s = on["frames"] * 0.02
    print(f"a {args.minutes:g}-minute call ({on['frames']} inbound frames), driven faster than real time")
    for name, result in (("recording off", off), ("recording on", on)):
        print(
            f"  {name:14s} RSS before {result['before'] / mib:7.1f} MiB, growth during the call "
            f"{result['growth'] / mib:6.2f} MiB ({result['seconds']:.1f} s wall)"
        )
    difference = on["growth"] - off["growth"]
    verdict = "within" if difference < TARGET_BYTES else "OVER"
    print(f"  difference (on - off): {difference / mib:.2f} MiB, {verdict} the {TARGET_BYTES / mib:.0f} MiB target")
    expected = 44 + on["frames"] * 640
    duration = on["meta"]["duration_s"]
    print(
        f"  stored file: {on['length']} bytes (on disk {on['file_bytes']}), expected 44 + frames x 640 = {expected}: "
        f"{'equal' if on['length'] == expected == on['file_bytes'] else 'DIFFERENT'}; "
        f"duration {duration:.2f} s vs call {call_s:.2f} s; complete {on['meta']['complete']}, "
        f"dropped chunks {on['meta']['dropped_chunks']}"
    )


if __name__ == "__main__":
    main()
