"""Settings from SWITCHBOARD_* environment variables."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from pydantic import ValidationError

from telephony.settings import Section, Settings, SpeechServiceSettings
from tests.support.settings import AUTH_TOKEN, make_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SWITCHBOARD_* variable from the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)


def test_numbers_from_json_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("SWITCHBOARD_NUMBERS", '{"+15550100": "echo", "+15550101": "sales"}')
    settings = Settings()  # type: ignore[call-arg]
    assert settings.numbers == {"+15550100": "echo", "+15550101": "sales"}
    assert settings.twilio_auth_token.get_secret_value() == AUTH_TOKEN


def test_other_fields_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("SWITCHBOARD_MAX_CONCURRENT_CALLS", "7")
    monkeypatch.setenv("SWITCHBOARD_PLAYOUT_LEAD_MS", "120")
    monkeypatch.setenv("SWITCHBOARD_BUSY_RESPONSE", "reject")
    settings = Settings()  # type: ignore[call-arg]
    assert settings.max_concurrent_calls == 7
    assert settings.playout_lead_ms == 120
    assert settings.busy_response == "reject"


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_numbers_env_var_means_no_numbers(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("SWITCHBOARD_NUMBERS", value)
    assert Settings().numbers == {}  # type: ignore[call-arg]


def test_numbers_default_to_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    assert Settings().numbers == {}  # type: ignore[call-arg]


def test_invalid_numbers_json_is_a_clear_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("SWITCHBOARD_NUMBERS", "+15550100=echo")
    with pytest.raises(ValidationError) as info:
        Settings()  # type: ignore[call-arg]
    errors = info.value.errors()
    assert [error["loc"] for error in errors] == [("numbers",)]
    assert "must be a JSON object" in errors[0]["msg"]
    assert '{"+15550100": "echo"}' in errors[0]["msg"]  # shows the expected shape


@pytest.mark.parametrize("value", ['["+15550100", "echo"]', '{"+15550100": 5}', '"echo"'])
def test_numbers_json_of_the_wrong_shape_is_rejected(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("SWITCHBOARD_NUMBERS", value)
    with pytest.raises(ValidationError) as info:
        Settings()  # type: ignore[call-arg]
    assert info.value.errors()[0]["loc"][0] == "numbers"


def test_numbers_as_json_string_in_code() -> None:
    assert make_settings(numbers='{"+15550102": "echo"}').numbers == {"+15550102": "echo"}


def test_missing_auth_token() -> None:
    with pytest.raises(ValidationError) as info:
        Settings()  # type: ignore[call-arg]
    errors = info.value.errors()
    assert [error["loc"] for error in errors] == [("twilio_auth_token",)]
    assert errors[0]["type"] == "missing"


def test_auth_token_is_not_shown_in_repr() -> None:
    assert AUTH_TOKEN not in repr(make_settings())


def test_frame_limit_must_exceed_message_limit() -> None:
    with pytest.raises(ValidationError, match="must be larger than ws_max_message_bytes"):
        make_settings(ws_max_message_bytes=100_000, ws_max_frame_bytes=100_000)
    with pytest.raises(ValidationError, match="must be larger than ws_max_message_bytes"):
        make_settings(ws_max_message_bytes=200_000, ws_max_frame_bytes=100_000)
    settings = make_settings(ws_max_message_bytes=100_000, ws_max_frame_bytes=100_001)
    assert settings.ws_max_frame_bytes == 100_001


def test_frame_limit_check_applies_to_env_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("SWITCHBOARD_WS_MAX_MESSAGE_BYTES", "131072")
    monkeypatch.setenv("SWITCHBOARD_WS_MAX_FRAME_BYTES", "65536")
    with pytest.raises(ValidationError) as info:
        Settings()  # type: ignore[call-arg]
    assert info.value.errors()[0]["loc"] == ("ws_max_frame_bytes",)


def test_defaults_satisfy_the_frame_limit_rule() -> None:
    settings = make_settings()
    assert settings.ws_max_frame_bytes > settings.ws_max_message_bytes


def test_call_token_key_is_derived_from_the_auth_token() -> None:
    key = make_settings().call_token_key()
    assert key == hmac.new(AUTH_TOKEN.encode(), b"switchboard call token v1", hashlib.sha256).digest()
    assert key == make_settings().call_token_key()  # deterministic: every pod derives the same key
    assert key != AUTH_TOKEN.encode()  # and the auth token itself is not used as the key
    assert make_settings(twilio_auth_token="another-token").call_token_key() != key


def test_call_token_key_uses_the_secret_when_set() -> None:
    settings = make_settings(call_token_secret="explicit-secret")
    assert settings.call_token_key() == b"explicit-secret"
    assert make_settings(call_token_secret="explicit-secret", twilio_auth_token="other").call_token_key() == (
        b"explicit-secret"
    )


def test_call_token_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("SWITCHBOARD_CALL_TOKEN_SECRET", "from-env")
    assert Settings().call_token_key() == b"from-env"  # type: ignore[call-arg]


def test_settings_are_frozen() -> None:
    settings = make_settings()
    with pytest.raises(ValidationError):
        settings.max_concurrent_calls = 99  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [{"port": 70000}, {"max_concurrent_calls": 0}, {"playout_lead_ms": -1}, {"busy_response": "hang-up"}],
)
def test_out_of_range_values_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make_settings(**overrides)


def test_the_speech_service_loads_its_sections_without_a_twilio_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_SPEECH_PORT", "8102")
    monkeypatch.setenv("SWITCHBOARD_TTS_VOICE", "af_heart")
    settings = SpeechServiceSettings()
    assert (settings.speech_port, settings.tts_voice) == (8102, "af_heart")
    assert "twilio_auth_token" not in SpeechServiceSettings.model_fields
    assert isinstance(make_settings(), SpeechServiceSettings)  # a pod's settings also load its engines


def test_each_setting_lives_in_exactly_one_section() -> None:
    own = {cls.__name__: vars(cls).get("__annotations__", {}) for cls in Settings.__mro__ if issubclass(cls, Section)}
    owners = {name: [section for section, fields in own.items() if name in fields] for name in Settings.model_fields}
    assert {name: found for name, found in owners.items() if len(found) != 1} == {}


def test_http_tool_hosts_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    assert Settings().http_allowed_hosts() == frozenset()  # type: ignore[call-arg]
    monkeypatch.setenv("SWITCHBOARD_TOOL_HTTP_ALLOWED_HOSTS", "API.example.com, billing.example.com:8443")
    assert Settings().http_allowed_hosts() == {"api.example.com", "billing.example.com:8443"}  # type: ignore[call-arg]


@pytest.mark.parametrize("hosts", ["10.0.0.1", "api.example.com.", "*.example.com", "api.example.com:0"])
def test_an_http_tool_host_that_is_not_a_plain_name_stops_start_up(hosts: str) -> None:
    with pytest.raises(ValidationError, match="tool_http_allowed_hosts"):
        make_settings(tool_http_allowed_hosts=f"api.example.com,{hosts}")
