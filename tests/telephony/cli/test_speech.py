"""`switchboard speech` refuses to start open to anyone: no keys, short keys and example keys stop it
with a message that says what to set, before any model is loaded."""

from __future__ import annotations

import pytest

from telephony.cli import speech as speech_cli
from telephony.cli.main import main
from telephony.settings import SpeechServiceSettings

KEY = "speech-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal must come before the (seconds-long) model loads: loading one fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(speech_cli, "WhisperSpeechToText", refuse)
    for name in ("SWITCHBOARD_SPEECH_SERVER_API_KEYS", "SWITCHBOARD_SPEECH_ALLOW_UNAUTHENTICATED"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (None, "has no API keys: set SWITCHBOARD_SPEECH_SERVER_API_KEYS"),
        (" , ", "has no API keys: set SWITCHBOARD_SPEECH_SERVER_API_KEYS"),
        ("short", "key 1 is a placeholder or shorter than 16 characters"),
        (f"{KEY},replace-me-speech-key-0000", "key 2 is a placeholder"),
    ],
)
def test_start_up_stops_with_a_message_that_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], keys: str | None, message: str
) -> None:
    if keys is not None:
        monkeypatch.setenv("SWITCHBOARD_SPEECH_SERVER_API_KEYS", keys)
    assert main(["speech", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "replace-me-speech-key" not in err and KEY not in err  # keys never printed


def test_keys_are_read_comma_separated_and_an_open_service_must_be_asked_for() -> None:
    rotation = SpeechServiceSettings(speech_server_api_keys=f" {KEY}, {KEY}-new ,")  # type: ignore[arg-type]
    assert speech_cli.accepted_keys(rotation) == [KEY, f"{KEY}-new"]
    laptop = SpeechServiceSettings(speech_allow_unauthenticated=True)  # type: ignore[call-arg]
    assert speech_cli.accepted_keys(laptop) == []
