"""Tool calls in the log: one line when a call starts (what the model asked for) and one when it ends.

A call that hangs or takes the process down still leaves its start line, so on-call sees which tool
was running. The arguments are logged masked, never as the model sent them: the call's vault turns
a value it holds (a keypad PIN, a card number the caller said) into its placeholder, the redactor
masks any card or social security number the model typed, and a field whose name says it holds a
secret (`pin`, `password`, `cvv`...) is blanked whatever its value. The log handler masks again
(`telephony/logs.py`); this does not rely on it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from tools.pii import Redactor, SecretVault

log = logging.getLogger("switchboard.tools")

MAX_LOG_ARGUMENT_CHARS = 300
"""Arguments are logged cut to this many characters (after masking, so a cut never splits a value)."""
MAX_MASKED_ARGUMENT_CHARS = 16_384
"""Longer arguments are not scanned for the log but withheld whole (the executor refuses them anyway)."""
REDACTED = "[redacted]"
SECRET_FIELD_WORDS = frozenset(
    {"pin", "pincode", "passcode", "password", "passwd", "secret", "token", "cvv", "cvc", "ssn", "otp", "iban"}
    | {"card", "cardnumber", "accountnumber", "routingnumber"}
)
"""A field whose name has one of these words (split at `_`, `-`, spaces), or is one written together
(`account_number`), never has its value logged."""
_WORD = re.compile(r"[^a-z0-9]+")
_MAX_DEPTH = 8
_REDACTOR = Redactor()


def log_arguments(raw: object, vault: SecretVault | None) -> str:
    """The model's raw argument text as a log line may carry it: masked, secret fields blanked, cut."""
    text = raw if isinstance(raw, str) else repr(raw)
    if len(text) > MAX_MASKED_ARGUMENT_CHARS:
        return f"[{len(text)} chars withheld]"
    masked = vault.mask(text) if vault is not None else _REDACTOR.scrub(text)
    try:
        parsed = json.loads(masked)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth: logged as text
        shown = masked
    else:
        shown = json.dumps(_blank_secrets(parsed, 0), ensure_ascii=False, separators=(",", ":"))
    return shown if len(shown) <= MAX_LOG_ARGUMENT_CHARS else shown[:MAX_LOG_ARGUMENT_CHARS] + "…"


def _blank_secrets(value: Any, depth: int) -> Any:
    if depth >= _MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {
            key: REDACTED if _is_secret_field(str(key)) else _blank_secrets(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_blank_secrets(item, depth + 1) for item in value]
    return value


def _is_secret_field(key: str) -> bool:
    words = _WORD.split(key.lower())
    return "".join(words) in SECRET_FIELD_WORDS or any(word in SECRET_FIELD_WORDS for word in words)


def log_started(call_id: object, name: object, raw: object, vault: SecretVault | None, call_sid: str) -> None:
    log.info(
        "tool call started",
        extra={
            "event": "tool_call_started",
            "tool": str(name)[:64],
            "tool_call_id": str(call_id)[:64],
            "call_sid": call_sid,
            "arguments": log_arguments(raw, vault),
            "arguments_chars": len(raw) if isinstance(raw, str) else 0,
        },
    )


def log_finished(
    call_id: object, name: object, call_sid: str, *, ok: bool, error: str | None, ms: float, result_bytes: int
) -> None:
    log.info(
        "tool call finished",
        extra={
            "event": "tool_call_finished",
            "tool": str(name)[:64],
            "tool_call_id": str(call_id)[:64],
            "call_sid": call_sid,
            "ok": ok,
            "error": error,
            "ms": round(ms, 3),
            "result_bytes": result_bytes,
        },
    )
