"""Database settings: bounds that must agree, and an immutable object."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from db import DbSettings


def test_defaults_work_on_a_laptop() -> None:
    settings = DbSettings()
    assert settings.uri == "mongodb://localhost:27017"
    assert settings.database == "switchboard"
    assert settings.default_limit <= settings.max_limit


@pytest.mark.parametrize(
    "overrides",
    [
        {"default_limit": 60, "max_limit": 50},
        {"max_limit": 0},
        {"max_result_bytes": 10},
        {"database": "a.b"},
        {"unknown_knob": 1},
    ],
)
def test_inconsistent_or_unknown_settings_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DbSettings(**overrides)  # type: ignore[arg-type]


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        DbSettings().max_limit = 10_000  # type: ignore[misc]


def test_every_field_says_what_it_bounds() -> None:
    assert all(field.description for field in DbSettings.model_fields.values())
