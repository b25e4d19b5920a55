"""Agent configs: validated and bounded once, so sessions can trust them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.config import AgentConfig


def test_defaults_make_a_working_agent() -> None:
    config = AgentConfig(id="support")
    assert config.greeting and config.filler_phrases and config.apology
    assert config.tool_choice == "auto"


@pytest.mark.parametrize(
    "values",
    [
        {"id": "Support Line"},
        {"id": "a", "unknown_field": 1},
        {"id": "a", "system_prompt": "x" * 8001},
        {"id": "a", "tools": ["t"] * 33},
        {"id": "a", "filler_phrases": []},
        {"id": "a", "max_tool_silence_ms": 50},
        {"id": "a", "history_budget_chars": 10},
        {"id": "a", "tool_choice": "sometimes"},
        {"id": "a", "retention_days": 0},
        {"id": "a", "retention_days": 3651},
        {"id": "a", "pii_patterns": [{"label": "member id", "pattern": r"(\d+)+"}]},
        {"id": "a", "pii_patterns": [{"label": f"id {chr(97 + n)}", "pattern": "x"} for n in range(17)]},
        {"id": "a", "recording_consent": "x" * 301},
        {"id": "a", "recording_consent": ""},
        {"id": "a", "number_lengths": {"Order Number": 8}},  # cues are lower-case words
        {"id": "a", "number_lengths": {"order  number": 8}},
        {"id": "a", "number_lengths": {"order number": 0}},
        {"id": "a", "number_lengths": {"order number": 20}},
        {"id": "a", "number_lengths": {f"cue {chr(97 + n)}": 4 for n in range(17)}},
    ],
)
def test_out_of_bounds_configs_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AgentConfig(**values)  # type: ignore[arg-type]


def test_number_lengths_take_cue_words_and_digit_counts() -> None:
    config = AgentConfig(id="a", number_lengths={"order number": 8, "member id": 9})
    assert config.number_lengths == {"order number": 8, "member id": 9}


def test_configs_are_immutable() -> None:
    config = AgentConfig(id="support")
    with pytest.raises(ValidationError):
        config.greeting = "changed"  # type: ignore[misc]


def test_calls_are_not_recorded_unless_the_agent_says_so() -> None:
    assert AgentConfig(id="support").record is False and AgentConfig(id="support").recording_consent is None
    config = AgentConfig(id="support", record=True, recording_consent="This call is recorded.")
    assert config.record and config.recording_consent == "This call is recorded."
