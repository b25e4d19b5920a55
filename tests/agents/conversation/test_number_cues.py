from __future__ import annotations

from typing import Any

import pytest

from agents.conversation.end_of_turn import Hint, known_lengths, transcript_hint
from agents.conversation.number_cues import MAX_TOOL_CUES, cues_of, fixed_digits, lengths_from_tools
from tools import Tool, ToolExecutor
from tools.declared.arguments import ArgumentDeclaration, compile_arguments


async def _nothing(args: Any, context: Any) -> dict[str, Any]:
    return {}


def declared_tool(name: str, *arguments: dict[str, Any]) -> Tool[Any]:
    """A tool whose arguments compile as an operator's declaration does (the schema the model sees)."""
    declarations = [ArgumentDeclaration.model_validate(argument) for argument in arguments]
    return Tool(name, "A declared lookup.", compile_arguments(name, declarations), _nothing)


def digit_run(name: str, length: int) -> dict[str, Any]:
    """A string argument that takes exactly `length` digits."""
    return {"name": name, "type": "string", "max_length": length, "pattern": rf"\d{{{length}}}"}


def schemas(*tools: Tool[Any]) -> list[dict[str, Any]]:
    return ToolExecutor(list(tools)).schemas()


@pytest.mark.parametrize(
    ("pattern", "digits"),
    [
        (r"\d{8}", 8),
        (r"^[0-9]{6}$", 6),
        (r"^(?:\d{10})$", 10),
        (r"^(?:^\d{5}$)$", 5),
        (r"\d{8,10}", None),
        (r"ORD\d{8}", None),
        (r"\d{4}-\d{4}", None),
        (r"(?:\d{4})|(?:\d{5})", None),
        (r"\d{20}", None),
        (r"\d{0}", None),
        (r"[A-Z]{8}", None),
    ],
)
def test_only_a_pattern_of_one_digit_run_gives_a_length(pattern: str, digits: int | None) -> None:
    assert fixed_digits(pattern) == digits


@pytest.mark.parametrize(
    ("name", "cues"),
    [
        ("order_number", ["order number"]),
        ("account_id", ["account id", "account number"]),
        ("policy_no", ["policy no", "policy number"]),
        ("zip", ["zip"]),
        ("a_very_long_argument_name", []),
        ("line2", []),
    ],
)
def test_an_arguments_name_is_said_as_words(name: str, cues: list[str]) -> None:
    assert cues_of(name) == cues


def test_lengths_come_from_the_declared_tools_arguments() -> None:
    lookup = declared_tool(
        "lookup_order",
        {"name": "order_number", "type": "string", "max_length": 8, "pattern": r"\d{8}", "required": True},
        {"name": "member_id", "type": "integer", "minimum": 100000, "maximum": 999999},
        {"name": "note", "type": "string", "max_length": 40},
        {"name": "quantity", "type": "integer", "minimum": 1, "maximum": 99},
    )
    assert lengths_from_tools(schemas(lookup)) == {"order number": 8, "member id": 6, "member number": 6}


def test_a_cue_two_tools_disagree_on_is_left_out() -> None:
    first = declared_tool("first", digit_run("order_number", 8))
    second = declared_tool("second", digit_run("order_number", 9))
    again = declared_tool("again", digit_run("order_number", 8))
    assert lengths_from_tools(schemas(first, second)) == {}
    assert lengths_from_tools(schemas(first, again)) == {"order number": 8}


def test_the_cues_read_are_bounded() -> None:
    tools = [
        declared_tool(f"tool_{index}", digit_run(f"code_{letter}", 5))
        for index, letter in enumerate("abcdefghijklmnopqrst")
    ]
    assert len(lengths_from_tools(schemas(*tools))) == MAX_TOOL_CUES


def test_bad_schemas_give_nothing_rather_than_an_error() -> None:
    odd: list[dict[str, Any]] = [
        {},
        {"function": {}},
        {"function": {"parameters": []}},
        {"function": {"parameters": {"properties": {"order_number": "text"}}}},
        {"function": {"parameters": {"properties": {"order_number": {"type": "integer", "minimum": 1.5}}}}},
    ]
    assert lengths_from_tools(odd) == {}


def test_a_number_of_a_tools_length_is_finished() -> None:
    """What the session does with them: a number read out to its tool's length is a statement."""
    lookup = declared_tool("lookup_order", digit_run("order_number", 8))
    lengths = known_lengths(lengths_from_tools(schemas(lookup)))
    assert transcript_hint("My order number is 7742 9160.", lengths) is Hint.STATEMENT
    assert transcript_hint("My order number is 7742.", lengths) is Hint.INCOMPLETE
