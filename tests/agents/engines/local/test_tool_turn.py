"""One turn with tools, driven through a scripted completion (the llama.cpp boundary faked): what
the model is asked at each step, under which grammar, and the events the session gets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.engines.local.tool_turn import (
    MAX_CHOICE_TOKENS,
    Piece,
    PreparedTool,
    ToolTurn,
    choice_grammar,
    prepare_tool,
    render_prompt,
)
from agents.engines.protocols import ChatModelUnavailable, StreamEnd, TextDelta, ToolCallRequest

ORDERS: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "list_recent_orders",
        "description": "The caller's recent orders.",
        "parameters": {
            "type": "object",
            "properties": {
                "status": {"anyOf": [{"type": "string", "enum": ["shipped", "pending"]}, {"type": "null"}]},
                "limit": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 20}, {"type": "null"}]},
            },
            "required": ["status", "limit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
HUMAN: dict[str, Any] = {"type": "function", "function": {"name": "transfer_to_human"}}
MESSAGES = [{"role": "system", "content": "You are a phone agent."}, {"role": "user", "content": "Any orders?"}]


@dataclass
class FakeCompletion:
    """Stands in for llama.cpp: answers each call with the next scripted text, and records the request."""

    script: list[str]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self, prompt: str, *, grammar: str | None, max_tokens: int, temperature: float, require_text: bool = False
    ) -> Iterator[Piece]:
        self.calls.append(
            {"prompt": prompt, "grammar": grammar, "max_tokens": max_tokens, "require_text": require_text}
        )
        text = self.script.pop(0)
        words = text.split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            yield Piece(word if last else word + " ", "stop" if last else None)


def prepared(*tools: dict[str, Any]) -> list[PreparedTool]:
    return [prepare_tool(tool, lambda grammar: True) for tool in tools]


def run(script: list[str], choice: Any = "auto") -> tuple[list[Any], FakeCompletion]:
    fake = FakeCompletion(script)
    events = list(ToolTurn(fake, max_tokens=50, temperature=0.2).run(MESSAGES, prepared(ORDERS, HUMAN), choice))
    return events, fake


def test_a_chosen_message_is_free_text_that_must_say_something() -> None:
    events, fake = run(["message:", "We open at eight."])
    assert events == [TextDelta("We "), TextDelta("open "), TextDelta("at "), TextDelta("eight."), StreamEnd("stop")]
    choose, speak = fake.calls
    assert choose["grammar"] == choice_grammar(prepared(ORDERS, HUMAN), allow_message=True)
    assert choose["max_tokens"] == MAX_CHOICE_TOKENS
    assert speak["grammar"] is None and speak["require_text"] is True
    assert speak["prompt"] == choose["prompt"] + "message:\n"


def test_a_chosen_tool_gets_arguments_under_its_grammar_with_nulls_put_back() -> None:
    events, fake = run(["functions.list_recent_orders:", '{"status": "shipped"}'])
    call, end = events
    assert isinstance(call, ToolCallRequest) and call.name == "list_recent_orders" and call.id.startswith("call_")
    assert json.loads(call.arguments) == {"status": "shipped", "limit": None}
    assert end == StreamEnd("tool_calls")
    arguments = fake.calls[1]
    assert arguments["prompt"].endswith("functions.list_recent_orders:\n")
    assert arguments["grammar"] == prepared(ORDERS)[0].grammar


def test_arguments_cut_short_are_passed_on_for_the_executor_to_refuse() -> None:
    events, _ = run(["functions.list_recent_orders:", '{"status": "ship'])
    assert events[0] == ToolCallRequest(events[0].id, "list_recent_orders", '{"status": "ship')


def test_a_named_tool_skips_the_choice_and_none_skips_to_speech() -> None:
    events, fake = run(
        ['{"status": null, "limit": 3}'], {"type": "function", "function": {"name": "list_recent_orders"}}
    )
    assert len(fake.calls) == 1 and isinstance(events[0], ToolCallRequest)
    events, fake = run(["Hello."], "none")
    assert events == [TextDelta("Hello."), StreamEnd("stop")] and fake.calls[0]["require_text"]


def test_required_offers_only_the_tools_and_falls_back_to_the_first_when_cut_short() -> None:
    events, fake = run(["functions.transfer_to_human:", "{}"], "required")
    assert '"message:"' not in (fake.calls[0]["grammar"] or "")
    assert events[0].name == "transfer_to_human"  # type: ignore[union-attr]
    events, _ = run(["functions.list_rec", "{}"], "required")
    assert events[0].name == "list_recent_orders"  # type: ignore[union-attr]


def test_bad_choices_and_tools_are_clear_errors() -> None:
    with pytest.raises(ChatModelUnavailable, match="'nope', which is not among the tools"):
        run([], {"type": "function", "function": {"name": "nope"}})
    with pytest.raises(ChatModelUnavailable, match="unsupported tool_choice"):
        run([], "sometimes")
    with pytest.raises(ChatModelUnavailable, match="needs a function name"):
        prepared({"type": "function", "function": {"name": 'x" | root'}})
    with pytest.raises(ChatModelUnavailable, match="parameters must be a JSON schema object"):
        prepared({"type": "function", "function": {"name": "x", "parameters": ["not", "a", "schema"]}})


def test_the_prompt_lists_tools_with_nullable_fields_optional_and_renders_earlier_calls() -> None:
    history = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "list_recent_orders", "arguments": "{}"}}],
        },
        {"role": "user", "content": 'Result of functions.list_recent_orders:\n{"orders": []}'},
        {"role": "assistant", "content": "You have no orders."},
    ]
    prompt = render_prompt(history, prepared(ORDERS))
    assert prompt.startswith(
        "<|im_start|>system\nYou are a phone agent.\n\nYou have access to the following functions:"
    )
    assert "functions.list_recent_orders:\n// The caller's recent orders.\n" in prompt
    assert '"required": []' in prompt and "additionalProperties" not in prompt
    assert "<|im_start|>assistant\nfunctions.list_recent_orders:\n{}<|im_end|>" in prompt
    assert "<|im_start|>assistant\nmessage:\nYou have no orders.<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
