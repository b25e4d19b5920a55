"""The OpenAI-compatible chat model against the scripted fake server over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.engines.protocols import ChatEvent, ChatModelUnavailable, StreamEnd, TextDelta, ToolCallRequest
from agents.engines.remote.openai_chat import CUT_MARK, OpenAIChatModel, ToolCallAssembler, ToolCallOverflow
from agents.testing.scripted_llm import DropMidStream, Fail, Hang, Reply, ScriptedLlmServer, ScriptedToolCall, Step
from tests.support.order_tool import ORDER_TOOL

USER = [{"role": "user", "content": "Where is my order?"}]


def fast_model(base_url: str, **overrides: Any) -> OpenAIChatModel:
    """Generous clocks, so an answer on a loaded machine is never late by luck; a test of a deadline
    passes its own short clock and scripts a delay far beyond it."""
    options: dict[str, Any] = {"first_token_timeout_s": 10.0, "idle_timeout_s": 10.0, "request_timeout_s": 30.0}
    options.update(overrides)
    return OpenAIChatModel(base_url, model="scripted", **options)


async def collect(events: AsyncIterator[ChatEvent]) -> list[ChatEvent]:
    return [event async for event in events]


async def served(script: list[Step], **model_options: Any) -> tuple[list[ChatEvent], ScriptedLlmServer]:
    async with ScriptedLlmServer(script) as server:
        model = fast_model(server.base_url, **model_options)
        try:
            events = await collect(model.stream(USER, [ORDER_TOOL], "auto"))
        finally:
            await model.aclose()
        await server.settled()
    return events, server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- streaming ------------------------------------------------------------------------------------


async def test_text_streams_in_order_then_one_end() -> None:
    events, _ = await served([Reply(text="Hello there. How can I help?", chunk_chars=8)])
    assert events == [
        TextDelta("Hello th"),
        TextDelta("ere. How"),
        TextDelta(" can I h"),
        TextDelta("elp?"),
        StreamEnd("stop"),
    ]


async def test_one_tool_call_split_over_chunks_is_assembled_exactly() -> None:
    arguments = '{"order_number": "A-10442", "note": "caller said \\"urgent\\""}'
    reply = Reply(tool_calls=[ScriptedToolCall("lookup_order", arguments, id="call_abc")], chunk_chars=5)
    events, _ = await served([reply])
    assert events == [ToolCallRequest("call_abc", "lookup_order", arguments), StreamEnd("tool_calls")]


async def test_two_parallel_interleaved_tool_calls_are_assembled_exactly() -> None:
    first = ScriptedToolCall("lookup_order", '{"order_number": "A-1"}', id="call_1")
    second = ScriptedToolCall("lookup_customer", '{"phone": "+15550123", "fields": ["name", "tier"]}', id="call_2")
    events, _ = await served([Reply(text="One moment.", tool_calls=[first, second], chunk_chars=3, interleave=True)])
    assert events == [
        TextDelta("One"),
        TextDelta(" mo"),
        TextDelta("men"),
        TextDelta("t."),
        ToolCallRequest("call_1", "lookup_order", first.arguments),
        ToolCallRequest("call_2", "lookup_customer", second.arguments),
        StreamEnd("tool_calls"),
    ]


async def test_strict_tools_tool_choice_and_options_reach_the_server_unchanged() -> None:
    choice = {"type": "function", "function": {"name": "lookup_order"}}
    structured = {"structured_outputs": {"json": {"type": "object"}}}
    async with ScriptedLlmServer([Reply(text="ok")]) as server:
        model = fast_model(server.base_url, temperature=0.3, max_tokens=77, extra_body=structured)
        await collect(model.stream(USER, [ORDER_TOOL], choice))
        await model.aclose()
    (request,) = server.requests
    assert request.tools == [ORDER_TOOL]
    assert request.tools[0]["function"]["strict"] is True
    assert request.tool_choice == choice
    assert request.messages == USER
    assert request.body["stream"] is True
    assert request.body["temperature"] == 0.3
    assert request.body["max_tokens"] == 77
    assert request.body["structured_outputs"] == {"json": {"type": "object"}}


async def test_no_tools_sends_no_tool_fields() -> None:
    async with ScriptedLlmServer([Reply(text="ok")]) as server:
        model = fast_model(server.base_url)
        await collect(model.stream(USER))
        await model.aclose()
    assert "tools" not in server.requests[0].body
    assert "tool_choice" not in server.requests[0].body


# -- failures and the one retry -------------------------------------------------------------------


async def test_a_500_then_success_is_retried_once() -> None:
    events, server = await served([Fail(500), Reply(text="Recovered.", chunk_chars=32)])
    assert events == [TextDelta("Recovered."), StreamEnd("stop")]
    assert [r.outcome for r in server.requests] == ["failed", "completed"]


async def test_a_429_is_retried() -> None:
    events, server = await served([Fail(429, "slow down"), Reply(text="ok")])
    assert events[-1] == StreamEnd("stop")
    assert len(server.requests) == 2


async def test_two_500s_make_the_model_unavailable() -> None:
    with pytest.raises(ChatModelUnavailable, match="2 attempt"):
        await served([Fail(500), Fail(503), Reply(text="never reached")])


async def test_two_500s_use_exactly_two_requests() -> None:
    async with ScriptedLlmServer([Fail(500), Fail(500), Reply(text="never reached")]) as server:
        model = fast_model(server.base_url)
        with pytest.raises(ChatModelUnavailable):
            await collect(model.stream(USER))
        await model.aclose()
        assert len(server.requests) == 2
        assert server.steps_left == 1


async def test_a_400_is_not_retried() -> None:
    async with ScriptedLlmServer([Fail(400, "prompt too long"), Reply(text="never reached")]) as server:
        model = fast_model(server.base_url)
        with pytest.raises(ChatModelUnavailable, match="HTTP 400"):
            await collect(model.stream(USER))
        await model.aclose()
        assert len(server.requests) == 1


async def test_connection_refused_is_unavailable_after_one_retry() -> None:
    model = fast_model(f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(ChatModelUnavailable, match=r"after 2 attempt\(s\): connection failed.*; connection failed"):
        await collect(model.stream(USER))
    await model.aclose()


async def test_slow_first_token_is_retried_then_unavailable() -> None:
    slow = Reply(text="too late", delay_first_s=30)
    async with ScriptedLlmServer([slow, slow]) as server:
        model = fast_model(server.base_url, first_token_timeout_s=0.3)
        with pytest.raises(ChatModelUnavailable, match=r"no first token within 0\.3 s"):
            await collect(model.stream(USER))
        await model.aclose()
        requests = await server.settled()
    assert [r.outcome for r in requests] == ["disconnected", "disconnected"]


async def test_a_hung_server_then_an_answer_succeeds_on_the_retry() -> None:
    # 2 s: the hang (30 s) is far beyond it, and the retry's answer is well within it.
    events, server = await served([Hang(30), Reply(text="Here now.", chunk_chars=32)], first_token_timeout_s=2.0)
    assert events == [TextDelta("Here now."), StreamEnd("stop")]
    assert len(server.requests) == 2


async def test_a_role_chunk_alone_is_not_the_first_token() -> None:
    """vLLM sends the role at once; the first-token clock keeps running until real content comes."""
    role_then_silence = Reply(text="too late", delay_first_s=30)
    events, server = await served([role_then_silence, Reply(text="ok")], first_token_timeout_s=2.0)
    assert events == [TextDelta("ok"), StreamEnd("stop")]
    assert [r.outcome for r in server.requests] == ["disconnected", "completed"]


async def test_a_long_gap_mid_reply_is_unavailable_without_retry() -> None:
    gappy = Reply(text="Your order ships on Monday.", chunk_chars=10, delay_between_s=0.6)
    async with ScriptedLlmServer([gappy, Reply(text="never reached")]) as server:
        model = fast_model(server.base_url, first_token_timeout_s=3.0, idle_timeout_s=0.2)
        seen: list[ChatEvent] = []
        with pytest.raises(ChatModelUnavailable, match=r"mid-reply: no chunk for 0\.2 s"):
            async for event in model.stream(USER):
                seen.append(event)
        await model.aclose()
        assert seen == [TextDelta("Your order")]
        assert len(server.requests) == 1


async def test_a_drop_after_text_was_yielded_is_unavailable_without_retry() -> None:
    cut = DropMidStream(after_chunks=3, reply=Reply(text="Your order is on its way.", chunk_chars=5))
    async with ScriptedLlmServer([cut, Reply(text="never reached")]) as server:
        model = fast_model(server.base_url)
        seen: list[ChatEvent] = []
        with pytest.raises(ChatModelUnavailable, match="failed mid-reply"):
            async for event in model.stream(USER):
                seen.append(event)
        await model.aclose()
        assert seen == [TextDelta("Your "), TextDelta("order")]
        assert len(server.requests) == 1
        assert server.steps_left == 1


async def test_a_drop_while_a_tool_call_was_still_arriving_is_retried() -> None:
    """Tool calls are yielded only once complete, so nothing was said yet and a retry is safe."""
    call = ScriptedToolCall("lookup_order", '{"order_number": "A-1"}', id="call_9")
    cut = DropMidStream(after_chunks=3, reply=Reply(tool_calls=[call], chunk_chars=4))
    events, server = await served([cut, Reply(tool_calls=[call])])
    assert events == [ToolCallRequest("call_9", "lookup_order", call.arguments), StreamEnd("tool_calls")]
    assert [r.outcome for r in server.requests] == ["dropped", "completed"]


async def test_too_many_tool_calls_is_unavailable_without_retry() -> None:
    calls = [ScriptedToolCall("lookup_order", "{}") for _ in range(3)]
    async with ScriptedLlmServer([Reply(tool_calls=calls), Reply(tool_calls=calls)]) as server:
        model = fast_model(server.base_url, max_tool_calls=2)
        with pytest.raises(ChatModelUnavailable, match="more than 2 tool calls"):
            await collect(model.stream(USER, [ORDER_TOOL]))
        await model.aclose()
        assert len(server.requests) == 1


# -- barge-in -------------------------------------------------------------------------------------


async def test_cancelling_the_consumer_closes_the_http_stream() -> None:
    long_reply = Reply(text="Let me read you the whole terms and conditions. " * 20, delay_between_s=0.05)
    with ScriptedLlmServer([long_reply]) as server:  # its own thread: this loop holds only the client
        model = fast_model(server.base_url)
        first = asyncio.Event()

        async def listen() -> None:
            async for event in model.stream(USER):
                if isinstance(event, TextDelta):
                    first.set()

        task = asyncio.create_task(listen())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (request,) = await server.settled()
        assert request.outcome == "disconnected"
        assert asyncio.all_tasks() == {asyncio.current_task()}
        await model.aclose()


async def test_aclose_mid_stream_closes_the_http_stream() -> None:
    long_reply = Reply(text="A very long answer. " * 50, delay_between_s=0.05)
    async with ScriptedLlmServer([long_reply]) as server:
        model = fast_model(server.base_url)
        events = model.stream(USER)
        assert isinstance(await anext(events), TextDelta)
        await events.aclose()  # type: ignore[attr-defined]
        (request,) = await server.settled()
        assert request.outcome == "disconnected"
        await model.aclose()


# -- the assembler on its own ---------------------------------------------------------------------


def test_assembler_joins_pieces_by_index_in_index_order() -> None:
    assembler = ToolCallAssembler()
    assembler.add(1, "call_b", "second", "")
    assembler.add(0, "call_a", "first", '{"a"')
    assembler.add(1, None, None, '{"b": 2}')
    assembler.add(0, None, None, ": 1}")
    assert assembler.calls() == [
        ToolCallRequest("call_a", "first", '{"a": 1}'),
        ToolCallRequest("call_b", "second", '{"b": 2}'),
    ]
    assert [json.loads(c.arguments) for c in assembler.calls()] == [{"a": 1}, {"b": 2}]


def test_assembler_fills_a_missing_index_and_id() -> None:
    assembler = ToolCallAssembler()
    assembler.add(None, None, "only", '{"x":')
    assembler.add(None, None, None, " 1}")
    assert assembler.calls() == [ToolCallRequest("call_0", "only", '{"x": 1}')]


def test_assembler_bounds_calls_and_argument_text() -> None:
    assembler = ToolCallAssembler(max_calls=1, max_argument_chars=10)
    assembler.add(0, "c", "f", "12345")
    with pytest.raises(ToolCallOverflow, match="more than 1 tool calls"):
        assembler.add(1, "d", "g", "")
    assembler.add(0, None, None, "678901")  # past the bound: kept cut short, for the tools layer to refuse
    assembler.add(0, None, None, "more and more")
    assert assembler.calls() == [ToolCallRequest("c", "f", "1234567890" + CUT_MARK)]


def test_a_call_whose_text_was_all_dropped_is_not_a_call_without_arguments() -> None:
    """Once a runaway argument has used the reply's budget, a later call keeps none of its text:
    it must not reach the tools as "" (which runs as `{}`), but as arguments the tools refuse."""
    assembler = ToolCallAssembler(max_argument_chars=10)
    assembler.add(0, "a", "f", "x" * 20)
    assembler.add(1, "b", "g", '{"customer_id": "C-1002"}')
    first, second = assembler.calls()
    assert second.arguments == CUT_MARK and first.arguments == "x" * 10 + CUT_MARK
    with pytest.raises(json.JSONDecodeError):
        json.loads(second.arguments)
