"""The session and the caller's identity, on the fake engines: caller ID at call start, a keypad
PIN that goes to the verifier (never to the model, the transcript or a log), bounded attempts, and
the verified key on the call record and in every tool call."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from agents.config import AgentConfig
from agents.conversation.phrases import PhraseCache
from agents.conversation.record import CallRecord
from agents.conversation.session import CallSession
from agents.identity import IdentityPolicy
from agents.port import DtmfIn
from agents.testing.fake_engines import FakeEngines, read_text
from agents.testing.scripted_llm import Reply, ScriptedToolCall
from agents.voice_agent import VoiceAgent
from db import BusinessData, Database, SafeQuery
from db.seed import seed_demo
from tests.support.clock import FakeClock
from tests.support.db import make_database
from tests.support.memory_port import MemoryPort
from tests.support.waiting import until
from tools import ToolExecutor, builtin_tools

pytestmark = pytest.mark.mongodb

ADA = "+15550101"
LIST_ORDERS = Reply(tool_calls=[ScriptedToolCall("list_recent_orders", "{}")])


@dataclass
class Call:
    port: MemoryPort
    fakes: FakeEngines
    session: CallSession
    task: asyncio.Task[None]

    def press(self, keys: str) -> None:
        for key in keys:
            self.port.push(DtmfIn(key))

    def heard(self) -> list[str]:
        return read_text(b"".join(self.port.played))

    def model_saw(self) -> str:
        return json.dumps([request.messages for request in self.fakes.chat.requests])

    async def hang_up(self) -> CallRecord:
        self.port.hang_up_caller()
        await asyncio.wait_for(asyncio.shield(self.task), 5.0)
        return self.session.record


Start = Callable[..., Awaitable[Call]]


@pytest.fixture
async def start(make_database: Callable[..., Awaitable[Database]]) -> AsyncIterator[Start]:
    database = await make_database()
    await seed_demo(database)
    calls: list[Call] = []

    async def start(number: str = ADA, *, replies: list[Reply], **identity: Any) -> Call:
        config = AgentConfig(id="voice", greeting="Hello.", identity=IdentityPolicy(**identity))
        fakes = FakeEngines()
        fakes.chat.push(*replies)
        phrases = PhraseCache(fakes.tts)
        await VoiceAgent(config, fakes.engines, phrases, fakes.listener).prepare()
        port = MemoryPort(from_number=number)
        tools = ToolExecutor(builtin_tools(BusinessData(SafeQuery(database)), ["list_recent_orders"]))
        session = CallSession(
            port,
            config,
            listener=fakes.listener(),
            chat=fakes.chat,
            speaker=fakes.speaker(port, phrases, FakeClock()),
            tools=tools,
            caller_records=config.identity.records(SafeQuery(database)),
        )
        call = Call(port, fakes, session, asyncio.create_task(session.run()))
        calls.append(call)
        await until(lambda: call.heard() == ["Hello."], what="the greeting")
        return call

    yield start
    for call in calls:
        if not call.task.done():
            call.task.cancel()
        await asyncio.gather(call.task, return_exceptions=True)


def tool_results(call: Call) -> list[dict[str, Any]]:
    last = call.fakes.chat.requests[-1].messages
    return [json.loads(m["content"]) for m in last if m["role"] == "tool"]


async def test_the_calling_numbers_customer_is_verified_at_call_start(start: Start) -> None:
    call = await start(replies=[LIST_ORDERS, Reply(text="You have three orders.")])
    call.press("1#")  # any caller turn
    await until(lambda: len(call.fakes.chat.requests) == 2, what="the tool round")
    [orders] = tool_results(call)
    assert [order["order_id"] for order in orders["orders"]] == ["O-50003", "O-50001", "O-50002"]
    assert (await call.hang_up()).verified_customer == "C-1001"


async def test_an_unknown_number_gets_no_ones_data(start: Start) -> None:
    call = await start("+15005550006", replies=[LIST_ORDERS, Reply(text="I can't find your account.")])
    call.press("1#")
    await until(lambda: len(call.fakes.chat.requests) == 2, what="the tool round")
    assert tool_results(call) == [
        {"error": "this phone number is not on file, so no account can be used on this call; offer a transfer"}
    ]
    assert (await call.hang_up()).verified_customer is None


async def test_a_pin_goes_to_the_verifier_and_the_model_hears_only_the_verdict(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    call = await start(
        verify="dtmf_pin",
        replies=[Reply(text="That PIN did not match."), LIST_ORDERS, Reply(text="Your orders are on the way.")],
    )
    call.press("2468#")  # Grace's PIN, keyed on Ada's line
    await until(lambda: len(call.fakes.chat.requests) == 1, what="the first verdict")
    assert call.fakes.chat.requests[0].messages[-1] == {
        "role": "user",
        "content": "(The caller keyed a PIN that does not match; 2 attempts left.)",
    }
    call.press("1234#")
    await until(lambda: len(call.fakes.chat.requests) == 3, what="the tool round")
    assert call.fakes.chat.requests[1].messages[-1]["content"] == "(The caller keyed their PIN: verified.)"
    assert len(tool_results(call)[0]["orders"]) == 3
    record = await call.hang_up()
    assert record.verified_customer == "C-1001"
    kept = call.model_saw() + json.dumps(record.as_dict()) + caplog.text
    assert "1234" not in kept and "2468" not in kept


async def test_past_the_attempts_the_agent_says_it_cannot_verify_and_tools_stay_refused(start: Start) -> None:
    call = await start(
        verify="dtmf_pin",
        max_attempts=2,
        replies=[Reply(text="Please try again."), LIST_ORDERS, Reply(text="I can transfer you.")],
    )
    call.press("0000#")
    await until(lambda: len(call.fakes.chat.requests) == 1, what="the first verdict")
    call.press("1111#")
    cannot = IdentityPolicy().cannot_verify
    await until(lambda: " ".join(call.heard()).endswith(cannot.split(". ")[-1]), what="the cannot-verify line")
    assert len(call.fakes.chat.requests) == 1  # said by the agent itself, not asked of the model
    call.press("1234#")  # the right PIN, too late: an ordinary keypad entry now, and no data
    await until(lambda: len(call.fakes.chat.requests) == 3, what="the tool round")
    [refused] = tool_results(call)
    assert refused["error"].startswith("the caller could not be verified on this call; look nothing up")
    assert (await call.hang_up()).verified_customer is None


__all__ = ["make_database"]
