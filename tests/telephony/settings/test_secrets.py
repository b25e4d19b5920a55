"""Start-up refuses empty and placeholder secrets, naming the variable to set (issue 15)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from telephony.pod import open_pod
from telephony.settings import InsecureSecrets, insecure_secrets
from tests.support.settings import AUTH_TOKEN, make_settings

KUBERNETES = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"


def example_secret_values() -> dict[str, str]:
    """SWITCHBOARD_* variable -> the value `secret.example.yaml` gives it, through the call pod's
    `secretKeyRef`s (every secret a pod reads, as the example Secret would set it)."""
    [secret] = list(yaml.safe_load_all((KUBERNETES / "secret.example.yaml").read_text()))
    values: dict[str, str] = {}
    for document in yaml.safe_load_all((KUBERNETES / "call-pod.yaml").read_text()):
        if not document or document.get("kind") != "Deployment":
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and env["name"].startswith("SWITCHBOARD_"):
                    values[env["name"]] = secret["stringData"][ref["key"]]
    return values


async def test_an_empty_auth_token_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(InsecureSecrets) as refused:
        async with open_pod(make_settings(twilio_auth_token="")):
            pass
    assert "SWITCHBOARD_TWILIO_AUTH_TOKEN" in str(refused.value)


def test_the_test_pods_secrets_pass() -> None:
    assert insecure_secrets(make_settings()) == []


def test_every_value_of_the_example_secret_is_refused() -> None:
    values = example_secret_values()
    assert {"SWITCHBOARD_TWILIO_AUTH_TOKEN", "SWITCHBOARD_API_KEYS"} <= set(values)
    for variable, value in values.items():
        problems = insecure_secrets(make_settings(**{variable.removeprefix("SWITCHBOARD_").lower(): value}))
        assert any(variable in problem for problem in problems), (variable, problems)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("twilio_auth_token", "   "),
        ("twilio_auth_token", "short"),
        ("twilio_auth_token", "changeme-changeme-changeme"),
        ("call_token_secret", ""),
        ("call_token_secret", "tiny"),
        ("api_keys", "replace-me-admin-key:*"),
        ("api_keys", "a-real-looking-key-0001:*;REPLACE-ME-second-key:calls:read"),
        ("mongodb_uri", "mongodb://switchboard:replace-me@mongodb:27017/switchboard"),
        ("twilio_account_sid", "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        ("drain_token", ""),
    ],
)
def test_weak_secrets_are_named_without_their_value(field: str, value: str) -> None:
    problems = insecure_secrets(make_settings(**{field: value}))
    assert len(problems) == 1
    assert f"SWITCHBOARD_{field.upper()}" in problems[0]
    if value.strip() and len(value) > 6:
        assert value not in problems[0]  # a secret never reaches the message (or the logs)


def test_real_looking_secrets_pass() -> None:
    settings = make_settings(
        call_token_secret="9f2c6a1be0d34f7a8c55e2b19d07aa31",
        api_keys="k-7d1e0c55a9b84f2e:*",
        mongodb_uri="mongodb://switchboard:Zt7q-Qp2@mongodb:27017/switchboard",
        twilio_account_sid="AC" + "0123456789abcdef" * 2,
        drain_token="right-token",
    )
    assert insecure_secrets(settings) == []


async def test_the_insecure_setting_lets_a_demo_start_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(twilio_auth_token="replace-me", allow_insecure_secrets=True)
    with caplog.at_level(logging.WARNING):
        async with open_pod(settings) as pod:
            assert pod.settings is settings
    assert "SWITCHBOARD_TWILIO_AUTH_TOKEN" in caplog.text and "replace-me" not in caplog.text


def test_serve_refuses_a_placeholder_token_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from telephony.cli.main import main

    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", "replace-me")
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "SWITCHBOARD_TWILIO_AUTH_TOKEN" in err and AUTH_TOKEN not in err
