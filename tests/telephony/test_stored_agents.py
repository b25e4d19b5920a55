"""Stored agents: built from the database on first use, rebuilt on a new version, evicted least
recently used, displaced file agents given back, and never a failed call for a bad config."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agents.config import AgentConfig
from agents.echo import EchoAgent
from agents.port import Agent, AgentCatalog
from db import AgentConfigs, Database, ToolDeclarations
from telephony.outage import DatabaseOutage, DatabaseUnavailable
from telephony.stored_agents import StoredAgents
from tests.support.clock import FakeClock
from tests.support.db import open_test_database
from tests.support.db_outage import cuttable

pytestmark = pytest.mark.mongodb


class Built(EchoAgent):
    """An agent that remembers what it was built from."""

    def __init__(self, config: AgentConfig, version: int) -> None:
        super().__init__()
        self.config = config
        self.version = version


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as database:
        yield database


class Pod:
    def __init__(self, database: Database, max_agents: int = 32) -> None:
        self.file_agent = EchoAgent()
        self.catalog = AgentCatalog({"support": self.file_agent})
        self.builds: list[tuple[str, int]] = []
        self.stored = StoredAgents(database, self.catalog, self.build, max_agents=max_agents)
        self.configs = AgentConfigs(database)

    async def build(self, config: AgentConfig, version: int) -> Agent:
        self.builds.append((config.id, version))
        return Built(config, version)


async def test_an_agent_is_built_once_per_stored_version(database: Database) -> None:
    pod = Pod(database)
    assert await pod.stored.resolve("sales") is None  # nothing stored, nothing in the file
    await pod.configs.create("sales", {"greeting": "Version one."})
    first = await pod.stored.resolve("sales")
    assert isinstance(first, Built) and first.version == 1 and first.config.greeting == "Version one."
    assert await pod.stored.resolve("sales") is first  # no rebuild for the same version
    assert pod.catalog.get("sales") is first  # the media stream finds it by id

    await pod.configs.update("sales", {"greeting": "Version two."})
    second = await pod.stored.resolve("sales")
    assert isinstance(second, Built) and second.version == 2 and second.config.greeting == "Version two."
    assert pod.builds == [("sales", 1), ("sales", 2)]


async def test_a_stored_agent_displaces_the_file_one_until_it_is_deleted(database: Database) -> None:
    pod = Pod(database)
    assert await pod.stored.resolve("support") is pod.file_agent
    await pod.configs.create("support", {"greeting": "From the database."})
    stored = await pod.stored.resolve("support")
    assert isinstance(stored, Built)
    await pod.configs.delete("support")
    assert await pod.stored.resolve("support") is pod.file_agent


async def test_built_agents_are_bounded_least_recently_used_first(database: Database) -> None:
    pod = Pod(database, max_agents=2)
    for agent_id in ("a1", "a2", "a3"):
        await pod.configs.create(agent_id, {})
    await pod.stored.resolve("a1")
    await pod.stored.resolve("a2")
    await pod.stored.resolve("a1")  # a2 is now the least recently used
    await pod.stored.resolve("a3")
    assert set(pod.catalog.agents) == {"support", "a1", "a3"}
    await pod.stored.resolve("a2")  # built again on demand
    assert pod.builds.count(("a2", 1)) == 2


async def test_an_agent_is_rebuilt_when_a_tool_it_follows_changes_not_one_it_pins(database: Database) -> None:
    pod = Pod(database)
    tools = ToolDeclarations(database)
    await tools.create("lookup", {"description": "v1"})
    await tools.create("pinned", {"description": "v1"})
    await pod.configs.create("clinic", {"tools": ["lookup", "pinned@1", "find_customer"]})
    first = await pod.stored.resolve("clinic")
    await tools.update("pinned", {"description": "v2"})
    assert await pod.stored.resolve("clinic") is first  # pinned: the new version changes nothing
    await tools.update("lookup", {"description": "v2"})
    second = await pod.stored.resolve("clinic")
    assert second is not first and await pod.stored.resolve("clinic") is second
    assert pod.builds == [("clinic", 1), ("clinic", 1)]  # same agent version, new tool version


async def test_an_agent_whose_tools_cannot_be_built_is_not_served(database: Database) -> None:
    async def refuse(config: AgentConfig, version: int) -> Agent:
        raise ValueError("tool 'gone': no tool 'gone'")

    pod = Pod(database)
    pod.stored = StoredAgents(database, pod.catalog, refuse)
    await pod.configs.create("clinic", {"tools": ["gone"]})
    assert await pod.stored.resolve("clinic") is None  # logged; the call is answered as for no agent


async def test_an_invalid_stored_config_is_not_served(database: Database) -> None:
    pod = Pod(database)
    await pod.configs.create("broken", {"silence_timeout_seconds": 0.01})  # below the model's bound
    assert await pod.stored.resolve("broken") is None
    assert pod.builds == []


async def test_a_malformed_id_is_looked_up_in_the_catalog_only(database: Database) -> None:
    pod = Pod(database)
    assert await pod.stored.resolve("Not An Id!") is None


async def test_while_the_database_is_down_the_last_built_version_answers(database: Database) -> None:
    await AgentConfigs(database).create("sales", {"greeting": "Version one."})
    cut_able, client = cuttable(database)
    stale: list[str] = []
    catalog = AgentCatalog({"support": EchoAgent()})
    builds: list[int] = []

    async def build(config: AgentConfig, version: int) -> Agent:
        builds.append(version)
        return Built(config, version)

    stored = StoredAgents(cut_able, catalog, build, outage=DatabaseOutage(retry_after_s=0, on_stale=stale.append))
    built = await stored.resolve("sales")
    client.cut = True
    assert await stored.resolve("sales") is built  # stale-while-error, counted
    assert await stored.resolve("support") is catalog.get("support")  # the catalog's own, as before
    assert stale == ["agent", "agent"]
    with pytest.raises(DatabaseUnavailable):
        await stored.resolve("billing")  # never built here: the webhook answers it as an outage
    assert builds == [1]


async def test_a_version_read_moments_ago_is_taken_without_reading_again(database: Database) -> None:
    await AgentConfigs(database).create("sales", {"greeting": "Version one."})
    cut_able, client = cuttable(database)
    clock = FakeClock()
    stored = StoredAgents(cut_able, AgentCatalog({}), build_plain, clock=clock)
    built = await stored.resolve("sales")  # the webhook's read
    client.cut = True
    assert await stored.resolve("sales", fresh_s=15) is built  # the media stream: no database round trip
    assert client.refused == 0
    clock.now += 16
    assert await stored.resolve("sales", fresh_s=15) is built  # read again (refused), the built one served
    assert client.refused == 1


async def build_plain(config: AgentConfig, version: int) -> Agent:
    return Built(config, version)
