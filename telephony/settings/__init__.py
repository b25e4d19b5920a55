"""The pod's settings, read from `SWITCHBOARD_*` environment variables, in sections.

Every knob has a default that works on a laptop; the only required value is the Twilio auth
token, because without it no webhook can be trusted. A section (edge.py, health.py, engines.py,
data.py, admin.py) holds what one part of the pod reads and loads alone; `Settings` joins them all,
so code reads each field flat (`settings.max_concurrent_calls`). `switchboard speech` loads only
`SpeechServiceSettings`, so it starts without a Twilio token.
"""

from __future__ import annotations

from telephony.settings.admin import (
    API_RESOURCES,
    API_SCOPES,
    MIN_API_KEY_CHARS,
    AdminSettings,
    CampaignSettings,
    parse_api_keys,
)
from telephony.settings.data import DatabaseSettings, RecordingStoreSettings, ToolSettings
from telephony.settings.edge import (
    AudioSettings,
    CallOutcomeSettings,
    LoggingSettings,
    MediaStreamSettings,
    Resampler,
    RoutingSettings,
    ServerSettings,
    TwilioSettings,
)
from telephony.settings.engines import (
    AgentSettings,
    ListeningSettings,
    LlmSettings,
    RemoteSpeechSettings,
    SpeechServerSettings,
    SpeechToTextSettings,
    TextToSpeechSettings,
)
from telephony.settings.health import PodHealthSettings
from telephony.settings.secret_checks import InsecureSecrets, insecure_secrets, require_secure_secrets
from telephony.settings.section import Section

# pydantic gathers fields from the last base to the first, so sections are listed last to first:
# `model_fields` (and the README's table) then read top-down, from `host` to `log_level`.


class SpeechServiceSettings(
    LoggingSettings, SpeechServerSettings, TextToSpeechSettings, SpeechToTextSettings, ListeningSettings
):
    """What `switchboard speech` reads: the engines' models and bounds, where it listens, its logs."""


class Settings(
    SpeechServiceSettings,
    LoggingSettings,
    CampaignSettings,
    AdminSettings,
    ToolSettings,
    RecordingStoreSettings,
    DatabaseSettings,
    CallOutcomeSettings,
    SpeechServerSettings,
    RemoteSpeechSettings,
    TextToSpeechSettings,
    LlmSettings,
    SpeechToTextSettings,
    ListeningSettings,
    AgentSettings,
    AudioSettings,
    MediaStreamSettings,
    PodHealthSettings,
    RoutingSettings,
    TwilioSettings,
    ServerSettings,
):
    """Pod configuration: every section. Each field is `SWITCHBOARD_<FIELD NAME>` in the environment."""


def settings_table() -> str:
    """Every setting as a Markdown table row: variable, default, meaning (the README's table)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.is_required():
            default = "(required)"
        elif field.default_factory is not None:
            default = repr(field.default_factory())  # type: ignore[call-arg]
        else:
            default = "(unset)" if field.default is None else str(field.default)
        meaning = " ".join((field.description or "").split()).replace("|", "/")
        rows.append(f"| `SWITCHBOARD_{name.upper()}` | `{default}` | {meaning} |")
    return "\n".join(rows)


__all__ = [
    "API_RESOURCES",
    "API_SCOPES",
    "MIN_API_KEY_CHARS",
    "AdminSettings",
    "AgentSettings",
    "AudioSettings",
    "CallOutcomeSettings",
    "CampaignSettings",
    "DatabaseSettings",
    "InsecureSecrets",
    "ListeningSettings",
    "LlmSettings",
    "LoggingSettings",
    "MediaStreamSettings",
    "PodHealthSettings",
    "RecordingStoreSettings",
    "RemoteSpeechSettings",
    "Resampler",
    "RoutingSettings",
    "Section",
    "ServerSettings",
    "Settings",
    "SpeechServerSettings",
    "SpeechServiceSettings",
    "SpeechToTextSettings",
    "TextToSpeechSettings",
    "ToolSettings",
    "TwilioSettings",
    "insecure_secrets",
    "parse_api_keys",
    "require_secure_secrets",
    "settings_table",
]
