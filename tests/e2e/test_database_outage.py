"""Acceptance 1(b): the database stops for 30 s while 5 calls run and 5 new ones arrive.

Whole calls through the Twilio simulator to a pod (real server on loopback, engines FAKE) whose number
routes to a stored agent. The database is cut at its client (a FAKE outage: every operation raises
PyMongo's `ServerSelectionTimeoutError`, after a wait as a dead server makes the driver wait) — with
the in-memory fake, or a real server when MONGODB_URI is set. All 10 calls are answered (greeting
heard, no webhook answers 500), `/readyz` stays ready, and once the database is back every call's
record is complete (start, the greeting in its transcript, its end): written from the pod's queue.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from agents.engines.local.silero import VadConfig
from agents.testing.fake_engines import FakeEngines
from db import AgentConfigs, CallRecords, PhoneNumbers
from telephony.app import create_app
from telephony.server import BackgroundServer
from telephony.simulator import CallReport, Pause, SimulatedCall
from telephony.voice import VoiceStack
from tests.support.db import open_test_database
from tests.support.db_outage import cuttable
from tests.support.settings import AUTH_TOKEN, make_settings
from tests.support.waiting import until

pytestmark = pytest.mark.mongodb

SALES_NUMBER = "+15550123"
GREETING = "Hello from sales."
OUTAGE_S = 30.0
DEAD_SERVER_WAIT_S = 3.0
"""How long each operation on the cut client hangs before failing (the driver's server-selection wait)."""
RUNNING_CALL_S = 8.0
"""The 5 calls in progress when the database stops: they end during the outage."""
NEW_CALL_S = 3.0
NEW_CALLS_EVERY_S = 2.0
RECORDS_WITHIN_S = 30.0
"""Bound on the wait for the pod's queued record writes once the database is back (not a timing assert)."""


def call(url: str, seconds: float) -> SimulatedCall:
    return SimulatedCall(url, AUTH_TOKEN, to=SALES_NUMBER, script=[Pause(seconds)], lead_in_s=0.2, tail_s=0.2)


def answered(report: CallReport) -> bool:
    """The caller heard the agent (its greeting played and was marked) and no webhook failed."""
    return report.webhook_status == 200 and report.agent_audio_seconds > 0 and bool(report.marks_echoed)


async def complete(records: CallRecords, call_sid: str) -> bool:
    record = await records.get(call_sid)
    if record is None or record.get("outcome") is None or record.get("ended_at") is None:
        return False
    return any(GREETING in str(line.get("text", "")) for line in record.get("transcript", []))


async def test_calls_are_answered_through_a_30_s_database_outage_and_their_records_complete() -> None:
    async with open_test_database() as database:
        await AgentConfigs(database).create("sales", {"greeting": GREETING})
        await PhoneNumbers(database).assign(SALES_NUMBER, "sales")
        cut_able, client = cuttable(database, delay_s=DEAD_SERVER_WAIT_S)
        settings = make_settings(numbers={}, serve_stored_agents=True)
        fakes = FakeEngines()
        stack = VoiceStack(fakes.engines, VadConfig(), fakes.listener_config, fakes.tts)
        app = create_app(settings, database=cut_able, stack=stack)
        async with BackgroundServer(app, settings) as url, httpx.AsyncClient(base_url=url) as http:
            edge = app.state.pod
            running = [asyncio.create_task(call(url, RUNNING_CALL_S).run()) for _ in range(5)]
            await until(lambda: edge.calls.active == 5, timeout=20, what="5 calls in progress")

            client.cut = True  # the database stops
            cut_at = time.monotonic()
            arriving = []
            for _ in range(5):
                await asyncio.sleep(NEW_CALLS_EVERY_S)
                arriving.append(asyncio.create_task(call(url, NEW_CALL_S).run()))
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.json()  # an outage takes no pod out
            reports = await asyncio.gather(*running, *arriving)
            assert time.monotonic() - cut_at < OUTAGE_S  # every call ended inside the outage
            await asyncio.sleep(OUTAGE_S - (time.monotonic() - cut_at))
            refused = client.refused
            client.cut = False  # the database is back

            assert [r.webhook_status for r in reports] == [200] * 10, [r.outcome for r in reports]
            assert all(answered(r) for r in reports), [(r.call_sid, r.outcome) for r in reports if not answered(r)]
            assert refused > 0  # the pod did try the database during the outage
            for group, group_reports in (("running", reports[:5]), ("arriving", reports[5:])):
                firsts = [r.agent_spans[0][0] for r in group_reports]  # call placed -> greeting heard, s
                print(f"greeting heard after {min(firsts):.2f}-{max(firsts):.2f} s ({group}, figures under load)")
            assert edge.metrics.registry.get_sample_value("switchboard_db_stale_reads_total", {"what": "number"})

            records = CallRecords(database)  # read past the cut client
            sids = [r.call_sid for r in reports]
            missing = sids
            deadline = time.monotonic() + RECORDS_WITHIN_S
            while missing and time.monotonic() < deadline:  # the pod's writer retries what it queued
                missing = [sid for sid in missing if not await complete(records, sid)]
                await asyncio.sleep(0.25)
            assert missing == [], f"{len(missing)} records incomplete after the database came back"
