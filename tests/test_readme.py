"""The README's promises match the code: its settings table, its commands, and CI."""

from __future__ import annotations

import re
from pathlib import Path

from telephony.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ROW = re.compile(r"^\| `SWITCHBOARD_([A-Z_]+)` \| `([^`]*)` \|", re.MULTILINE)


def shown_default(name: str) -> str:
    field = Settings.model_fields[name]
    if field.is_required():
        return "(required)"
    if field.default_factory is not None:
        return repr(field.default_factory())  # type: ignore[call-arg]
    return "(unset)" if field.default is None else str(field.default)


def test_settings_table_lists_every_setting_with_its_real_default() -> None:
    rows = {name.lower(): default for name, default in ROW.findall(README)}
    assert set(rows) == set(Settings.model_fields)
    for name, default in rows.items():
        assert default == shown_default(name), name


def test_every_variable_the_readme_mentions_exists() -> None:
    for name in re.findall(r"SWITCHBOARD_([A-Z_]+)", README):
        assert name.lower() in Settings.model_fields, name


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README and "make demo" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "set -e" in ci
