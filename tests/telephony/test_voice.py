"""Reading agent configs: every mistake in the file is named, none reaches a call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from telephony.app import create_app
from telephony.voice import AgentsFileError, read_agents_file
from tests.support.settings import make_settings


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "agents.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_reads_valid_agents_with_defaults(tmp_path: Path) -> None:
    [config] = read_agents_file(write(tmp_path, [{"id": "support", "greeting": "Hi!", "tools": ["find_customer"]}]))
    assert config.id == "support"
    assert config.greeting == "Hi!"
    assert config.max_tool_silence_ms == 1200


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "not valid JSON"),
        ({"id": "x"}, "Input should be a valid list"),
        ([{"id": "Not An Id"}], "String should match pattern"),
        ([{"id": "a", "greting": "typo"}], "Extra inputs are not permitted"),
        ([{"id": "a", "max_call_seconds": 1}], "greater than or equal to 10"),
        ([{"id": "a"}, {"id": "a"}], "appear more than once: a"),
    ],
)
def test_bad_agents_files_get_an_error_naming_the_problem(tmp_path: Path, content: object, message: str) -> None:
    with pytest.raises(AgentsFileError, match=message):
        read_agents_file(write(tmp_path, content))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AgentsFileError, match=r"agents\.json"):
        read_agents_file(tmp_path / "agents.json")


def test_the_pod_refuses_to_start_with_tools_but_no_database(tmp_path: Path) -> None:
    """Checked before any model loads, so a bad deploy fails in a second, not after a minute."""
    settings = make_settings(agents_file=write(tmp_path, [{"id": "support", "tools": ["find_customer"]}]))
    with pytest.raises(ValueError, match="SWITCHBOARD_MONGODB_URI is not set"), TestClient(create_app(settings)):
        pass
