"""Numbers' lengths read from the agent's own tools: an argument `order_number` that must match
`\\d{8}` says a caller's order number has 8 digits, so a turn that reads one out to its length is
finished, and the end-of-turn rule need not wait for more digits (`end_of_turn.known_lengths`).

The agent's `number_lengths` win over what is read here; a cue two tools give different lengths is
left out (the turn then waits as for any number of unknown length).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MAX_TOOL_CUES = 16
"""Most cues read from one agent's tools (the same bound as `AgentConfig.number_lengths`)."""
MAX_DIGITS = 19
"""Longest number a cue may give (a card's 19 digits); a longer fixed length is not a spoken number."""
_FIXED_DIGITS = re.compile(r"(?:\\d|\[0-9\])\{(\d{1,2})\}")
_CUE = re.compile(r"^[a-z]+( [a-z]+){0,3}$")
_IDENTIFIER_SUFFIXES = ("id", "no", "num", "nr")
"""A name's last word that callers say as "number" ("account_id": "account number")."""


def fixed_digits(pattern: str) -> int | None:
    """The length of a pattern that matches only a run of exactly that many digits (`\\d{8}`,
    `^[0-9]{8}$`, `^(?:\\d{8})$`, as pydantic writes a full match); None for any other pattern."""
    body = pattern
    while True:
        stripped = _unwrap(body)
        if stripped == body:
            break
        body = stripped
    match = _FIXED_DIGITS.fullmatch(body)
    if match is None:
        return None
    digits = int(match.group(1))
    return digits if 1 <= digits <= MAX_DIGITS else None


def _unwrap(pattern: str) -> str:
    if pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[1:-1]
    if pattern.startswith("(?:") and pattern.endswith(")") and _closes_at_end(pattern):
        return pattern[3:-1]
    return pattern


def _closes_at_end(pattern: str) -> bool:
    """The group opened at the start closes at the last character (not "(?:a)|(?:b)")."""
    depth, index = 0, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2  # an escaped character opens and closes nothing
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return index == len(pattern) - 1
        index += 1
    return False


def _integer_digits(node: Mapping[str, Any]) -> int | None:
    """An integer whose bounds are exactly the numbers of one length (10000000..99999999)."""
    low, high = node.get("minimum"), node.get("maximum")
    if not isinstance(low, int) or not isinstance(high, int) or low < 1:
        return None
    digits = len(str(high))
    if low == 10 ** (digits - 1) and high == 10**digits - 1 and digits <= MAX_DIGITS:
        return digits
    return None


def _property_digits(node: Mapping[str, Any]) -> int | None:
    for option in node.get("anyOf", ()):  # optional arguments: the value or null
        if isinstance(option, Mapping) and (found := _property_digits(option)) is not None:
            return found
    if node.get("type") == "string" and isinstance(node.get("pattern"), str):
        return fixed_digits(node["pattern"])
    if node.get("type") == "integer":
        return _integer_digits(node)
    return None


def cues_of(argument: str) -> list[str]:
    """What a caller says before the number an argument takes: its name in words ("order_number":
    "order number"), and for an identifier suffix also with "number" ("account_id": "account
    number" too)."""
    words = argument.lower().split("_")
    cues = [" ".join(words)]
    if len(words) > 1 and words[-1] in _IDENTIFIER_SUFFIXES:
        cues.append(" ".join([*words[:-1], "number"]))
    return [cue for cue in cues if _CUE.match(cue) and len(cue) <= 40]


def lengths_from_tools(schemas: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Known lengths by cue, from the chat API's `tools` list (`ToolExecutor.schemas()`): every
    argument that takes exactly N digits gives its cues length N; at most `MAX_TOOL_CUES`."""
    found: dict[str, set[int]] = {}
    for schema in schemas:
        parameters = schema.get("function", {}).get("parameters", {})
        properties = parameters.get("properties", {}) if isinstance(parameters, Mapping) else {}
        for name, node in properties.items():
            digits = _property_digits(node) if isinstance(node, Mapping) else None
            if digits is None:
                continue
            for cue in cues_of(name):
                found.setdefault(cue, set()).add(digits)
    agreed = {cue: lengths.pop() for cue, lengths in sorted(found.items()) if len(lengths) == 1}
    return dict(list(agreed.items())[:MAX_TOOL_CUES])
