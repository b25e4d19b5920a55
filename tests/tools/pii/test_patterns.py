"""Declared patterns: refused when they cannot run safely over call text, with the reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tools.pii import MAX_PATTERN_CHARS, PiiPattern


@pytest.mark.parametrize("pattern", [r"M-\d{6}", r"[A-Z]{2}\d{8}", r"(?:ab|cd){2,4}x", r"policy \w+"])
def test_a_bounded_pattern_is_accepted(pattern: str) -> None:
    assert PiiPattern(label="member id", pattern=pattern).compiled().pattern == pattern


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(", "not a valid regular expression"),
        (r"\d*", "matches the empty string"),
        ("a|", "matches the empty string"),
        (r"(a+)+b", "repeated group holds another repeat"),
        (r"(?:\w*\s?)*x", "repeated group holds another repeat"),
        (r"((a|b)+c){2,}", "repeated group holds another repeat"),
        ("a" * (MAX_PATTERN_CHARS + 1), "at most"),
    ],
)
def test_an_unsafe_pattern_is_refused_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        PiiPattern(label="member id", pattern=pattern)


@pytest.mark.parametrize("label", ["", "Member", "member_id", "x" * 40, "1st"])
def test_a_label_is_plain_lower_case_words(label: str) -> None:
    with pytest.raises(ValidationError):
        PiiPattern(label=label, pattern="x")
