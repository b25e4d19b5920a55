"""Structured logs: one JSON object a line, with the call sid of the call being handled."""

from __future__ import annotations

import io
import json
import logging

from telephony.logs import JsonFormatter, call_sid_var, json_handler
from tools.pii import KEYPAD_ENTRY, SecretVault, active_vault


def record(message: str, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("telephony.test", logging.WARNING, __file__, 1, message, None, None)
    entry.__dict__.update(extra)
    return entry


def test_line_is_json_with_level_logger_and_message() -> None:
    line = JsonFormatter().format(record("dropped media-stream message", reason="bad base64", size=12))
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "telephony.test"
    assert entry["msg"] == "dropped media-stream message"
    assert (entry["reason"], entry["size"]) == ("bad base64", 12)
    assert "\n" not in line


def test_call_sid_comes_from_the_context() -> None:
    token = call_sid_var.set("CA0123")
    try:
        entry = json.loads(JsonFormatter().format(record("call started")))
    finally:
        call_sid_var.reset(token)
    assert entry["call_sid"] == "CA0123"
    assert "call_sid" not in json.loads(JsonFormatter().format(record("no call here")))


def test_values_json_cannot_hold_are_written_as_repr() -> None:
    entry = json.loads(JsonFormatter().format(record("odd", outcome=object)))
    assert entry["outcome"] == repr(object)


def test_exceptions_are_kept_in_one_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        entry = record("session failed")
        entry.exc_info = sys.exc_info()
    line = JsonFormatter().format(entry)
    assert "\n" not in line and "RuntimeError: boom" in json.loads(line)["exc"]


def test_uvicorn_colour_copies_are_left_out() -> None:
    entry = json.loads(JsonFormatter().format(record("Started", color_message="\x1b[36mStarted\x1b[0m")))
    assert "color_message" not in entry


# -- personal data stays out ---------------------------------------------------------------------

VISA = "4111111111111111"


def logged(*args: object, exc: BaseException | None = None, **extra: object) -> str:
    """What the pod's handler writes for one record (message with `args`, extra fields, traceback)."""
    stream = io.StringIO()
    handler = json_handler(stream)
    entry = logging.LogRecord("switchboard.test", logging.WARNING, __file__, 1, args[0], args[1:] or None, None)
    entry.__dict__.update(extra)
    if exc is not None:
        entry.exc_info = (type(exc), exc, exc.__traceback__)
    handler.handle(entry)
    return stream.getvalue()


def test_card_numbers_are_masked_in_the_message_its_args_and_extras() -> None:
    line = logged("caller said %s", f"my card is {VISA}", heard="4111 1111 1111 1111", detail={"ssn": "123-45-6789"})
    entry = json.loads(line)
    assert entry["msg"] == "caller said my card is [card number]"
    assert entry["heard"] == "[card number]"
    assert "123-45-6789" not in line and VISA not in line


def test_a_traceback_is_masked_too() -> None:
    try:
        raise ValueError(f"bad card {VISA}")
    except ValueError as exc:
        line = logged("tool failed", exc=exc)
    assert VISA not in line and "ValueError: bad card [card number]" in json.loads(line)["exc"]


def test_the_current_calls_keypad_entries_are_masked() -> None:
    vault = SecretVault()
    vault.keep(KEYPAD_ENTRY, "97531")
    token = active_vault.set(vault)
    try:
        line = logged("dtmf %s", "97531", keys="97531")
    finally:
        active_vault.reset(token)
    assert "97531" not in line and json.loads(line)["keys"] == "[keypad entry 1]"


def test_ordinary_values_are_left_alone() -> None:
    entry = json.loads(logged("turn %d", 3, ms=812.5, order="50004", ok=True))
    assert (entry["msg"], entry["ms"], entry["order"], entry["ok"]) == ("turn 3", 812.5, "50004", True)


def test_a_keyed_digit_in_a_logged_twilio_frame_is_masked() -> None:
    frame = json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "7"}})
    entry = json.loads(logged("< TEXT '%s' [%d bytes]", frame, len(frame)))  # the websocket layer at DEBUG
    assert '"digit": "[key]"' in entry["msg"] and '"digit": "7"' not in entry["msg"]
