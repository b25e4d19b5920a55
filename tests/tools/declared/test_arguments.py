"""Declared arguments: every one bounded or refused naming the field, compiled to a strict model
whose schema is closed (additionalProperties false) and whose validation matches the declaration."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from tools import ToolArguments
from tools.declared import ArgumentDeclaration, compile_arguments
from tools.declared.arguments import MAX_ENUM_VALUES, MAX_PATTERN_CHARS, MAX_STRING_CHARS
from tools.schema import strict_parameters

DECLARED: list[dict[str, Any]] = [
    {"name": "email", "type": "string", "max_length": 60, "pattern": r"[^@\s]+@[a-z.]+", "required": True},
    {"name": "count", "type": "integer", "minimum": 1, "maximum": 5},
    {"name": "amount", "type": "number", "minimum": 0, "maximum": 99.5},
    {"name": "paid", "type": "boolean"},
    {"name": "since", "type": "date", "earliest": "2020-01-01", "match": "range_start", "field": "created_at"},
    {"name": "at", "type": "datetime"},
    {"name": "status", "type": "enum", "values": ["open", "closed"], "description": "which ones"},
]


@pytest.fixture
def model() -> type[ToolArguments]:
    return compile_arguments("find_things", [ArgumentDeclaration.model_validate(item) for item in DECLARED])


def validate(model: type[ToolArguments], arguments: dict[str, Any]) -> ToolArguments:
    return model.model_validate_json(json.dumps(arguments))  # as the executor does


def test_the_compiled_model_is_strict_and_its_schema_closed(model: type[ToolArguments]) -> None:
    assert issubclass(model, ToolArguments)
    schema = strict_parameters(model)
    assert schema["additionalProperties"] is False
    assert schema["required"] == [item["name"] for item in DECLARED]
    properties = schema["properties"]
    assert properties["email"] == {"type": "string", "maxLength": 60, "pattern": r"^(?:[^@\s]+@[a-z.]+)$"}
    assert {"type": "null"} in properties["count"]["anyOf"]  # optional: required but nullable
    assert properties["count"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert properties["status"]["anyOf"][0]["enum"] == ["open", "closed"]
    assert properties["status"]["description"] == "which ones"


def test_valid_arguments_are_typed_and_optional_ones_default_to_none(model: type[ToolArguments]) -> None:
    arguments = validate(model, {"email": "ada@example.com", "since": "2024-02-03", "at": "2025-01-01T10:00:00"})
    assert arguments.email == "ada@example.com"  # type: ignore[attr-defined]
    assert arguments.since == date(2024, 2, 3)  # type: ignore[attr-defined]
    assert arguments.at == datetime(2025, 1, 1, 10, tzinfo=UTC)  # type: ignore[attr-defined]  # naive: UTC
    assert arguments.count is None and arguments.status is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({}, "email"),
        ({"email": "not an address"}, "email"),
        ({"email": "ada@example.com\n"}, "email"),  # a full match: no trailing newline
        ({"email": "a" * 50 + "@example.com"}, "email"),
        ({"email": "ada@example.com", "count": "2"}, "count"),  # strict: no numbers in strings
        ({"email": "ada@example.com", "count": True}, "count"),
        ({"email": "ada@example.com", "count": 6}, "count"),
        ({"email": "ada@example.com", "amount": 100}, "amount"),
        ({"email": "ada@example.com", "paid": "yes"}, "paid"),
        ({"email": "ada@example.com", "since": "2019-12-31"}, "since"),
        ({"email": "ada@example.com", "at": "1900-01-01T00:00:00Z"}, "at"),
        ({"email": "ada@example.com", "status": "lost"}, "status"),
        ({"email": "ada@example.com", "customer_id": "C-1002"}, "customer_id"),
    ],
)
def test_invalid_arguments_are_refused_by_field(
    model: type[ToolArguments], arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        validate(model, arguments)
    assert field in {error["loc"][0] for error in refused.value.errors()}


def test_a_prefix_argument_needs_three_characters() -> None:
    declared = ArgumentDeclaration(name="name", type="string", max_length=30, match="prefix")
    model = compile_arguments("by_name", [declared])
    assert validate(model, {"name": "Lov"}).name == "Lov"  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        validate(model, {"name": "Lo"})


REFUSED = [
    ({"type": "string"}, "max_length"),
    ({"type": "string", "max_length": MAX_STRING_CHARS + 1}, "max_length"),
    ({"type": "string", "max_length": 10, "pattern": "a" * (MAX_PATTERN_CHARS + 1)}, "pattern"),
    ({"type": "string", "max_length": 10, "pattern": "([a-z]"}, "pattern"),
    ({"type": "string", "max_length": 10, "pattern": r"(?=a)\w+"}, "pattern"),  # look-ahead: not linear time
    ({"type": "string", "max_length": 10, "pattern": r"(a)\1"}, "pattern"),
    ({"type": "integer"}, "minimum"),
    ({"type": "integer", "minimum": 1}, "maximum"),
    ({"type": "integer", "minimum": 1.5, "maximum": 3}, "minimum"),
    ({"type": "number", "minimum": 5, "maximum": 1}, "maximum"),
    ({"type": "number", "minimum": 0, "maximum": 2**60}, "maximum"),
    ({"type": "blob"}, "type"),
    ({"type": "enum"}, "values"),
    ({"type": "enum", "values": [str(n) for n in range(MAX_ENUM_VALUES + 1)]}, "values"),
    ({"type": "enum", "values": ["a", "a"]}, "values"),
    ({"type": "date", "latest": "2200-01-01"}, "latest"),
    ({"type": "boolean", "max_length": 3}, "max_length"),
    ({"type": "integer", "minimum": 0, "maximum": 9, "match": "prefix"}, "match"),
    ({"type": "string", "max_length": 9, "match": "range_start"}, "match"),
    ({"type": "boolean", "field": "$where"}, "field"),
    ({"type": "boolean", "field": "a.b"}, "field"),
    ({"type": "boolean", "name": "Bad Name"}, "name"),
    ({"type": "boolean", "surprise": 1}, "surprise"),
]


@pytest.mark.parametrize(("declared", "field"), REFUSED, ids=[f"{field}-{n}" for n, (_, field) in enumerate(REFUSED)])
def test_an_unbounded_or_unknown_argument_is_refused_naming_the_field(declared: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ArgumentDeclaration.model_validate({"name": "thing", **declared})
    assert field in {error["loc"][0] for error in refused.value.errors()}


def test_a_prefix_argument_shorter_than_three_characters_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        ArgumentDeclaration(name="name", type="string", max_length=2, match="prefix")
    assert refused.value.errors()[0]["loc"] == ("match",)
