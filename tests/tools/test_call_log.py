"""Tool calls are logged when they start and when they finish, and their arguments reach the log masked:
a PIN, a card number or a secret-named field never appears in a log line, even without the log handler's
own masking."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from pydantic import Field

from telephony.logs import JsonFormatter
from tools import Tool, ToolArguments, ToolCall, ToolContext, ToolExecutor
from tools.call_log import MAX_LOG_ARGUMENT_CHARS, REDACTED, log_arguments
from tools.pii import KEYPAD_ENTRY, SecretVault

VISA = "4111111111111111"
PIN = "738291"


class VerifyArguments(ToolArguments):
    account: str = Field(max_length=40)
    """The caller's account."""
    pin: str = Field(pattern=r"^\d{4,8}$")
    """The keypad PIN."""


def verify_tool(started: asyncio.Event, release: asyncio.Event) -> Tool[VerifyArguments]:
    async def verify(arguments: VerifyArguments, context: ToolContext) -> dict[str, bool]:
        started.set()
        await release.wait()
        return {"verified": arguments.pin == PIN}

    return Tool("verify_pin", "Check the caller's PIN.", VerifyArguments, verify)


@pytest.fixture
def log_lines() -> io.StringIO:
    """The executor's log lines as JSON, with no masking filter on the handler (the executor's own
    masking is what is under test)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("switchboard.tools")
    logger.addHandler(handler)
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.INFO)
    logger.disabled = False  # a logging configuration an earlier test applied may have disabled it
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.disabled = disabled


def entries(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_call_is_logged_when_it_starts_with_its_arguments_masked(log_lines: io.StringIO) -> None:
    vault = SecretVault()
    vault.keep(KEYPAD_ENTRY, PIN)
    started, release = asyncio.Event(), asyncio.Event()
    executor = ToolExecutor([verify_tool(started, release)])
    context = ToolContext(call_sid="CA7", agent_id="bank", caller_number="+15550101")
    raw = json.dumps({"account": f"card {VISA}", "pin": "[keypad entry 1]"})

    running = asyncio.create_task(executor.turn(context, vault).run(ToolCall("call_1", "verify_pin", raw)))
    await started.wait()  # the tool is running: its start is logged already, its end not yet
    [start] = entries(log_lines)
    release.set()
    outcome = await running

    assert outcome.ok and json.loads(outcome.content) == {"verified": True}
    assert start["event"] == "tool_call_started"
    assert (start["tool"], start["tool_call_id"], start["call_sid"]) == ("verify_pin", "call_1", "CA7")
    assert json.loads(str(start["arguments"])) == {"account": "card [card number]", "pin": REDACTED}
    [_, finish] = entries(log_lines)
    assert finish["event"] == "tool_call_finished" and finish["ok"] is True and finish["tool_call_id"] == "call_1"
    assert PIN not in log_lines.getvalue() and VISA not in log_lines.getvalue()


async def test_a_pin_the_model_typed_into_any_field_never_reaches_the_log(log_lines: io.StringIO) -> None:
    vault = SecretVault()
    vault.keep(KEYPAD_ENTRY, PIN)  # keyed by the caller; the model writes the value itself, not the placeholder
    executor = ToolExecutor([verify_tool(asyncio.Event(), asyncio.Event())], default_timeout_s=0.05)
    context = ToolContext(call_sid="CA8", agent_id="bank", caller_number="+15550101")
    for raw in (
        json.dumps({"account": f"pin is {PIN}", "pin": PIN}),
        json.dumps({"account": "x", "Card-Number": "5500 0000 0000 0004", "nested": [{"passcode": "0000"}]}),
        f"not json at all {VISA} {PIN}",
        "{" * 3000 + PIN,
    ):
        await executor.turn(context, vault).run(ToolCall("c", "verify_pin", raw))

    text = log_lines.getvalue()
    for secret in (PIN, VISA, "5500 0000 0000 0004", "5500000000000004", '"0000"'):
        assert secret not in text, secret
    starts = [entry for entry in entries(log_lines) if entry["event"] == "tool_call_started"]
    assert len(starts) == 4
    assert all(len(str(entry["arguments"])) <= MAX_LOG_ARGUMENT_CHARS + 1 for entry in starts)


def test_log_arguments_keeps_what_is_not_secret() -> None:
    shown = log_arguments('{"order_id": "A-1001", "shipping": "express", "token": "abc"}', None)
    assert json.loads(shown) == {"order_id": "A-1001", "shipping": "express", "token": REDACTED}
    assert log_arguments("x" * 20_000, None) == "[20000 chars withheld]"
    assert log_arguments(None, None) == "None"


async def test_a_cancelled_call_gets_its_finish_line(log_lines: io.StringIO) -> None:
    started = asyncio.Event()
    executor = ToolExecutor([verify_tool(started, asyncio.Event())])
    context = ToolContext(call_sid="CA9", agent_id="bank", caller_number="+15550101")
    running = asyncio.create_task(
        executor.turn(context).run(ToolCall("c9", "verify_pin", '{"account":"a","pin":"1234"}'))
    )
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert [(e["event"], e.get("error")) for e in entries(log_lines)] == [
        ("tool_call_started", None),
        ("tool_call_finished", "cancelled"),
    ]
