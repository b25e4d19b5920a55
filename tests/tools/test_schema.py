"""OpenAI tool schemas in strict mode, generated from the argument models."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field

from db import BusinessData, SafeQuery, in_memory
from tools import BUILTIN, Tool, ToolArguments, builtin_tools, strict_parameters, tool_schema


def _objects(node: Any) -> list[dict[str, Any]]:
    """Every object schema inside `node`."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += _objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value)
    return found


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in _keys(value)}
    if isinstance(node, list):
        return {key for value in node for key in _keys(value)}
    return set()


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_schemas_are_strict(name: str) -> None:
    [tool] = builtin_tools(BusinessData(SafeQuery(in_memory())), [name])
    schema = tool_schema(tool)
    assert schema["type"] == "function"
    assert schema["function"]["name"] == name and schema["function"]["strict"] is True
    assert schema["function"]["description"]
    parameters = schema["function"]["parameters"]
    assert parameters["type"] == "object"
    for obj in _objects(parameters):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    assert not _keys(parameters) & {"$ref", "$defs", "default", "title"}


class Window(ToolArguments):
    start: str
    end: str | None = None


class Nested(ToolArguments):
    """A model with a nested model and a list, to check refs are inlined and closed."""

    windows: list[Window] = Field(max_length=3)
    note: str = "x"
    count: int | None = None


def test_nested_models_are_inlined_closed_and_optional_fields_nullable() -> None:
    parameters = strict_parameters(Nested)
    assert parameters["required"] == ["windows", "note", "count"]
    window = parameters["properties"]["windows"]["items"]
    assert window["additionalProperties"] is False and window["required"] == ["start", "end"]
    assert window["properties"]["end"]["anyOf"][1] == {"type": "null"}
    assert parameters["properties"]["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert parameters["properties"]["count"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]


def test_tools_need_strict_argument_models_and_plain_names() -> None:
    from pydantic import BaseModel

    class Loose(BaseModel):
        a: int

    async def handler(args: Any, context: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(TypeError):
        Tool("loose", "d", Loose, handler)  # type: ignore[type-var]
    with pytest.raises(ValueError):
        Tool("Find Customer", "d", Window, handler)
    with pytest.raises(ValueError):
        Tool("t", "d", Window, handler, timeout_s=0)
