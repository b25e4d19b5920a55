"""The executor on small tools of its own: every failure becomes a short message, never a crash."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import Field

from tools import (
    InMemoryToolAudit,
    Tool,
    ToolArguments,
    ToolAuditEntry,
    ToolCall,
    ToolContext,
    ToolError,
    ToolExecutor,
    ToolResult,
)

CONTEXT = ToolContext(call_sid="CA1", agent_id="support", caller_number="+15550101")


class EchoArgs(ToolArguments):
    text: str = Field(max_length=50)
    times: int = Field(1, ge=1, le=3)


class NoArgs(ToolArguments):
    pass


async def echo(args: EchoArgs, context: ToolContext) -> dict[str, Any]:
    return {"echo": args.text * args.times, "caller": context.caller_number}


async def hang(args: NoArgs, context: ToolContext) -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def crash(args: NoArgs, context: ToolContext) -> dict[str, Any]:
    raise RuntimeError("secret internals at /srv/app.py line 12")


async def refuse(args: NoArgs, context: ToolContext) -> dict[str, Any]:
    raise ToolError("that slot is taken; offer another time")


async def many(args: NoArgs, context: ToolContext) -> ToolResult:
    items = [{"n": i, "pad": "x" * 100} for i in range(100)]
    return ToolResult({"kind": "many"}, items, "rows", more=7)


async def huge(args: NoArgs, context: ToolContext) -> dict[str, Any]:
    return {"blob": "x" * 100_000}


def _tools() -> list[Tool[Any]]:
    return [
        Tool("echo", "Echo text.", EchoArgs, echo),
        Tool("hang", "Never returns.", NoArgs, hang, timeout_s=0.05),
        Tool("crash", "Raises.", NoArgs, crash),
        Tool("refuse", "Refuses.", NoArgs, refuse),
        Tool("many", "A long list.", NoArgs, many),
        Tool("huge", "One huge value.", NoArgs, huge),
    ]


@pytest.fixture
def audit() -> InMemoryToolAudit:
    return InMemoryToolAudit()


@pytest.fixture
def executor(audit: InMemoryToolAudit) -> ToolExecutor:
    return ToolExecutor(_tools(), audit, max_steps_per_turn=10, max_result_bytes=2048)


async def run(executor: ToolExecutor, name: str, arguments: str) -> tuple[dict[str, Any], Any]:
    outcome = await executor.turn(CONTEXT).run(ToolCall("call_1", name, arguments))
    assert outcome.result_bytes == len(outcome.content.encode()) <= executor.max_result_bytes
    return json.loads(outcome.content), outcome


async def test_a_valid_call_returns_compact_json(executor: ToolExecutor) -> None:
    body, outcome = await run(executor, "echo", '{"text": "hi", "times": 2}')
    assert body == {"echo": "hihi", "caller": "+15550101"}
    assert outcome.ok and outcome.error is None and outcome.call_id == "call_1" and outcome.name == "echo"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", "text is required"),
        ("{}", "text is required"),
        ('{"text": 5}', "text: Input should be a valid string"),
        ('{"text": "hi", "times": "2"}', "times: Input should be a valid integer"),
        ('{"text": "hi", "times": 9}', "times: Input should be less than or equal to 3"),
        ('{"text": "hi", "extra": 1}', "extra is not a field (fields: text, times)"),
        ('{"text": "hi"', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('{"text": "' + "y" * 60 + '"}', "at most 50 characters"),
    ],
)
async def test_invalid_arguments_get_an_actionable_message(
    executor: ToolExecutor, arguments: str, expected: str
) -> None:
    body, outcome = await run(executor, "echo", arguments)
    assert not outcome.ok and outcome.error == "invalid_arguments"
    assert expected in body["error"] and "ask the caller" in body["error"]
    assert "Traceback" not in body["error"] and "y" * 60 not in body["error"]


async def test_many_errors_are_summarised(executor: ToolExecutor) -> None:
    arguments = json.dumps({f"k{i}": i for i in range(40)})
    body, _ = await run(executor, "echo", arguments)
    assert "and 36 more" in body["error"] and len(body["error"]) <= 600


async def test_unknown_tool(executor: ToolExecutor) -> None:
    body, outcome = await run(executor, "drop_database", "{}")
    assert outcome.error == "unknown_tool" and "available tools: echo, hang" in body["error"]


async def test_oversized_arguments_are_not_parsed(executor: ToolExecutor) -> None:
    body, outcome = await run(executor, "echo", '{"text": "' + "z" * 10_000_000 + '"}')
    assert outcome.error == "too_large" and "over 4096 bytes" in body["error"]


async def test_timeout(executor: ToolExecutor) -> None:
    body, outcome = await run(executor, "hang", "{}")
    assert outcome.error == "timeout" and "cannot check right now" in body["error"]


async def test_handler_crash_is_contained(executor: ToolExecutor, caplog: pytest.LogCaptureFixture) -> None:
    body, outcome = await run(executor, "crash", "{}")
    assert outcome.error == "internal"
    assert body == {"error": "crash failed; tell the caller you cannot do that right now"}
    assert "secret internals" in caplog.text  # in the log for us, not in the message for the model


async def test_tool_error_goes_to_the_model(executor: ToolExecutor) -> None:
    body, outcome = await run(executor, "refuse", "{}")
    assert outcome.error == "refused" and body == {"error": "that slot is taken; offer another time"}


async def test_long_lists_are_shortened_to_the_result_cap(executor: ToolExecutor) -> None:
    body, outcome = await run(executor, "many", "{}")
    assert outcome.ok and outcome.truncated
    kept = len(body["rows"])
    assert 0 < kept < 100 and [row["n"] for row in body["rows"]] == list(range(kept))
    assert body["truncated"] == f"truncated: {100 - kept + 7} more"


async def test_a_result_that_cannot_be_shortened_is_an_error(executor: ToolExecutor) -> None:
    body, outcome = await run(executor, "huge", "{}")
    assert not outcome.ok and outcome.error == "result_too_large" and "narrow the search" in body["error"]


async def test_steps_per_turn_are_bounded() -> None:
    executor = ToolExecutor(_tools(), max_steps_per_turn=2)
    turn = executor.turn(CONTEXT)
    outcomes = [await turn.run(ToolCall(str(i), "echo", '{"text": "a"}')) for i in range(4)]
    assert [outcome.ok for outcome in outcomes] == [True, True, False, False]
    assert outcomes[2].error == "step_limit" and "answer with what you have" in outcomes[2].content
    assert (await executor.turn(CONTEXT).run(ToolCall("5", "echo", '{"text": "a"}'))).ok  # a new turn, a new budget


async def test_every_call_is_audited(executor: ToolExecutor, audit: InMemoryToolAudit) -> None:
    turn = executor.turn(CONTEXT)
    await turn.run(ToolCall("a", "echo", '{"text": "hi"}'))
    await turn.run(ToolCall("b", "echo", '{"text": "' + "q" * 5000 + '"}'))
    first, second = audit.entries
    assert (first.call_sid, first.agent_id, first.tool_call_id, first.name) == ("CA1", "support", "a", "echo")
    assert first.ok and first.error is None
    assert first.arguments == '{"text": "hi"}' and first.result_bytes > 0 and first.duration_ms >= 0
    assert not second.ok and second.error == "too_large"
    assert len(second.arguments) == 500 and second.arguments_chars == 5012


async def test_a_failing_audit_does_not_fail_the_call() -> None:
    class BrokenAudit:
        async def record(self, entry: ToolAuditEntry) -> None:
            raise ConnectionError("audit store down")

    outcome = await ToolExecutor(_tools(), BrokenAudit()).turn(CONTEXT).run(ToolCall("a", "echo", '{"text": "x"}'))
    assert outcome.ok


async def test_cancellation_is_not_swallowed(executor: ToolExecutor) -> None:
    slow = ToolExecutor([Tool("hang", "Never returns.", NoArgs, hang, timeout_s=60)])
    task = asyncio.create_task(slow.turn(CONTEXT).run(ToolCall("a", "hang", "{}")))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_schemas_are_a_copy_and_names_are_unique(executor: ToolExecutor) -> None:
    schemas = executor.schemas()
    assert [schema["function"]["name"] for schema in schemas] == ["echo", "hang", "crash", "refuse", "many", "huge"]
    schemas[0]["function"]["name"] = "changed"
    assert executor.schemas()[0]["function"]["name"] == "echo"
    with pytest.raises(ValueError, match="two tools"):
        ToolExecutor([*_tools(), Tool("echo", "Again.", EchoArgs, echo)])


async def test_in_memory_audit_is_bounded() -> None:
    audit = InMemoryToolAudit(max_entries=3)
    turn = ToolExecutor(_tools(), audit, max_steps_per_turn=10).turn(CONTEXT)
    for i in range(5):
        await turn.run(ToolCall(str(i), "echo", '{"text": "a"}'))
    assert [entry.tool_call_id for entry in audit.entries] == ["2", "3", "4"]


async def test_tool_calls_are_refused_while_the_pod_sheds_load(audit: InMemoryToolAudit) -> None:
    shedding = False
    ran: list[str] = []

    async def counted(args: EchoArgs, context: ToolContext) -> dict[str, Any]:
        ran.append(args.text)
        return {"text": args.text}

    executor = ToolExecutor([Tool("echo", "Echo text.", EchoArgs, counted)], audit, shedding=lambda: shedding)
    body, outcome = await run(executor, "echo", '{"text": "before"}')
    assert outcome.ok and body == {"text": "before"}
    shedding = True
    body, outcome = await run(executor, "echo", '{"text": "during"}')
    assert not outcome.ok and outcome.error == "overloaded"
    assert "too busy" in body["error"]
    assert ran == ["before"]  # the handler never ran, so its result was never built
    shedding = False
    _, outcome = await run(executor, "echo", '{"text": "after"}')
    assert outcome.ok and ran == ["before", "after"]
    assert [entry.error for entry in audit.entries] == [None, "overloaded", None]
