"""Tool schemas made safe for llama.cpp's grammar: patterns, formats, nullable fields, and nulls put back."""

from __future__ import annotations

import importlib.util
import json
import re
from typing import Any

import pytest

from agents.engines.local.grammar_schema import (
    MAX_GRAMMAR_REPEAT,
    grammar_schema,
    prompt_schema,
    tool_grammar,
    translate_pattern,
    with_nulls,
)

needs_converter = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python missing")

EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,180}\.[A-Za-z]{2,24}$"
STRICT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": r"^O-\d{5}$", "description": "order number"},
        "email": {"anyOf": [{"type": "string", "pattern": EMAIL, "maxLength": 254}, {"type": "null"}]},
        "since": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}], "description": "first day"},
        "site": {"type": ["string", "null"], "format": "uri"},
        "pattern": {"type": "string", "maxLength": 5000},
    },
    "required": ["order_id", "email", "since", "site", "pattern"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("pattern", "samples"),
    [
        (EMAIL, ["grace@example.com", "a.b+c@mail.example.org"]),
        (r"^\+[1-9][0-9]{6,14}$", ["+15550101"]),
        (r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", ["O-50001", "ACCT_1"]),
        (r"^(?:[^@\s]+@[^@\s]+\.[a-z]+)$", ["grace@example.com"]),
        (r"^\d+(\.\d{1,2})?$", ["12", "12.50"]),
        (r"^[\w.-]+$", ["a.b-c_d"]),
        (r"^(O|A)-\d{5}?$", ["O-12345"]),
    ],
)
def test_translated_patterns_keep_their_meaning_and_lose_escapes_llama_cpp_rejects(
    pattern: str, samples: list[str]
) -> None:
    translated = translate_pattern(pattern)
    assert translated is not None
    assert not re.search(r"\\[sdwSDW.+@]", translated)  # only \x.. escapes, which the grammar knows
    for sample in samples:
        assert re.fullmatch(pattern, sample) and re.fullmatch(translated, sample), sample


def test_negated_classes_and_dots_never_admit_a_raw_quote_or_backslash() -> None:
    """The grammar writes string contents raw, so a quote there would end the JSON string."""
    for pattern in (r"^[^@]+$", r"^.+$", r"^\S+$"):
        translated = translate_pattern(pattern)
        assert translated is not None
        assert re.fullmatch(pattern, 'a"b') and not re.fullmatch(translated, 'a"b')
        assert not re.fullmatch(translated, "a\\b")


@pytest.mark.parametrize(
    "pattern",
    [
        "abc",  # not anchored: a search, not a whole-value match
        r"^(?=a)a$",  # look-ahead
        r"^(?i)abc$",  # inline flag
        r"^\bword\b$",  # word boundary
        r"^(a)\1$",  # back-reference
        r"^[[:alpha:]]+$",  # POSIX class
        r'^"quoted"$',  # a quote in the value
        r"^[ -~]+$",  # a range over the quote
        r"^a{1,9999}$",  # a repeat beyond the bound
        "^" + "a" * 600 + "$",  # too long to translate
        r"^a^b$",  # an anchor inside
    ],
)
def test_patterns_beyond_the_subset_are_dropped(pattern: str) -> None:
    assert translate_pattern(pattern) is None


def test_nullable_fields_become_optional_with_their_description_kept() -> None:
    shown = prompt_schema(STRICT)
    assert shown["required"] == ["order_id", "pattern"]
    assert shown["properties"]["since"] == {"type": "string", "format": "date", "description": "first day"}
    assert shown["properties"]["site"] == {"type": "string", "format": "uri"}
    assert shown["properties"]["email"]["pattern"] == EMAIL  # the prompt keeps the real pattern as a hint
    assert STRICT["required"] == ["order_id", "email", "since", "site", "pattern"]  # the input is untouched


def test_the_grammar_schema_drops_what_the_converter_cannot_take() -> None:
    safe = grammar_schema(STRICT)
    props = safe["properties"]
    assert props["order_id"]["pattern"] == "^O-[0-9]{5}$"
    assert props["email"]["pattern"] == translate_pattern(EMAIL)
    assert props["since"]["format"] == "date"
    assert "format" not in props["site"]  # no grammar rule for uri
    assert props["pattern"] == {"type": "string"}  # a property named "pattern" survives; its long bound does not
    assert MAX_GRAMMAR_REPEAT < 5000
    assert "pattern" not in grammar_schema(STRICT, keep_patterns=False)["properties"]["order_id"]


def test_nulls_are_put_back_for_left_out_nullable_fields_at_any_depth() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "inner": {
                "type": "object",
                "properties": {"c": {"type": ["integer", "null"]}},
                "required": ["c"],
            },
            "items": {"type": "array", "items": {"type": "object", "properties": {"d": {"type": "null"}}}},
        },
    }
    value = {"a": "x", "inner": {}, "items": [{}, {"d": None}]}
    assert with_nulls(schema, value) == {"a": "x", "b": None, "inner": {"c": None}, "items": [{"d": None}, {"d": None}]}
    assert with_nulls(schema, "not an object") == "not an object"


@needs_converter
def test_tool_grammar_falls_back_until_llama_cpp_accepts_it() -> None:
    from llama_cpp.llama_grammar import JSON_GBNF

    seen: list[str] = []

    def rejects_patterns(grammar: str) -> bool:  # stands in for llama.cpp's parser
        seen.append(grammar)
        return "order-id-1 ::=" not in grammar

    grammar = tool_grammar(STRICT, rejects_patterns)
    assert len(seen) == 2 and grammar == seen[1] and "order_id" in grammar
    assert tool_grammar(STRICT, lambda grammar: False) == JSON_GBNF
    assert "email-kv" in tool_grammar(json.loads(json.dumps(STRICT)), lambda grammar: True)
