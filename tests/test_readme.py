"""The README's promises match the code: its settings table, its commands, and CI."""

from __future__ import annotations

import re
from pathlib import Path

from telephony.settings import Settings, settings_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_settings_table_is_the_one_the_code_prints() -> None:
    assert settings_table() in README


def test_every_setting_is_documented_in_its_docstring() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []


def test_every_variable_the_readme_mentions_exists() -> None:
    for name in re.findall(r"SWITCHBOARD_([A-Z0-9_]+)", README):
        assert name.lower() in Settings.model_fields, name


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README and "make demo" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "set -e" in ci
