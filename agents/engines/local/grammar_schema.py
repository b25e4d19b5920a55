"""Tool schemas made safe for llama.cpp's grammar, and the arguments made whole again afterwards.

llama.cpp constrains tool arguments with a GBNF grammar built from the JSON schema. Three things
in the strict schemas the tools layer writes go wrong there:
- a regex `pattern` with escapes such as `\\s` or `\\.` turns into a grammar llama.cpp rejects, and
  llama-cpp-python then uses the missing grammar and the process segfaults. Patterns are therefore
  translated into a form whose escapes the grammar understands, or dropped when they use anything
  beyond a small regex subset. Dropping is safe: the executor still validates the real pattern.
- formats the converter has no rule for are dropped, and long length bounds (which it unrolls into
  one rule per character) are left to the executor.
- strict mode lists optional fields as required-but-null, which makes a small model invent values
  for them; for the grammar they become optional, and `with_nulls` puts the nulls back before the
  executor sees the call.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

MAX_GRAMMAR_REPEAT = 256
"""Largest regex `{m,n}` count or string length kept in a grammar (each unit becomes a rule)."""
MAX_PATTERN_CHARS = 512
"""Longer patterns are not translated at all (the executor still checks them)."""
GRAMMAR_FORMATS = frozenset({"date", "time", "date-time", "uuid"})
"""String formats llama-cpp-python's schema converter has rules for; others are dropped."""

_CLASS_SHORTHANDS = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " "}
"""Regex shorthands as class ranges. Whitespace is only the space: control characters cannot stand
raw in a JSON string, so the grammar is (harmlessly) narrower than the regex there."""
_NOT_IN_JSON = r"\x22\x5C\x00-\x1F"
"""What a negated class or `.` must also exclude for the string to stay valid JSON: quote,
backslash and control characters (the grammar writes string contents raw)."""
_LITERAL_KEYS = frozenset({"enum", "const", "default", "examples", "required"})
_SPECIAL_OUTSIDE = frozenset("|.()[]{}*+?")


# -- patterns -------------------------------------------------------------------------------------


def _hex(char: str) -> str | None:
    """A character as a grammar escape (`\\x2E`), for ASCII only."""
    return f"\\x{ord(char):02X}" if ord(char) < 128 else None


def _translate_class(pattern: str, start: int) -> tuple[str, int] | None:
    """The character class opening at `start`, rewritten with grammar-safe escapes, and where it ends."""
    i = start + 1
    out = "["
    negated = pattern[i : i + 1] == "^"
    if negated:
        out += "^"
        i += 1
    if pattern[i : i + 1] == "]":
        return None  # a leading literal "]" reads differently in the two syntaxes
    first = True
    while i < len(pattern) and pattern[i] != "]":
        char = pattern[i]
        if char == "\\":
            nxt = pattern[i + 1 : i + 2]
            if not nxt:
                return None
            if nxt in _CLASS_SHORTHANDS:
                out += _CLASS_SHORTHANDS[nxt]
            elif nxt.isalnum() or nxt in '"\\':
                return None  # \D \S \W \b \p{...}, back-references, \x and \u: not translated
            else:
                escaped = _hex(nxt)
                if escaped is None:
                    return None
                out += escaped
            i += 2
        elif char == "[":
            return None  # POSIX classes and nested sets
        elif char == "-" and (first or pattern[i + 1 : i + 2] == "]"):
            out += "\\x2D"
            i += 1
        elif char == '"':
            return None  # a raw quote would end the JSON string
        elif pattern[i + 1 : i + 2] == "-" and pattern[i + 2 : i + 3] not in ("", "]"):
            last = pattern[i + 2]
            if last == "\\" or (not negated and any(ord(char) <= c <= ord(last) for c in (0x22, 0x5C))):
                return None  # a range over the quote or the backslash (or with an escaped end)
            out += pattern[i : i + 3]
            i += 3
        else:
            out += char
            i += 1
        first = False
    if i >= len(pattern):
        return None
    return out + (_NOT_IN_JSON if negated else "") + "]", i + 1


def _translate_quantifier(pattern: str, start: int) -> tuple[str, int] | None:
    """A `{m}`, `{m,}` or `{m,n}` quantifier within `MAX_GRAMMAR_REPEAT`, and where it ends."""
    end = pattern.find("}", start)
    if end < 0:
        return None
    body = pattern[start + 1 : end]
    bounds = body.split(",")
    if len(bounds) > 2 or not bounds[0].isdigit() or (len(bounds) == 2 and bounds[1] and not bounds[1].isdigit()):
        return None
    if any(int(b) > MAX_GRAMMAR_REPEAT for b in bounds if b):
        return None
    return "{" + body + "}", end + 1


def translate_pattern(pattern: str) -> str | None:
    """`pattern` rewritten so the schema converter makes a grammar llama.cpp accepts, or None when
    it uses more than the subset handled here (anchored; literals, classes, groups, alternation,
    greedy quantifiers; the escapes \\d \\w \\s and escaped punctuation)."""
    if len(pattern) > MAX_PATTERN_CHARS or not pattern.startswith("^") or not pattern.endswith("$"):
        return None
    if pattern.endswith("\\$") and not pattern.endswith("\\\\$"):
        return None
    body, i, out = pattern[1:-1], 0, ""
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1 : i + 2]
            if nxt in _CLASS_SHORTHANDS:
                out += f"[{_CLASS_SHORTHANDS[nxt]}]"
            elif nxt in ("D", "W", "S"):
                out += f"[^{_CLASS_SHORTHANDS[nxt.lower()]}{_NOT_IN_JSON}]"
            elif nxt and not nxt.isalnum() and nxt not in '"\\' and _hex(nxt):
                out += f"[{_hex(nxt)}]"
            else:
                return None
            i += 2
        elif char == "[":
            translated = _translate_class(body, i)
            if translated is None:
                return None
            piece, i = translated
            out += piece
        elif char == "{":
            quantified = _translate_quantifier(body, i)
            if quantified is None:
                return None
            piece, i = quantified
            out += piece
        elif char == "(":
            if body[i + 1 : i + 3] == "?:":
                i += 3
            elif body[i + 1 : i + 2] == "?":
                return None  # look-arounds, named groups, inline flags
            else:
                i += 1
            out += "("
        elif char == ".":
            out += f"[^{_NOT_IN_JSON}]"
            i += 1
        elif char in '^$"':
            return None
        else:
            out += char
            i += 1
        if out and out[-1] in "*+?}" and body[i : i + 1] == "?":
            i += 1  # a lazy quantifier matches the same strings
    return "^" + out + "$"


# -- schemas --------------------------------------------------------------------------------------


def _non_null(node: dict[str, Any]) -> dict[str, Any] | None:
    """For `anyOf: [X, null]` (or `type: [X, "null"]`), X with the node's description; else None."""
    options = node.get("anyOf")
    if isinstance(options, list):
        rest = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(rest) == 1 and len(rest) < len(options) and isinstance(rest[0], dict):
            inner = {**rest[0]}
            if "description" in node and "description" not in inner:
                inner["description"] = node["description"]
            return inner
    kind = node.get("type")
    if isinstance(kind, list) and "null" in kind:
        others = [k for k in kind if k != "null"]
        if len(others) == 1:
            return {**node, "type": others[0]}
    return None


def _nullable(node: Any) -> bool:
    return isinstance(node, dict) and (node.get("type") == "null" or _non_null(node) is not None)


def prompt_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as the model reads it in the prompt: nullable fields optional instead of required."""
    return _walk(copy.deepcopy(schema), for_grammar=False)


def grammar_schema(schema: dict[str, Any], *, keep_patterns: bool = True) -> dict[str, Any]:
    """The schema for the grammar: nullable fields optional, patterns translated (or dropped; all of
    them with `keep_patterns=False`), unknown formats and long length bounds dropped."""
    return _walk(copy.deepcopy(schema), for_grammar=True, keep_patterns=keep_patterns)


def _walk(node: Any, *, for_grammar: bool, keep_patterns: bool = True) -> Any:
    if isinstance(node, list):
        return [_walk(item, for_grammar=for_grammar, keep_patterns=keep_patterns) for item in node]
    if not isinstance(node, dict):
        return node
    walked: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):  # a map of names, not a schema
            walked[key] = {
                name: _walk(prop, for_grammar=for_grammar, keep_patterns=keep_patterns) for name, prop in value.items()
            }
        elif key in _LITERAL_KEYS:
            walked[key] = value
        else:
            walked[key] = _walk(value, for_grammar=for_grammar, keep_patterns=keep_patterns)
    node = walked
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = [name for name in node.get("required", []) if name in properties]
        for name, prop in list(properties.items()):
            inner = _non_null(prop) if isinstance(prop, dict) else None
            if inner is not None:
                properties[name] = inner
                required = [r for r in required if r != name]
        node["required"] = required
    if for_grammar:
        _make_grammar_safe(node, keep_patterns)
    return node


def _make_grammar_safe(node: dict[str, Any], keep_patterns: bool) -> None:
    if "pattern" in node:
        pattern = node.pop("pattern")
        translated = translate_pattern(pattern) if keep_patterns and isinstance(pattern, str) else None
        if translated is not None:
            node["pattern"] = translated
    if "format" in node and node["format"] not in GRAMMAR_FORMATS:
        node.pop("format")
    for key in ("maxLength", "minLength", "maxItems", "minItems"):
        value = node.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > MAX_GRAMMAR_REPEAT:
            node.pop(key, None)


# -- from schema to grammar -----------------------------------------------------------------------


def tool_grammar(schema: dict[str, Any], compiles: Callable[[str], bool]) -> str:
    """A GBNF grammar for `schema`'s arguments that `compiles` (llama.cpp's own parser) accepts:
    the grammar-safe schema, else the same without patterns, else any JSON object."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf  # optional extra: imported when used

    for keep_patterns in (True, False):
        try:
            grammar = json_schema_to_gbnf(json.dumps(grammar_schema(schema, keep_patterns=keep_patterns)))
        except Exception:  # the converter asserts on what it cannot express; try the plainer schema
            continue
        if compiles(grammar):
            return grammar
    return JSON_GBNF


def with_nulls(schema: dict[str, Any], value: Any) -> Any:
    """`value` with an explicit null for every nullable property the model left out, at any depth,
    so the strict argument model sees the shape its schema promised."""
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        out = dict(value)
        for name, prop in schema["properties"].items():
            if name not in out and _nullable(prop):
                out[name] = None
            elif name in out and isinstance(prop, dict):
                out[name] = with_nulls(_non_null(prop) or prop, out[name])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_nulls(schema["items"], item) for item in value]
    return value
