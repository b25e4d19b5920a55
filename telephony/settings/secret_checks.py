"""Start-up refuses empty, short and placeholder secrets, naming the variable to set.

An empty Twilio auth token makes every webhook signature and call token forgeable; the example
Secret's admin key (`replace-me-admin-key:*`) would otherwise pass the API-key format check. The
pod asks `insecure_secrets(settings)` as it opens and stops with `InsecureSecrets` unless
`allow_insecure_secrets` is set (a laptop demo). Messages name the variable, never the value.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings

PLACEHOLDER_MARKERS = ("replace-me", "replace_me", "changeme", "change-me", "placeholder", "xxxxxxxx")
"""Text that marks a value copied from an example (as in deploy/kubernetes/secret.example.yaml)."""

MIN_KEY_CHARS = 16
"""Shortest HMAC key accepted (Twilio's auth tokens are 32 characters)."""

HMAC_KEYS = frozenset({"twilio_auth_token", "call_token_secret", "console_secret"})
"""Secrets used as HMAC keys: short ones can be guessed, so they get a minimum length."""

PLAIN_CHECKED = frozenset({"twilio_account_sid"})
"""Settings that are not secret but whose example value is a placeholder."""

NO_KEY = {"llm_api_key": "EMPTY"}
"""Values that mean "no key" by convention (vLLM's `EMPTY`), not a placeholder."""


class InsecureSecrets(ValueError):
    """The pod will not start with these secrets; the message says what to set."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "refusing to start with insecure secrets:\n  "
            + "\n  ".join(problems)
            + "\n(set SWITCHBOARD_ALLOW_INSECURE_SECRETS=true only for a local demo)"
        )


def _problem(name: str, text: str) -> str | None:
    variable = f"SWITCHBOARD_{name.upper()}"
    if not text.strip():
        return f"{variable} is empty: set it to a real value (or leave it unset where that is allowed)"
    lowered = text.lower()
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return f"{variable} holds a placeholder from an example: set it to the real value"
    if name in HMAC_KEYS and len(text) < MIN_KEY_CHARS:
        return f"{variable} is shorter than {MIN_KEY_CHARS} characters: set the real, long key"
    return None


def insecure_secrets(settings: BaseSettings) -> list[str]:
    """One message per empty, short or placeholder secret in `settings` (empty list: all fine)."""
    problems = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif name in PLAIN_CHECKED and isinstance(value, str):
            text = value
        else:
            continue
        if NO_KEY.get(name) == text:
            continue
        problem = _problem(name, text)
        if problem is not None:
            problems.append(problem)
    return problems


def require_secure_secrets(settings: BaseSettings, allow_insecure: bool) -> list[str]:
    """Raise `InsecureSecrets` for any problem, unless `allow_insecure`; the problems either way."""
    problems = insecure_secrets(settings)
    if problems and not allow_insecure:
        raise InsecureSecrets(problems)
    return problems
