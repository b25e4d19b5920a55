"""Which agent answers: one directory for the voice webhook (by number) and the media stream (by
the call token's agent id), stored agents included; and across two pods behind one load balancer,
a stream that lands on the pod that did not answer the webhook is still served."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import websockets

from agents.config import AgentConfig
from agents.echo import EchoAgent
from agents.engines.local.silero import VadConfig
from agents.port import Agent, AgentCatalog
from agents.testing.fake_engines import FakeEngines
from db import AgentConfigs, Database, PhoneNumbers
from telephony.app import create_app
from telephony.pod import Pod
from telephony.routing import AgentDirectory, InMemoryNumberDirectory, LayeredNumberDirectory
from telephony.server import BackgroundServer
from telephony.stored_agents import StoredAgents
from telephony.twilio.protocol import OutboundMark, OutboundMedia, parse_outbound
from telephony.twilio.signature import websocket_url
from telephony.voice import VoiceStack
from tests.support.db import open_test_database
from tests.support.settings import make_settings
from tests.support.twilio_requests import post_signed, voice_params

pytestmark = pytest.mark.mongodb

SALES_NUMBER = "+15550123"
GREETING = "Hello from the stored sales agent."


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as database:
        yield database


class Built(EchoAgent):
    def __init__(self, config: AgentConfig, version: int) -> None:
        super().__init__()
        self.config = config
        self.version = version


async def build(config: AgentConfig, version: int) -> Agent:
    return Built(config, version)


def directory(database: Database) -> AgentDirectory:
    catalog = AgentCatalog({"echo": EchoAgent()})
    numbers = LayeredNumberDirectory(PhoneNumbers(database), InMemoryNumberDirectory({"+15550100": "echo"}))
    return AgentDirectory(numbers, catalog, StoredAgents(database, catalog, build))


async def test_a_number_and_an_agent_id_resolve_to_the_same_agent(database: Database) -> None:
    agents = directory(database)
    await AgentConfigs(database).create("sales", {"greeting": "Hi."})
    await PhoneNumbers(database).assign(SALES_NUMBER, "sales")

    by_number = await agents.resolve(number=SALES_NUMBER)
    assert by_number is not None and by_number.agent_id == "sales"
    assert isinstance(by_number.agent, Built) and by_number.agent.version == 1
    assert await agents.resolve(agent_id="sales") == by_number  # the stream finds what the webhook found
    settings_route = await agents.resolve(number="+15550100")
    assert settings_route is not None and settings_route.agent is agents.catalog.get("echo")


async def test_nothing_resolves_for_an_unknown_number_or_agent(database: Database) -> None:
    agents = directory(database)
    await PhoneNumbers(database).assign(SALES_NUMBER, "nobody")  # routed, but no such agent
    assert await agents.resolve(number="+15550999") is None
    assert await agents.resolve(number=SALES_NUMBER) is None
    assert await agents.resolve(agent_id="nobody") is None
    with pytest.raises(TypeError):
        await agents.resolve()


async def test_without_stored_agents_the_catalog_answers() -> None:
    catalog = AgentCatalog({"echo": EchoAgent()})
    agents = AgentDirectory(InMemoryNumberDirectory({"+15550100": "echo"}), catalog)
    resolved = await agents.resolve(agent_id="echo")
    assert resolved is not None and resolved.agent is catalog.get("echo")
    assert await agents.resolve(agent_id="sales") is None


# -- two pods, one database -------------------------------------------------------------------


def fake_stack(fakes: FakeEngines) -> VoiceStack:
    """The pod's engines as FAKES (no model files): agents are built on them as on the real ones."""
    return VoiceStack(fakes.engines, VadConfig(), fakes.listener_config, fakes.tts)


async def greeting_heard(stream_url: str, token: str, call_sid: str, account_sid: str) -> tuple[int, list[str]]:
    """Play Twilio's side of a media stream until the agent's greeting has been sent in full: the
    audio frames received and the marks that followed them."""
    frames, marks = 0, []
    async with websockets.connect(stream_url, open_timeout=10) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": account_sid,
            "streamSid": "MZ0123456789abcdef0123456789abcdef",
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"token": token},
        }
        await ws.send(
            json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": start["streamSid"]})
        )
        async with asyncio.timeout(20):
            while not marks:
                message = parse_outbound(await ws.recv())
                if isinstance(message, OutboundMedia):
                    frames += 1
                elif isinstance(message, OutboundMark):
                    marks.append(message.mark.name)
        await ws.send(
            json.dumps(
                {
                    "event": "stop",
                    "sequenceNumber": "2",
                    "streamSid": start["streamSid"],
                    "stop": {"accountSid": account_sid, "callSid": call_sid},
                }
            )
        )
    return frames, marks


async def test_a_stream_landing_on_another_pod_is_served_by_a_stored_agent_it_never_built(
    database: Database,
) -> None:
    """Behind a load balancer Twilio's WebSocket may reach another pod than its webhook did. Pod A
    answers the webhook for a number routed to a stored agent; the stream goes to pod B, which has
    never built that agent: B builds it from the database and the caller hears its greeting."""
    await AgentConfigs(database).create("sales", {"greeting": GREETING})
    await PhoneNumbers(database).assign(SALES_NUMBER, "sales")
    settings = make_settings(serve_stored_agents=True)
    fakes_a, fakes_b = FakeEngines(), FakeEngines()
    app_a = create_app(settings, database=database, stack=fake_stack(fakes_a))
    app_b = create_app(settings, database=database, stack=fake_stack(fakes_b))
    async with BackgroundServer(app_a, settings) as url_a, BackgroundServer(app_b, settings) as url_b:
        pod_b: Pod = app_b.state.pod
        assert pod_b.agents.get("sales") is None  # B has not built it

        params = voice_params(to=SALES_NUMBER)
        answer = await asyncio.to_thread(post_signed, url_a, "/twilio/voice", params)
        assert answer.status_code == 200, answer.text
        stream = ET.fromstring(answer.text).find("Connect/Stream")
        assert stream is not None, answer.text
        token = stream.find("Parameter[@name='token']")
        assert token is not None
        assert GREETING in fakes_a.tts.texts and GREETING not in fakes_b.tts.texts  # A built it for the webhook

        to_b = websocket_url(url_b, urlsplit(stream.get("url", "")).path)  # the balancer picks B
        frames, marks = await greeting_heard(to_b, token.get("value", ""), params["CallSid"], params["AccountSid"])

        assert frames > 0 and len(marks) == 1  # the call is answered: the greeting, then its mark
        assert GREETING in fakes_b.tts.texts  # B built the stored agent and its greeting played from B
        built = pod_b.agents.get("sales")
        assert built is not None and getattr(built, "version", None) == 1
