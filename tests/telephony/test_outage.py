"""Calls keep being answered while MongoDB is out of reach (stale-while-error).

The pod is the real app under uvicorn with the test's database behind a client the test cuts (a FAKE
outage: every operation raises PyMongo's `ServerSelectionTimeoutError`, as a dead server does). The
webhook answers numbers it has routed before from its cache, a number it never saw with the fallback
agent or a polite message (never a 500), and `/readyz` does not flip on a failed ping.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import httpx
import pytest

from db import Database, DatabaseError, PhoneNumbers
from telephony.app import create_app
from telephony.outage import DatabaseOutage, DatabaseUnavailable
from telephony.pod import Pod
from telephony.pod_health.dependency import StillDown, TolerantCheck
from telephony.routing import CachedNumberDirectory, InMemoryNumberDirectory, LayeredNumberDirectory
from telephony.server import BackgroundServer
from tests.support.clock import FakeClock
from tests.support.db import open_test_database
from tests.support.db_outage import CuttableClient, cuttable
from tests.support.settings import make_settings
from tests.support.twilio_requests import post_signed, voice_params
from tests.support.waiting import until

pytestmark = pytest.mark.mongodb

ROUTED = "+15550123"
"""A number the database routes to the built-in echo agent."""
NEVER_CALLED = "+15550124"
"""Routed in the database too, but never called before the outage."""


@dataclass
class OutagePod:
    url: str
    edge: Pod
    client: CuttableClient

    def metric(self, name: str, **labels: str) -> float:
        return self.edge.metrics.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def outage_pod(**settings_overrides: object) -> AsyncIterator[OutagePod]:
    async with open_test_database() as database:
        await PhoneNumbers(database).assign(ROUTED, "echo")
        await PhoneNumbers(database).assign(NEVER_CALLED, "echo")
        cut_able, client = cuttable(database)
        with serve(cut_able, **settings_overrides) as (url, edge):
            yield OutagePod(url, edge, client)


@contextmanager
def serve(database: Database, **settings_overrides: object) -> Iterator[tuple[str, Pod]]:
    settings = make_settings(numbers={}, **settings_overrides)
    app = create_app(settings, database=database)
    with BackgroundServer(app, settings) as url:
        yield url, app.state.pod


async def answer(pod: OutagePod, to: str) -> httpx.Response:
    return await asyncio.to_thread(post_signed, pod.url, "/twilio/voice", voice_params(to=to))


def verbs(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, f"HTTP {response.status_code}: {response.text[:200]}"
    return [verb.tag for verb in ET.fromstring(response.text)]


async def test_a_number_routed_before_the_outage_is_still_answered() -> None:
    async with outage_pod() as pod:
        assert verbs(await answer(pod, ROUTED)) == ["Connect"]  # routed once: the pod remembers
        pod.client.cut = True
        for _ in range(3):
            assert verbs(await answer(pod, ROUTED)) == ["Connect"]
        assert pod.client.refused >= 1
        assert pod.metric("switchboard_db_stale_reads_total", what="number") == 3


async def test_a_number_never_seen_gets_a_polite_goodbye_not_a_500() -> None:
    async with outage_pod() as pod:
        pod.client.cut = True
        response = await answer(pod, NEVER_CALLED)
        assert verbs(response) == ["Say", "Hangup"]
        assert pod.edge.settings.outage_message in response.text
        assert pod.metric("switchboard_calls_unrouted_in_outage_total", answer="message") == 1


async def test_a_number_never_seen_goes_to_the_fallback_agent_when_one_is_set() -> None:
    async with outage_pod(outage_agent="echo") as pod:
        pod.client.cut = True
        assert verbs(await answer(pod, NEVER_CALLED)) == ["Connect"]
        assert pod.metric("switchboard_calls_unrouted_in_outage_total", answer="fallback_agent") == 1


async def test_after_the_outage_the_database_answers_again() -> None:
    async with outage_pod() as pod:
        pod.client.cut = True
        assert verbs(await answer(pod, NEVER_CALLED)) == ["Say", "Hangup"]
        pod.client.cut = False
        await asyncio.sleep(pod.edge.settings.db_outage_retry_seconds + 0.1)  # the breaker lets a trial read through
        assert verbs(await answer(pod, NEVER_CALLED)) == ["Say", "Hangup"]  # no call waits on it: the trial runs beside
        await until(lambda: not pod.edge.directory.outage.down, what="the trial read to find the database back")
        assert verbs(await answer(pod, NEVER_CALLED)) == ["Connect"]


async def test_readiness_does_not_flip_on_a_failed_ping() -> None:
    async with outage_pod() as pod, httpx.AsyncClient(base_url=pod.url) as http:
        pod.client.cut = True
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["dependencies"]["database"]["up"] is False  # reported, not gating


async def test_readiness_turns_unready_only_after_the_database_is_down_that_long() -> None:
    async with (
        outage_pod(readiness_database_unready_after_seconds=0.5) as pod,
        httpx.AsyncClient(base_url=pod.url) as http,
    ):
        pod.client.cut = True
        assert (await http.get("/readyz")).status_code == 200  # one failed ping: a blip
        await asyncio.sleep(0.6)
        down = await http.get("/readyz")
        assert down.status_code == 503 and down.json()["reasons"] == ["database"]
        pod.client.cut = False
        assert (await http.get("/readyz")).status_code == 200  # back at once


# -- the parts, on their own ---------------------------------------------------------------------


class Routes:
    """The database's routes as a FAKE number directory whose database the test stops."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = routes
        self.down = False
        self.hang = False
        self.reads = 0

    async def agent_for(self, number: str) -> str | None:
        self.reads += 1
        if self.hang:
            await asyncio.sleep(60)
        if self.down:
            raise DatabaseError("ServerSelectionTimeoutError: FAKE outage")
        return self.routes.get(number)


async def test_a_hung_database_read_is_cut_off_and_a_stale_route_answers(caplog: pytest.LogCaptureFixture) -> None:
    stale: list[str] = []
    outage = DatabaseOutage(timeout_s=0.05, retry_after_s=60, on_stale=stale.append)
    routes = Routes({"+15550001": "sales"})
    numbers = CachedNumberDirectory(routes, outage)
    assert await numbers.agent_for("+15550001") == "sales"
    routes.hang = True
    async with asyncio.timeout(5):  # a bound for a broken test, not a timing assert
        assert await numbers.agent_for("+15550001") == "sales"
    assert outage.down and stale == ["number"]
    reads = routes.reads
    assert await numbers.agent_for("+15550001") == "sales"  # the breaker: not asked again yet
    assert routes.reads == reads and stale == ["number", "number"]
    with pytest.raises(DatabaseUnavailable):
        await numbers.agent_for("+15550002")
    warned = [r for r in caplog.records if r.name == "switchboard.outage" and "last good copy" in r.getMessage()]
    assert len(warned) == 1  # once per outage, not per call


async def test_the_breaker_lets_a_read_through_after_its_pause_and_recovery_clears_it() -> None:
    clock = FakeClock()
    outage = DatabaseOutage(timeout_s=1, retry_after_s=2, clock=clock)
    routes = Routes({"+15550001": "sales"})
    numbers = CachedNumberDirectory(routes, outage)
    routes.down = True
    with pytest.raises(DatabaseUnavailable):
        await numbers.agent_for("+15550001")
    routes.down = False
    reads = routes.reads
    with pytest.raises(DatabaseUnavailable):
        await numbers.agent_for("+15550001")  # within the pause: not tried
    assert routes.reads == reads
    clock.now += 2.1
    with pytest.raises(DatabaseUnavailable):
        await numbers.agent_for("+15550001")  # no call waits: a trial read starts beside it
    await until(lambda: not outage.down, what="the trial read")
    assert routes.reads == reads + 1
    assert await numbers.agent_for("+15550001") == "sales"


async def test_the_route_cache_is_bounded() -> None:
    routes = Routes({f"+1555000{i}": "sales" for i in range(5)})
    numbers = CachedNumberDirectory(routes, DatabaseOutage(retry_after_s=0), max_entries=2)
    for i in range(5):
        await numbers.agent_for(f"+1555000{i}")
    routes.down = True
    assert await numbers.agent_for("+15550004") == "sales"  # the most recent are kept
    with pytest.raises(DatabaseUnavailable):
        await numbers.agent_for("+15550000")  # the oldest were dropped
    with pytest.raises(ValueError):
        CachedNumberDirectory(routes, DatabaseOutage(), max_entries=0)


async def test_a_settings_route_answers_when_the_database_cannot() -> None:
    routes = Routes({})
    routes.down = True
    numbers = LayeredNumberDirectory(
        CachedNumberDirectory(routes, DatabaseOutage()), InMemoryNumberDirectory({"+15550100": "echo"})
    )
    assert await numbers.agent_for("+15550100") == "echo"
    with pytest.raises(DatabaseUnavailable):
        await numbers.agent_for("+15550101")


async def test_readiness_check_tolerates_then_gates_then_recovers() -> None:
    clock = FakeClock()
    up = True

    async def ping() -> None:
        if not up:
            raise DatabaseError("ServerSelectionTimeoutError: FAKE outage")

    check = TolerantCheck(ping, timeout_s=1, unready_after_s=30, clock=clock)
    await check()
    up = False
    await check()  # down, within the tolerance
    assert check.state()["up"] is False
    clock.now += 30
    with pytest.raises(StillDown):
        await check()
    up = True
    await check()
    assert check.state() == {"up": True}
    never = TolerantCheck(ping, timeout_s=1, unready_after_s=None, clock=clock)
    up = False
    clock.now += 3600
    await never()
    clock.now += 3600
    await never()  # the default for the database: reported, never gating
    assert never.state()["down_s"] == 3600
