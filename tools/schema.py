"""OpenAI tool schemas in strict mode, generated from the argument models.

Strict mode (`"strict": true`) asks the serving side to constrain decoding to the schema, which
requires `additionalProperties: false` on every object and every property listed in `required`;
optional fields are therefore required-but-nullable. vLLM honours it with guided decoding; a server
that does not is still covered, because the executor validates every call against the same model.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from tools.tool import Tool

_DROPPED = {"title", "default"}


def strict_parameters(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema made strict: refs inlined, objects closed, every property required."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return _strict(schema, definitions)


def tool_schema(tool: Tool[Any]) -> dict[str, Any]:
    """One entry of the chat API's `tools` list."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": strict_parameters(tool.arguments),
            "strict": True,
        },
    }


def _strict(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    node = {key: value for key, value in node.items() if key not in _DROPPED}
    ref = node.pop("$ref", None)
    if ref is not None:
        node = {**_strict(copy.deepcopy(definitions[ref.rsplit("/", 1)[-1]]), definitions), **node}
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            node[key] = [_strict(option, definitions) for option in node[key]]
    if "items" in node:
        node["items"] = _strict(node["items"], definitions)
    if node.get("type") == "object":
        properties = node.get("properties", {})
        required = set(node.get("required", []))
        closed = {}
        for name, prop in properties.items():
            prop = _strict(prop, definitions)
            closed[name] = prop if name in required or _nullable(prop) else _or_null(prop)
        node["properties"] = closed
        node["required"] = list(closed)
        node["additionalProperties"] = False
    return node


def _nullable(node: dict[str, Any]) -> bool:
    return node.get("type") == "null" or any(option.get("type") == "null" for option in node.get("anyOf", []))


def _or_null(node: dict[str, Any]) -> dict[str, Any]:
    description = node.pop("description", None)
    wrapped: dict[str, Any] = {"anyOf": [node, {"type": "null"}]}
    if description:
        wrapped["description"] = description
    return wrapped
