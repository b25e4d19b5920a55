"""Patterns an operator declares as personal data (a member id, a policy number), checked once.

An agent config carries them; they run over every caller utterance, tool result and log line of
its calls, so a pattern that cannot be run safely is refused when the config is written: too
long, not a valid regular expression, one that matches the empty string (it would redact
everything), or a quantified group that itself holds a quantifier (`(a+)+`: the backtracking that
can hang a process on a line of text).
"""

from __future__ import annotations

import re
from re import _parser as sre_parse  # type: ignore[attr-defined]  # the stdlib's own parser, to read a pattern's shape
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PII_PATTERNS = 16
"""Bound on declared patterns per agent."""
MAX_PATTERN_CHARS = 200
"""Bound on one pattern's length."""
LABEL_PATTERN = r"^[a-z][a-z ]{0,31}$"
"""A label is what the caller's value becomes for the model: "[member id 1]"."""

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", None)} - {None}


class PiiPattern(BaseModel):
    """One declared kind of personal data: what to call it, and the regular expression that finds it."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    label: str = Field(pattern=LABEL_PATTERN)
    """Lower-case words naming the value ("member id"); the model sees "[member id 1]"."""
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_CHARS)
    """A Python regular expression (matched case-sensitively, anywhere in the text)."""

    @field_validator("pattern")
    @classmethod
    def _safe_to_run(cls, pattern: str) -> str:
        check_pattern(pattern)
        return pattern

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


def check_pattern(pattern: str) -> None:
    """ValueError naming what makes `pattern` unsafe to run over call text."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"a pattern has at most {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"not a valid regular expression: {str(exc)[:120]}") from None
    if compiled.search("") is not None:
        raise ValueError("the pattern matches the empty string (it would redact everything)")
    if _nested_repeat(parsed, inside_repeat=False):
        raise ValueError("a repeated group holds another repeat (like (a+)+): it can backtrack without end")


def _nested_repeat(items: Any, *, inside_repeat: bool) -> bool:
    """True when a repeat (`*`, `+`, `{m,n}` past 1) sits inside another repeat."""
    for op, value in items:
        if op in _REPEATS:
            _low, high, body = value
            repeats = high is sre_parse.MAXREPEAT or high > 1
            if repeats and inside_repeat:
                return True
            if _nested_repeat(body, inside_repeat=inside_repeat or repeats):
                return True
        elif op is sre_parse.SUBPATTERN:
            if _nested_repeat(value[-1], inside_repeat=inside_repeat):
                return True
        elif op is sre_parse.BRANCH:
            if any(_nested_repeat(branch, inside_repeat=inside_repeat) for branch in value[1]):
                return True
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            if _nested_repeat(value[1], inside_repeat=inside_repeat):
                return True
    return False
