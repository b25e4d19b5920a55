"""The scripted fake LLM server: its wire format, its script, its records and its bounds."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.engines.protocols import StreamEnd, TextDelta, ToolCallRequest
from agents.engines.remote.openai_chat import OpenAIChatModel, ToolCallAssembler
from agents.testing.scripted_llm import (
    DropMidStream,
    Fail,
    Hang,
    Reply,
    ScriptedLlmServer,
    ScriptedToolCall,
    chunk_deltas,
)

HELLO = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}


def sse_payloads(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, checking each event is one `data:` line and a blank line."""
    events = body.split("\n\n")
    assert events[-1] == ""
    lines = events[:-1]
    assert all(line.startswith("data: ") and "\n" not in line for line in lines)
    return [line.removeprefix("data: ") for line in lines]


# -- the chunks -----------------------------------------------------------------------------------

calls_strategy = st.lists(
    st.builds(ScriptedToolCall, name=st.from_regex(r"[a-z_]{1,12}", fullmatch=True), arguments=st.text(max_size=60)),
    max_size=3,
)


@given(
    text=st.text(max_size=80),
    calls=calls_strategy,
    chunk_chars=st.integers(min_value=1, max_value=20),
    interleave=st.booleans(),
)
def test_chunks_reassemble_to_exactly_the_scripted_reply(
    text: str, calls: list[ScriptedToolCall], chunk_chars: int, interleave: bool
) -> None:
    reply = Reply(text=text, tool_calls=calls, chunk_chars=chunk_chars, interleave=interleave)
    deltas = chunk_deltas(reply)
    assert deltas[0] == ({"role": "assistant", "content": ""}, None)
    assert deltas[-1] == ({}, "tool_calls" if calls else "stop")
    assert all(len(d.get("content", "")) <= chunk_chars for d, _ in deltas)
    assembler = ToolCallAssembler()
    spoken = ""
    for delta, _ in deltas:
        spoken += delta.get("content", "")
        for d in delta.get("tool_calls", []):
            fn = d.get("function", {})
            assembler.add(d["index"], d.get("id"), fn.get("name"), fn.get("arguments"))
    assert spoken == text
    assert assembler.calls() == [ToolCallRequest(f"call_{i}", c.name, c.arguments) for i, c in enumerate(calls)]


def test_reply_rejects_an_empty_chunk_size() -> None:
    with pytest.raises(ValueError, match="chunk_chars"):
        Reply(text="x", chunk_chars=0)


# -- over HTTP ------------------------------------------------------------------------------------


async def test_streams_real_sse_in_the_vllm_chunk_shape() -> None:
    async with ScriptedLlmServer([Reply(text="Hello there.", chunk_chars=6)], model="fake-8b") as server:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{server.base_url}/chat/completions", json={**HELLO, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello "},
        {"content": "there."},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert chunks[0]["model"] == "scripted"  # echoes the requested model


async def test_answers_without_streaming_too() -> None:
    call = ScriptedToolCall("lookup_order", '{"order_number": "A-1"}', id="call_x")
    async with ScriptedLlmServer([Reply(text="One moment.", tool_calls=[call])]) as server:
        async with httpx.AsyncClient() as client:
            body = (await client.post(f"{server.base_url}/chat/completions", json=HELLO)).json()
    assert body["object"] == "chat.completion"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "One moment.",
        "tool_calls": [
            {"id": "call_x", "type": "function", "function": {"name": "lookup_order", "arguments": call.arguments}}
        ],
    }


async def test_a_reply_can_say_what_the_request_carried() -> None:
    """`text_from`: the fake model reads back the last message it was sent (a tool's result)."""
    reply = Reply(text_from=lambda body: "You said: " + body["messages"][-1]["content"])
    async with ScriptedLlmServer([reply]) as server:
        async with httpx.AsyncClient() as client:
            body = (await client.post(f"{server.base_url}/chat/completions", json=HELLO)).json()
    assert body["choices"][0]["message"]["content"] == "You said: hi"


async def test_a_request_overtaken_by_more_caller_words_gets_the_same_step_again() -> None:
    """A speculative request (asked in the caller's pause) then the fuller one: one scripted answer
    serves both; a new history, or the same request again (a retry), takes the next step."""
    first = Reply(text_from=lambda body: "Heard: " + body["messages"][-1]["content"])
    system = {"role": "system", "content": "Be brief."}

    def asking(*messages: dict[str, str]) -> dict[str, Any]:
        return {"model": "scripted", "messages": [system, *messages]}

    script = [first, Reply(text="Second."), Reply(text="Third."), Reply(text="Fourth."), Reply(text="Fifth.")]
    async with ScriptedLlmServer(script) as server:
        async with httpx.AsyncClient() as client:
            url = f"{server.base_url}/chat/completions"

            async def text(body: dict[str, Any]) -> str:
                return (await client.post(url, json=body)).json()["choices"][0]["message"]["content"]

            early = await text(asking({"role": "user", "content": "I'd like to book"}))
            full = await text(asking({"role": "user", "content": "I'd like to book for Tuesday"}))
            answered = {"role": "assistant", "content": full}
            next_turn = await text(asking({"role": "user", "content": "I'd like to book for Tuesday"}, answered))
            retry = await text(asking({"role": "user", "content": "I'd like to book for Tuesday"}, answered))
            hello = {"role": "user", "content": "Hello?"}
            failed = await text(asking(hello))  # say its answer was never spoken: the caller asks again,
            after_failure = await text(asking(hello, {"role": "user", "content": "Anyone?"}))  # one message more
    assert (early, full) == ("Heard: I'd like to book", "Heard: I'd like to book for Tuesday")
    assert (next_turn, retry) == ("Second.", "Third.")
    assert (failed, after_failure) == ("Fourth.", "Fifth.")


async def test_a_server_can_follow_a_rule_and_go_back_to_its_script() -> None:
    async with ScriptedLlmServer([Reply(text="Scripted.")]) as server:
        server.follow(lambda body: Reply(text=f"{len(body['messages'])} message(s)."))
        async with httpx.AsyncClient() as client:
            url = f"{server.base_url}/chat/completions"
            ruled = (await client.post(url, json=HELLO)).json()
            server.follow(None)
            scripted = (await client.post(url, json=HELLO)).json()
    assert ruled["choices"][0]["message"]["content"] == "1 message(s)."
    assert scripted["choices"][0]["message"]["content"] == "Scripted."


async def test_lists_its_model() -> None:
    async with ScriptedLlmServer(model="fake-8b") as server:
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"{server.base_url}/models")).json()
    assert [m["id"] for m in body["data"]] == ["fake-8b"]


async def test_scripted_failures_and_an_empty_script_are_http_errors() -> None:
    async with ScriptedLlmServer([Fail(503, "overloaded"), DropMidStream(2)]) as server:
        async with httpx.AsyncClient() as client:
            url = f"{server.base_url}/chat/completions"
            failed = await client.post(url, json=HELLO)
            dropped = await client.post(url, json=HELLO)  # non-streaming: nothing to cut in the middle
            exhausted = await client.post(url, json=HELLO)
    assert (failed.status_code, failed.json()["error"]["message"]) == (503, "overloaded")
    assert dropped.status_code == 502
    assert exhausted.status_code == 500
    assert "no steps left" in exhausted.json()["error"]["message"]
    assert [r.outcome for r in server.requests] == ["failed", "dropped", "failed"]


async def test_steps_no_request_took_can_be_discarded_so_the_next_test_starts_clean() -> None:
    async with ScriptedLlmServer([Reply(text="Taken."), Reply(text="Left over.")]) as server:
        async with httpx.AsyncClient() as client:
            url = f"{server.base_url}/chat/completions"
            taken = await client.post(url, json=HELLO)
            assert server.discard_steps() == 1
            exhausted = await client.post(url, json=HELLO)
    assert taken.json()["choices"][0]["message"]["content"] == "Taken."
    assert server.steps_left == 0 and server.discard_steps() == 0
    assert exhausted.status_code == 500


async def test_bad_requests_get_clear_400s_and_413s() -> None:
    async with ScriptedLlmServer([Reply(text="unused")], max_body_bytes=2000) as server:
        async with httpx.AsyncClient() as client:
            url = f"{server.base_url}/chat/completions"
            not_json = await client.post(url, content=b"{nope")
            no_messages = await client.post(url, json={"model": "x"})
            too_big = await client.post(url, json={"messages": [{"role": "user", "content": "x" * 3000}]})
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]["message"]
    assert no_messages.status_code == 400 and "'messages'" in no_messages.json()["error"]["message"]
    assert too_big.status_code == 413
    assert server.steps_left == 1
    assert len(server.requests) == 0


async def test_records_are_bounded_oldest_first() -> None:
    async with ScriptedLlmServer([Reply(text=str(i)) for i in range(3)], max_recorded=2) as server:
        async with httpx.AsyncClient() as client:
            for i in range(3):
                await client.post(f"{server.base_url}/chat/completions", json={"messages": [{"content": str(i)}]})
    assert [r.messages[0]["content"] for r in server.requests] == ["1", "2"]


def test_the_script_queue_is_bounded_and_typed() -> None:
    server = ScriptedLlmServer(max_script_steps=2)
    server.push(Reply(text="a"), Reply(text="b"))
    with pytest.raises(ValueError, match="max_script_steps=2"):
        server.push(Reply(text="c"))
    with pytest.raises(TypeError, match="not a script step"):
        ScriptedLlmServer(["hello"])  # type: ignore[list-item]


async def test_a_rule_function_plays_a_tool_using_agent() -> None:
    """The demo's shape: answer by keyword, look an order up, then answer from the tool's result."""

    def rule(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]
        if last["role"] == "tool":
            status = json.loads(last["content"])["status"]
            return Reply(text=f"Your order has {status}.", chunk_chars=64)
        if "order" in last["content"]:
            return Reply(tool_calls=[ScriptedToolCall("lookup_order", '{"order_number": "A-1"}', id="c1")])
        return Reply(text="How can I help?", chunk_chars=64)

    async with ScriptedLlmServer(rule) as server:
        model = OpenAIChatModel(server.base_url, model="scripted")
        history: list[dict[str, Any]] = [{"role": "user", "content": "Where is my order?"}]
        first = [e async for e in model.stream(history)]
        assert first == [ToolCallRequest("c1", "lookup_order", '{"order_number": "A-1"}'), StreamEnd("tool_calls")]
        history += [
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {}}]},
            {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
        ]
        second = [e async for e in model.stream(history)]
        assert second == [TextDelta("Your order has shipped."), StreamEnd("stop")]
        greeting = [e async for e in model.stream([{"role": "user", "content": "hi"}])]
        assert greeting[0] == TextDelta("How can I help?")
        await model.aclose()


async def test_a_broken_rule_is_a_500_naming_the_error() -> None:
    def rule(body: dict[str, Any]) -> Reply:
        raise KeyError("missing")

    async with ScriptedLlmServer(rule) as server:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{server.base_url}/chat/completions", json=HELLO)
    assert response.status_code == 500
    assert "KeyError" in response.json()["error"]["message"]


async def test_shutting_down_ends_a_hang() -> None:
    async with asyncio.timeout(30):  # a broken shutdown would otherwise wait out the hour
        async with ScriptedLlmServer([Hang(3600)]) as server:
            client = httpx.AsyncClient()
            request = asyncio.create_task(client.post(f"{server.base_url}/chat/completions", json=HELLO))
            while not server.requests:
                await asyncio.sleep(0.01)
        response = await request
        await client.aclose()
    assert response.status_code == 504
    assert server.requests[0].outcome == "hung"


def test_runs_on_its_own_thread_for_sync_callers() -> None:
    with ScriptedLlmServer([Reply(text="Hi from a thread.", chunk_chars=64)]) as server:
        with httpx.Client() as client:
            response = client.post(f"{server.base_url}/chat/completions", json={**HELLO, "stream": True})
    payloads = sse_payloads(response.text)
    assert json.loads(payloads[1])["choices"][0]["delta"] == {"content": "Hi from a thread."}
    assert server.requests[0].outcome == "completed"
