"""A call pod under a real 1 GiB memory limit, flooded with more calls than fit; and a soak.

Why: a pod that crosses its memory limit is OOM-killed with every call on it. The guard must keep
the process inside the limit under any load: refuse calls politely before memory runs out, shed
what cannot fit, and let the calls it admitted finish. Only a real limit shows that: the kernel
counts page cache, allocator slack and the models' buffers, which no estimate does.

Method: the server (`switchboard`'s real app under uvicorn, real Silero VAD, Whisper tiny.en and
Kokoro in process, the real OpenAI client) runs as a child process placed in a cgroup v1 memory
group `switchboard-pod-load-<pid>` with `memory.limit_in_bytes` = 1 GiB before it loads anything
(there is no swap here, so crossing the limit means the OOM killer). Its model is the scripted
FAKE OpenAI-compatible server in this process: every call's first model request asks for
`list_recent_orders({})` (the incident's empty filter), the second for a broad valid query
(`C-BULK`, who owns thousands of orders, limit 20), the third answers in two sentences. Its
database is the in-memory FAKE MongoDB (seeded in the server: its documents count against the
pod's memory, which a real MongoDB's would not), or a real server when MONGODB_URI is set.
The Twilio simulator places the calls: each lets the greeting play, asks for its order status
(tests/fixtures/speech/order_status.wav) and listens to the answer, then hangs up.

Phases:
1. baseline: the pod idle after start-up and one warm-up call (models loaded, first inference done).
2. steady: `--levels` concurrent calls (e.g. 1, 3, 6) held for one call length each; per-call cost
   is the slope of the working set's peak against the number of calls (least squares).
3. flood: `--flood` calls placed `--stagger` seconds apart, more than the pod admits: counts of
   admitted, refused (by the busy TwiML) and completed (the caller heard an answer and hung up).
4. soak (`--soak-minutes`, 0 to skip): `--soak-calls` calls kept running back to back; the working
   set is sampled every 5 s and its growth is the least-squares slope after the first minute.

Figures: the cgroup's working set (usage less inactive page cache, as the kubelet and the guard
count it), its peak (`memory.max_usage_in_bytes`, page cache included), `memory.failcnt` (times
usage met the limit and the kernel reclaimed cache, which is not a failure), `oom_kill` from
`memory.oom_control`, and the server's exit status after the drain and SIGTERM.

Remote engines (`--remote`): a `switchboard speech` service (Whisper tiny.en and Kokoro behind the
OpenAI audio API) is started as another child OUTSIDE the memory group, and the pod runs with
`SWITCHBOARD_STT_BACKEND=remote` and `SWITCHBOARD_TTS_BACKEND=remote`: it loads no speech model,
only the VAD. The figures are printed next to the in-process ones measured before (IN_PROCESS).
On a 2-core machine the service and the pod share the cores, so answers come late under load:
the memory figures are the point of that run, not the call capacity of the CPU.

Run as root from the repository root (about 6 minutes plus the soak; `--no-cgroup` runs without
the memory group, with the guard on the process RSS, for machines where that is not allowed):

    .venv/bin/python benchmarks/pod_load.py
    .venv/bin/python benchmarks/pod_load.py --soak-minutes 10 --flood 0 --levels ""
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.tasks import cancel_and_wait
from agents.testing.scripted_llm import Reply, ScriptedLlmServer, ScriptedToolCall
from benchmarks.service_wait import wait_until_healthy
from db.seed import BULK_PHONE
from telephony.simulator import CallReport, Pause, Say, SimulatedCall
from telephony.simulator.caller_audio import load_utterance

ROOT = Path(__file__).resolve().parents[1]
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
AUTH_TOKEN = "pod-load-auth-token-0123456789abcdef"
SPEECH_KEY = "pod-load-speech-key-0123456789abcdef"
"""The key the benchmark's speech service demands and its pod sends."""
NUMBER = "+15550100"
AGENT = "orders"
MiB = 1 << 20
INCIDENT_ARGUMENTS = '{"customer_id": {"$ne": null}}'
BROAD_ARGUMENTS = json.dumps({"limit": 20})
"""The caller's own orders: each call comes from `BULK_PHONE`, the phone of the customer with
thousands of orders, whom caller ID identifies; the customer is never an argument."""
LISTEN_S = 15.0
"""How long a caller listens after asking: fillers, then the answer (late when the CPU is saturated)."""
ANSWER = "Your latest order has shipped and should arrive on Thursday. Is there anything else I can help with?"


IN_PROCESS = {
    "idle": "493-635 MB",
    "per_call": "~0.6 MB (6 -> 40 calls)",
    "steady_slope": "~10 MB (1 -> 6 calls: inference buffers)",
    "cpu": "about 6 real-time calls on 2 cores",
}
"""What this benchmark measured with Whisper and Kokoro in the pod (README, "What a call costs")."""


# -- the scripted model --------------------------------------------------------------------------


LONG_ANSWER = (
    "Your latest order left our warehouse in Rotterdam yesterday afternoon and is now travelling by"
    " road with our regional carrier who expects to deliver it to your front door on Thursday between"
    " nine in the morning and noon so please keep your phone nearby for the driver"
)
"""One 240-character sentence: Kokoro's largest run (its piece bound is 250 characters), the
biggest allocation a call makes; `--long-every` sends it in place of the short answer."""
_answers = itertools.count()


def model_rule(body: dict[str, Any], long_every: int = 0) -> Reply:
    """Incident first, a broad valid query second, then the answer: by tool results since the
    caller last spoke, so concurrent calls each get the whole sequence. Every `long_every`-th
    answer is `LONG_ANSWER`."""
    messages = body.get("messages") or []
    tool_results = 0
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        tool_results += message.get("role") == "tool"
    if tool_results == 0:
        return Reply(tool_calls=[ScriptedToolCall("list_recent_orders", INCIDENT_ARGUMENTS)])
    if tool_results == 1:
        return Reply(tool_calls=[ScriptedToolCall("list_recent_orders", BROAD_ARGUMENTS)])
    if long_every and next(_answers) % long_every == 0:
        return Reply(text=LONG_ANSWER + ".", chunk_chars=12)
    return Reply(text=ANSWER, chunk_chars=12)


# -- the memory group ----------------------------------------------------------------------------


class MemoryGroup:
    """A cgroup v1 memory group with a limit; removed on exit (its processes must be gone)."""

    def __init__(self, limit_bytes: int) -> None:
        self.path = CGROUP_V1 / f"switchboard-pod-load-{os.getpid()}"
        self.limit_bytes = limit_bytes

    def __enter__(self) -> MemoryGroup:
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(self.limit_bytes))
        return self

    def __exit__(self, *exc: object) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:  # the child is still exiting
                time.sleep(0.1)
        print(f"warning: could not remove {self.path}", file=sys.stderr)

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def value(self, name: str) -> int:
        return int((self.path / name).read_text().split()[0])

    def stat(self) -> dict[str, int]:
        lines = (self.path / "memory.stat").read_text().split("\n")
        return {key: int(value) for key, value in (line.split() for line in lines if line)}

    def oom_control(self) -> dict[str, int]:
        lines = (self.path / "memory.oom_control").read_text().split("\n")
        return {key: int(value) for key, value in (line.split() for line in lines if line)}

    def working_set(self) -> int:
        return max(0, self.value("memory.usage_in_bytes") - self.stat().get("total_inactive_file", 0))


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().split("\n"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Sampler:
    """The pod's memory every `interval_s` while calls run (working set, or RSS without a group)."""

    group: MemoryGroup | None
    pid: int
    interval_s: float = 0.1
    samples: list[tuple[float, int]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def now(self) -> int:
        return self.group.working_set() if self.group else rss_bytes(self.pid)

    async def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), self.now()))
            await asyncio.sleep(self.interval_s)

    @contextlib.asynccontextmanager
    async def window(self) -> Any:
        """Samples taken inside the block: `async with sampler.window() as taken:`."""
        start = len(self.samples)
        taken: list[tuple[float, int]] = []
        yield taken
        taken.extend(self.samples[start:])

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)


# -- the server ----------------------------------------------------------------------------------


def serve() -> None:
    """The child: the pod, configured by SWITCHBOARD_* variables, on an in-memory fake database
    (seeded here) unless SWITCHBOARD_MONGODB_URI names a real one."""
    from db import in_memory
    from db.seed import seed_demo, seed_large
    from telephony.app import create_app
    from telephony.logs import configure_logging
    from telephony.server import serve as run
    from telephony.settings import Settings

    settings = Settings()  # type: ignore[call-arg]
    configure_logging(settings.log_level)
    database = None
    if settings.mongodb_uri is None:
        database = in_memory(settings.db_settings())
        orders = int(os.environ.get("POD_LOAD_ORDERS", "20000"))
        asyncio.run(seed_large(database, orders))  # first: the fake checks unique indexes by scanning
        asyncio.run(seed_demo(database))
    run(create_app(settings, database=database), settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def speech_process(log: Path) -> Iterator[str]:
    """`switchboard speech` on a free loopback port, outside the memory group; yields its `/v1` URL."""
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_SPEECH_PORT": str(port),
        "SWITCHBOARD_SPEECH_SERVER_API_KEYS": SPEECH_KEY,
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "telephony.cli.main", "speech"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(child, url, log)
        print(f"speech service: pid {child.pid}, {url} (outside the memory group), RSS {mb(rss_bytes(child.pid))}")
        yield url + "/v1"
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def pod_process(
    args: argparse.Namespace, llm_url: str, group: MemoryGroup | None, log: Path, speech_url: str | None = None
) -> Iterator[Pod]:
    port = free_port()
    agents = Path(tempfile.mkdtemp()) / "agents.json"
    agents.write_text(json.dumps([{"id": AGENT, "tools": ["list_recent_orders"], "max_tool_silence_ms": 1500}]))
    env = {
        **os.environ,
        "SWITCHBOARD_PORT": str(port),
        "SWITCHBOARD_HOST": "127.0.0.1",
        "SWITCHBOARD_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SWITCHBOARD_NUMBERS": json.dumps({NUMBER: AGENT}),
        "SWITCHBOARD_AGENTS_FILE": str(agents),
        "SWITCHBOARD_LLM_BASE_URL": llm_url,
        "SWITCHBOARD_LLM_MODEL": "scripted",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        "POD_LOAD_ORDERS": str(args.orders),
    }
    if args.max_calls:
        env["SWITCHBOARD_MAX_CONCURRENT_CALLS"] = str(args.max_calls)
    if speech_url is not None:
        env |= {
            "SWITCHBOARD_STT_BACKEND": "remote",
            "SWITCHBOARD_TTS_BACKEND": "remote",
            "SWITCHBOARD_SPEECH_URL": speech_url,
            "SWITCHBOARD_SPEECH_API_KEY": SPEECH_KEY,
            "SWITCHBOARD_SPEECH_TIMEOUT_SECONDS": "15",  # the shared 2 cores make the service slow under load
            "SWITCHBOARD_STT_MAX_PENDING": "64",
            "SWITCHBOARD_TTS_MAX_PENDING": "64",
        }
    if os.environ.get("MONGODB_URI"):
        env["SWITCHBOARD_MONGODB_URI"] = os.environ["MONGODB_URI"]
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: group.add(os.getpid())) if group else None,
        )
    pod = Pod(f"http://127.0.0.1:{port}", child)
    try:
        pod.wait_ready(timeout_s=300)
        yield pod
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@dataclass
class Pod:
    url: str
    process: subprocess.Popen[bytes]

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the pod exited during start-up with status {self.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError("the pod did not become ready")

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        if self.process.poll() is not None:
            return float("nan")
        text = httpx.get(self.url + "/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def drain_and_stop(self) -> tuple[dict[str, Any], int]:
        """The shutdown sequence: the preStop drain, then SIGTERM; the drain's answer and the exit status."""
        if self.process.poll() is not None:
            return {"drained": "the pod had already exited"}, self.process.returncode
        drained = httpx.post(self.url + "/drain", timeout=120).json()
        self.process.send_signal(signal.SIGTERM)
        return drained, self.process.wait(timeout=60)


# -- calls ---------------------------------------------------------------------------------------


def caller(url: str, utterance: bytes) -> SimulatedCall:
    script: list[Say | Pause] = [Pause(3.5), Say(utterance, "order_status"), Pause(LISTEN_S)]
    return SimulatedCall(url, AUTH_TOKEN, to=NUMBER, from_=BULK_PHONE, script=script, tail_s=0.5, max_seconds=120)


def admitted(report: CallReport) -> bool:
    return report.stream_started_at is not None


def completed(report: CallReport) -> bool:
    """Ran to the caller's hang-up and the agent spoke after the question (fillers, then the answer)."""
    if report.outcome != "caller hung up" or not report.utterances:
        return False
    asked_end = report.utterances[-1][1]
    return sum(end - max(start, asked_end) for start, end in report.agent_spans if end > asked_end) >= 2.0


async def call_many(url: str, utterance: bytes, n: int, stagger_s: float) -> list[CallReport]:
    async def one(i: int) -> CallReport:
        await asyncio.sleep(i * stagger_s)
        call = caller(url, utterance)
        try:
            return await call.run()
        except Exception as exc:  # the pod is gone (OOM-killed): say so in the figures
            call.report.outcome = f"error: {type(exc).__name__}: {exc}"
            return call.report

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def slope(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 2 or len(set(xs)) < 2:
        return float("nan")
    return float(np.polyfit(np.array(xs), np.array(ys), 1)[0])


def mb(n: float) -> str:
    return f"{n / MiB:,.1f} MB"


# -- the run -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, pod: Pod, group: MemoryGroup | None, llm: ScriptedLlmServer) -> int:
    utterance = load_utterance(ROOT / "tests/fixtures/speech/order_status.wav")
    sampler = Sampler(group, pod.process.pid)
    sampler.start()
    limit = group.limit_bytes if group else args.limit_mib * MiB
    print(f"pod: pid {pod.process.pid}, limit {mb(limit)} ({'cgroup v1 ' + group.path.name if group else 'RSS'})")
    print(f"max concurrent calls (pod setting): {int(pod.metric('switchboard_max_concurrent_calls'))}")

    warm = await call_many(pod.url, utterance, 1, 0)
    await asyncio.sleep(2)
    baseline = sampler.now()
    print(f"baseline after a warm-up call ({'completed' if completed(warm[0]) else warm[0].outcome}): {mb(baseline)}")

    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    peaks: list[tuple[int, int]] = []
    for level in levels:
        async with sampler.window() as taken:
            reports = await call_many(pod.url, utterance, level, 0.3)
        peak = max(value for _, value in taken)
        finished = sum(completed(r) for r in reports)
        peaks.append((level, peak))
        print(f"steady {level} calls: peak working set {mb(peak)}, {finished}/{level} completed")
        await asyncio.sleep(2)
    per_call = slope([float(n) for n, _ in peaks], [float(p) for _, p in peaks]) if len(peaks) > 1 else float("nan")
    if peaks:
        print(f"per-call cost (slope of peak vs calls): {mb(per_call)}")
        soft = 0.80 * limit
        if per_call == per_call and per_call > 0:
            fit = int((soft - baseline) // per_call)
            print(f"calls that fit under the soft threshold ({mb(soft)}) above the baseline: {fit}")
            inside = int((limit - baseline) // per_call)
            print(f"calls that fit inside the limit ({mb(limit)}) above the baseline: {inside}")

    flood_ok = True
    if args.flood:
        reasons = ("memory", "capacity", "max_concurrent_calls")
        refused_before = sum(pod.metric("switchboard_calls_refused_total", reason=r) for r in reasons)
        async with sampler.window() as taken:
            flood = await call_many(pod.url, utterance, args.flood, args.stagger)
        in_ = [r for r in flood if admitted(r)]
        busy = [r for r in flood if not admitted(r) and r.outcome.startswith("said: ")]
        other = [r for r in flood if not admitted(r) and r not in busy]
        done = [r for r in in_ if completed(r)]
        shed = pod.metric("switchboard_calls_shed_total")
        by_reason = {r: pod.metric("switchboard_calls_refused_total", reason=r) for r in reasons}
        peak = max(value for _, value in taken)
        print(f"flood: {args.flood} calls, {args.stagger:.2f} s apart")
        print(f"  admitted {len(in_)}, refused politely {len(busy)}, other {len(other)}")
        listed = ", ".join(f"{r} {n:.0f}" for r, n in by_reason.items())
        in_flood = sum(by_reason.values()) - refused_before
        print(f"  refused by reason: {listed} (pod counters, {in_flood:.0f} in this flood)")
        print(f"  completed {len(done)}/{len(in_)} admitted; shed by the guard {shed:.0f}")
        print(f"  peak working set {mb(peak)} = {peak / limit:.1%} of the limit")
        if len(in_) > max(levels, default=0) and levels:
            top_level, top_peak = max(peaks)
            added = (peak - top_peak) / (len(in_) - top_level)
            print(f"  per added call from {top_level} steady to {len(in_)} admitted: {mb(added)}")
        for r in in_:
            if r not in done:
                print(f"  not completed: {r.call_sid} {r.outcome!r}")
        for r in other:
            print(f"  not admitted, not busy: {r.call_sid} {r.outcome!r}")
        flood_ok = len(done) == len(in_) and not other
        verdict = "every admitted call completed, the rest refused politely" if flood_ok else "FAILED"
        print(f"  flood verdict: {verdict}")

    if args.soak_minutes > 0:
        await soak(args, pod, sampler, utterance)

    await sampler.stop()
    drained, status = await asyncio.to_thread(pod.drain_and_stop)
    print(f"drain: {drained}; exit status after SIGTERM: {status}")
    if group:
        oom = group.oom_control()
        print(
            f"cgroup: peak usage {mb(group.value('memory.max_usage_in_bytes'))} (page cache included) of"
            f" {mb(limit)}; failcnt {group.value('memory.failcnt')}; oom_kill {oom.get('oom_kill', 'n/a')};"
            f" under_oom {oom.get('under_oom')}"
        )
        killed = oom.get("oom_kill", 0) > 0
    else:
        killed = status == -signal.SIGKILL
    clean = status in (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM it handled, after shutting down
    peak_all = max(value for _, value in sampler.samples)
    print(f"peak working set over the run: {mb(peak_all)} = {peak_all / limit:.1%} of the limit")
    ending = "clean shutdown on SIGTERM" if clean else "NOT a clean shutdown"
    print(f"verdict: {'OOM-KILLED' if killed else 'never OOM-killed'}; exit status {status} ({ending})")
    if args.remote:
        print(
            f"compare, engines in process (README): idle {IN_PROCESS['idle']}, per added call"
            f" {IN_PROCESS['per_call']}, steady slope {IN_PROCESS['steady_slope']}; {IN_PROCESS['cpu']}"
        )
        print(f"         remote engines (this run): idle {mb(baseline)}, steady slope {mb(per_call)}")
    return 1 if killed or not clean or not flood_ok else 0


async def soak(args: argparse.Namespace, pod: Pod, sampler: Sampler, utterance: bytes) -> None:
    """`soak_calls` calls back to back for `soak_minutes`; the working set every 5 s."""
    end = time.monotonic() + args.soak_minutes * 60
    counts = {"placed": 0, "completed": 0}
    points: list[tuple[float, int]] = []

    async def line() -> None:
        while time.monotonic() < end:
            report = await caller(pod.url, utterance).run()
            counts["placed"] += 1
            counts["completed"] += completed(report)

    async def watch() -> None:
        while time.monotonic() < end:
            points.append((time.monotonic(), sampler.now()))
            await asyncio.sleep(5)

    started = time.monotonic()
    lines = [asyncio.create_task(line()) for _ in range(args.soak_calls)]
    await asyncio.sleep(0.5)
    await asyncio.gather(watch(), *lines)
    minutes = [(t - started) / 60 for t, _ in points]
    values = [v for _, v in points]
    later = [(m, v) for m, v in zip(minutes, values, strict=True) if m >= 1.0]
    growth = slope([m for m, _ in later], [v / MiB for _, v in later])
    first = np.mean([v for m, v in zip(minutes, values, strict=True) if m < 2.0]) / MiB
    last = np.mean([v for m, v in zip(minutes, values, strict=True) if m >= minutes[-1] - 2.0]) / MiB
    print(f"soak: {args.soak_minutes:g} min, {args.soak_calls} calls at a time, {counts['placed']} calls placed,"
          f" {counts['completed']} completed")  # fmt: skip
    print(f"  working set: first 2 min mean {first:,.1f} MB, last 2 min mean {last:,.1f} MB,"
          f" min {min(values) / MiB:,.1f}, max {max(values) / MiB:,.1f}")  # fmt: skip
    print(f"  growth after the first minute: {growth:+.2f} MB/min (least squares over {len(later)} samples)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--limit-mib", type=int, default=1024)
    parser.add_argument("--no-cgroup", action="store_true", help="no memory group (the guard reads the RSS)")
    parser.add_argument("--max-calls", type=int, default=0, help="SWITCHBOARD_MAX_CONCURRENT_CALLS (0: the default)")
    parser.add_argument("--levels", default="1,3,6", help="steady concurrency levels for the per-call cost")
    parser.add_argument("--flood", type=int, default=24, help="calls in the flood (0: none)")
    parser.add_argument("--stagger", type=float, default=0.25, help="seconds between flood calls")
    parser.add_argument("--soak-minutes", type=float, default=0.0)
    parser.add_argument("--soak-calls", type=int, default=3)
    parser.add_argument("--long-every", type=int, default=0, help="every Nth answer is one 240-character sentence")
    parser.add_argument("--orders", type=int, default=20_000, help="orders in the in-memory fake")
    parser.add_argument(
        "--remote", action="store_true", help="speech engines in a `switchboard speech` service outside the group"
    )
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0

    use_group = not args.no_cgroup
    if use_group and (os.geteuid() != 0 or not CGROUP_V1.is_dir()):
        print("skipped: a cgroup v1 memory group needs root and /sys/fs/cgroup/memory (or pass --no-cgroup)")
        return 0
    machine = platform.processor() or platform.machine()
    print(f"pod load: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    log = Path(tempfile.mkdtemp()) / "pod.log"
    rule = functools.partial(model_rule, long_every=args.long_every)
    with ScriptedLlmServer(rule, max_recorded=64) as llm:
        group_cm = MemoryGroup(args.limit_mib * MiB) if use_group else contextlib.nullcontext()
        speech_cm = speech_process(log.with_name("speech.log")) if args.remote else contextlib.nullcontext()
        with speech_cm as speech_url, group_cm as group, pod_process(args, llm.base_url, group, log, speech_url) as pod:
            status = asyncio.run(run(args, pod, group, llm))
    print(f"pod log: {log}")
    return status


if __name__ == "__main__":
    sys.exit(main())
