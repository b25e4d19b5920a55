"""Hostile uploads against the real `switchboard speech` service: refused in bounded time and memory.

Why: the speech service decoded and resampled whatever an upload declared, on its event loop. An
8 KB WAV declaring a 1 Hz frame rate asked for 16000x as many samples at 16 kHz: it raised the
service's peak RSS by 735 MB and held its event loop for 2.8 s before the 400 (issue 15); a 64 KB
one would have OOM-killed it. It also served anyone, with no key.

Method: `python -m telephony.cli.main speech` (real Whisper tiny.en and Kokoro, the service's own
settings) runs as a child process on a free loopback port with a key. Each hostile request is sent
once; meanwhile a thread polls `/healthz` (no key needed) every 10 ms, so the longest health answer
during the request is how long the event loop was held. Before and after each request the child's
`/proc/<pid>/status` is read: `VmHWM` (peak resident set) and `VmRSS`. Growth of the peak is the
figure that matters (the memory a pod limit would have to hold for that request).

`--root PATH` runs the service from another checkout (e.g. an export of the commit before the fix,
`git archive HEAD | tar -x -C /tmp/before`): there it has no keys, so requests go without one.
`--skip-large` leaves out the 64 KB 1 Hz WAV (which the unfixed service cannot survive).

Run: `.venv/bin/python benchmarks/speech_attacks.py`. Figures on a loaded 2-core machine are rough.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.service_wait import wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
KEY = "speech-attacks-key-0123456789abcdef"
MiB = 1024 * 1024


def wav(frames: bytes, rate: int, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def noise(n_bytes: int) -> bytes:
    return np.random.default_rng(0).integers(-3000, 3000, n_bytes // 2, dtype=np.int16).tobytes()


def flac(seconds: float, rate: int = 16000) -> bytes:
    """Silence, losslessly compressed: minutes of audio in a few KB (a decompression bomb)."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono")
        step = rate  # one second per frame
        for _ in range(int(seconds)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, step), dtype=np.int16), format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


@dataclass
class Attack:
    name: str
    send: Callable[[httpx.Client], httpx.Response]


def upload(data: bytes, key: str | None) -> Callable[[httpx.Client], httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    def send(http: httpx.Client) -> httpx.Response:
        return http.post(
            "/v1/audio/transcriptions", files={"file": ("a.wav", data)}, data={"model": "x"}, headers=headers
        )

    return send


def chunked(total: int, key: str | None) -> Callable[[httpx.Client], httpx.Response]:
    """A multipart body with no Content-Length, far over the bound: counted as it arrives."""
    headers = {"content-type": "multipart/form-data; boundary=b"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'

    def send(http: httpx.Client) -> httpx.Response:
        body = iter([head, *[b"x" * MiB] * (total // MiB), b"\r\n--b--\r\n"])
        return http.post("/v1/audio/transcriptions", content=body, headers=headers)

    return send


def attacks(key: str | None, skip_large: bool) -> list[Attack]:
    listed = [
        Attack("1 Hz WAV, 8 KB", upload(wav(noise(8 * 1024), 1), key)),
        Attack("1 Hz WAV, 64 KB", upload(wav(noise(64 * 1024), 1), key)),
        Attack("1 Hz WAV, 8 KB, no key", upload(wav(noise(8 * 1024), 1), None)),
        Attack("1 Hz WAV, 8 KB, wrong key", upload(wav(noise(8 * 1024), 1), "wrong-key-0123456789abcdef")),
        Attack("8 kHz WAV, 9 MB (590 s)", upload(wav(noise(9 * MiB), 8000), key)),
        Attack("48 kHz stereo WAV, 9 MB (49 s)", upload(wav(noise(9 * MiB), 48000, 2), key)),
        Attack("FLAC, 30 min of silence", upload(flac(1800), key)),
        Attack("11 MB body (Content-Length)", upload(noise(11 * MiB), key)),
        Attack("40 MB chunked body", chunked(40 * MiB, key)),
    ]
    return [a for a in listed if not (skip_large and "64 KB" in a.name)]


def status(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            values[name] = int(rest.split()[0]) * 1024
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def speech_service(root: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "SWITCHBOARD_SPEECH_PORT": str(port),
        "SWITCHBOARD_SPEECH_SERVER_API_KEYS": KEY,
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "telephony.cli.main", "speech"], env=env, cwd=root, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(child, url, log)
        yield child, url
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


class LoopWatch:
    """Polls /healthz every 10 ms on a thread; `worst` is the longest answer seen (the loop held)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoopWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self._stop.is_set():
                start = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    http.get("/healthz")
                self.worst = max(self.worst, time.perf_counter() - start)
                self._stop.wait(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to run the service from")
    parser.add_argument("--skip-large", action="store_true", help="leave out the 64 KB 1 Hz WAV")
    parser.add_argument("--log", type=Path, default=Path("/tmp/speech_attacks.log"))
    args = parser.parse_args()
    with speech_service(args.root.resolve(), args.log) as (child, url):
        idle = status(child.pid)
        print(f"speech service pid {child.pid} from {args.root}: VmRSS {idle['VmRSS'] / MiB:.1f} MB idle")
        print(f"{'request':34} {'status':>6} {'answer s':>9} {'loop held s':>11} {'peak +MB':>9} {'RSS +MB':>8}")
        with httpx.Client(base_url=url, timeout=120) as http:
            for attack in attacks(KEY, args.skip_large):
                before = status(child.pid)
                with LoopWatch(url) as watch:
                    start = time.perf_counter()
                    try:
                        answer: str = str(attack.send(http).status_code)
                    except httpx.HTTPError as exc:
                        answer = type(exc).__name__
                    took = time.perf_counter() - start
                if child.poll() is not None:
                    print(f"{attack.name:34} {answer:>6} {took:9.2f}  service DIED (exit {child.returncode})")
                    return 1
                after = status(child.pid)
                grew = (after["VmHWM"] - before["VmHWM"]) / MiB
                rss = (after["VmRSS"] - before["VmRSS"]) / MiB
                print(f"{attack.name:34} {answer:>6} {took:9.3f} {watch.worst:11.3f} {grew:9.1f} {rss:8.1f}")
        final = status(child.pid)
        print(f"peak RSS growth over the whole run: {(final['VmHWM'] - idle['VmHWM']) / MiB:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
