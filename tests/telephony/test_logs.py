"""Structured logs: one JSON object a line, with the call sid of the call being handled."""

from __future__ import annotations

import json
import logging

from telephony.logs import JsonFormatter, call_sid_var


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
