"""Wait for a server a benchmark started as a child process: shared by the benchmarks that run
`switchboard speech` beside what they measure."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import httpx

START_TIMEOUT_S = 300.0
"""Model loading on 2 cores can take minutes; past this the benchmark gives up."""


def wait_until_healthy(child: subprocess.Popen[bytes], url: str, log: Path, what: str = "the speech service") -> None:
    """Return once `url`/healthz answers 200; raise if `child` exits first or the timeout passes."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if child.poll() is not None:
            raise RuntimeError(f"{what} exited with status {child.returncode} (log: {log})")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.5)
