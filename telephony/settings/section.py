"""The base of every settings section: `SWITCHBOARD_<FIELD NAME>` from the environment, frozen.

A section is the settings one part of the pod reads. Each loads alone (`switchboard speech` loads
only the speech service's sections, so it needs no Twilio token), and `Settings` joins them all.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Section(BaseSettings):
    """Fields are `SWITCHBOARD_<FIELD NAME>`; each says what it bounds in its docstring."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )
