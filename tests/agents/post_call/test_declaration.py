"""The post-call declaration: bounded, clear when wrong, and the strict tool it yields."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agents.config import AgentConfig
from agents.post_call import MAX_POST_CALL_FIELDS, PostCallConfig, arguments_model, tool_schema
from agents.post_call.declaration import MAX_SUMMARY_CHARS, MAX_TEXT_VALUE_CHARS, TOOL_NAME

DECLARED = PostCallConfig(
    summary=True,
    fields=[
        {"name": "reason_for_call", "description": "Why they called.", "kind": "text"},
        {"name": "resolved", "kind": "yes_no"},
        {"name": "order_total", "kind": "number"},
        {"name": "mood", "kind": "choice", "choices": ["happy", "neutral", "angry"]},
        {"name": "json", "kind": "text"},  # would shadow a pydantic method as a Python name
    ],
)


def test_an_agent_has_post_call_off_by_default() -> None:
    config = AgentConfig(id="support")
    assert not config.post_call.enabled and config.post_call.fields == []
    assert AgentConfig(id="support", post_call={"summary": True}).post_call.enabled


@pytest.mark.parametrize(
    ("post_call", "where", "message"),
    [
        ({"fields": [{"name": "Bad-Name"}]}, ("post_call", "fields", 0, "name"), "pattern"),
        ({"fields": [{"name": "x", "kind": "date"}]}, ("post_call", "fields", 0, "kind"), "text"),
        ({"fields": [{"name": "x", "kind": "choice", "choices": ["a"]}]}, ("post_call", "fields", 0), "at least 2"),
        ({"fields": [{"name": "x", "choices": ["a", "b"]}]}, ("post_call", "fields", 0), "only a choice field"),
        ({"fields": [{"name": "x", "kind": "choice", "choices": ["a", "a"]}]}, ("post_call", "fields", 0), "repeat"),
        ({"fields": [{"name": "x"}, {"name": "x"}]}, ("post_call", "fields"), "declared twice"),
        ({"fields": [{"name": f"f{i}"} for i in range(MAX_POST_CALL_FIELDS + 1)]}, ("post_call", "fields"), "at most"),
        ({"fields": [{"name": "x", "description": "d" * 301}]}, ("post_call", "fields", 0, "description"), "300"),
        ({"summary": True, "extra": 1}, ("post_call", "extra"), "not permitted"),
    ],
)
def test_a_bad_declaration_says_where_and_why(
    post_call: dict[str, object], where: tuple[object, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        AgentConfig(id="support", post_call=post_call)
    errors = caught.value.errors()
    assert errors[0]["loc"] == where, errors
    assert message in errors[0]["msg"], errors


def test_the_tool_is_strict_and_named_by_the_declaration() -> None:
    function = tool_schema(DECLARED)["function"]
    assert function["name"] == TOOL_NAME and function["strict"] is True
    parameters = function["parameters"]
    assert parameters["required"] == ["summary", "fields"] and parameters["additionalProperties"] is False
    fields = parameters["properties"]["fields"]
    assert fields["required"] == ["reason_for_call", "resolved", "order_total", "mood", "json"]
    assert fields["additionalProperties"] is False
    kinds = {name: [option.get("type") for option in prop["anyOf"]] for name, prop in fields["properties"].items()}
    assert kinds["resolved"] == ["boolean", "null"] and kinds["order_total"] == ["number", "null"]
    assert fields["properties"]["mood"]["anyOf"][0]["enum"] == ["happy", "neutral", "angry"]
    assert fields["properties"]["reason_for_call"]["description"] == "Why they called."
    json.dumps(function)  # plain JSON for the request


def test_the_arguments_keep_their_kinds_and_are_bounded() -> None:
    model = arguments_model(DECLARED)
    good = {
        "summary": "s" * (MAX_SUMMARY_CHARS + 50),
        "fields": {"reason_for_call": "r" * 9000, "resolved": True, "order_total": 3, "mood": "angry", "json": None},
    }
    checked = model.model_validate_json(json.dumps(good)).model_dump(by_alias=True)
    assert len(checked["summary"]) == MAX_SUMMARY_CHARS
    assert len(checked["fields"]["reason_for_call"]) == MAX_TEXT_VALUE_CHARS
    assert checked["fields"]["order_total"] == 3.0 and checked["fields"]["json"] is None
    for wrong in ({"resolved": "yes"}, {"order_total": "12"}, {"mood": "sad"}, {"unknown": 1}, {"order_total": 1e999}):
        with pytest.raises(ValidationError):
            model.model_validate_json(json.dumps({"summary": "s", "fields": wrong}))


def test_a_summary_only_declaration_has_no_fields_object() -> None:
    parameters = tool_schema(PostCallConfig(summary=True))["function"]["parameters"]
    assert list(parameters["properties"]) == ["summary"]
