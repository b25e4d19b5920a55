"""A simulated caller who waits for the agent instead of hanging up on a clock.

A real-time test scripts the caller (say this, pause that long), but how long the agent takes to
answer depends on the machine: on a loaded one Whisper and Kokoro take seconds more, and a caller
who hangs up after a fixed pause hears nothing. So a test ends its script with a generous pause and
the caller hangs up once it has heard what the test waits for: the assertions stay on what was heard
and in which order, never on how fast it came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from telephony.simulator import CallReport, SimulatedCall, Step
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN

LAST_PAUSE_S = 45.0
"""The script's final pause: an upper bound only, the caller hangs up as soon as it has heard enough."""


async def hang_up_once(call: SimulatedCall, done: Callable[[], bool], grace_s: float = 0.5) -> None:
    """Once the caller has said its whole script and `done()` holds, wait `grace_s` and hang up.
    Returns at once if the call ends first (the test's assertions then say what was missing)."""
    report = call.report
    while not (len(report.utterances) == len(call.track.utterances) and done()):
        if report.outcome:
            return
        await asyncio.sleep(0.02)
    await asyncio.sleep(grace_s)
    call.max_ticks = 0  # the simulator stops at its next tick: the caller sends `stop` and hangs up


async def run_until(call: SimulatedCall, done: Callable[[], bool]) -> CallReport:
    """Run `call`, hanging up once its script is said and `done()` holds (see `hang_up_once`)."""
    watcher = asyncio.create_task(hang_up_once(call, done))
    try:
        return await call.run()
    finally:
        watcher.cancel()


async def run_until_heard(call: SimulatedCall, parts: int) -> CallReport:
    """Run `call`, hanging up once the caller has heard `parts` spoken parts to their end: the agent
    marks each greeting, phrase and sentence, and the simulator echoes a mark when the audio
    before it has played."""
    return await run_until(call, lambda: len(call.report.marks_echoed) >= parts)


def place_until_heard(url: str, script: list[Step], parts: int) -> CallReport:
    """A call to the test agent's number, hung up once `parts` spoken parts were heard."""
    call = SimulatedCall(url, AUTH_TOKEN, to=AGENT_NUMBER, script=script, tail_s=0.5)
    return asyncio.run(run_until_heard(call, parts))


def answered_then_quiet(call: SimulatedCall, event: Callable[[], bool], quiet_s: float = 2.0) -> Callable[[], bool]:
    """A `done` for `run_until`: true once `event()` has held (e.g. the model's last request came
    back), the caller has heard a part end since, and the agent has then played nothing for
    `quiet_s`. Fillers fill every quiet second until the answer starts, so that quiet comes only
    after the answer."""
    marks_then: list[int] = []
    quiet_since: list[float] = []

    def done() -> bool:
        report = call.report
        if not marks_then:
            if not event():
                return False
            marks_then.append(len(report.marks_echoed))
        agent = [e for e in report.events if e.who == "agent"]
        speaking = bool(agent) and agent[-1].what == "starts speaking"
        if speaking or len(report.marks_echoed) <= marks_then[0]:
            quiet_since.clear()
            return False
        quiet_since[:] = quiet_since or [time.monotonic()]
        return time.monotonic() - quiet_since[0] >= quiet_s

    return done
