"""Structured logs: one JSON object a line, carrying the call sid of the call being handled.

Every line passes `RedactingFilter` first: card numbers, social security numbers and the current
call's secrets (its keypad entries, its agent's declared patterns) never reach the log stream.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

from tools.pii import mask_for_logs

call_sid_var: ContextVar[str | None] = ContextVar("call_sid", default=None)

_DTMF_FRAME_DIGIT = re.compile(r'("digit"\s*:\s*")[0-9*#A-Da-d](")')
"""A Twilio `dtmf` frame as the websocket layer logs it at DEBUG: one keyed digit each."""
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        call_sid = call_sid_var.get()
        if call_sid:
            entry["call_sid"] = call_sid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_text:  # set (masked) by `RedactingFilter`
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _mask(text: str) -> str:
    return _DTMF_FRAME_DIGIT.sub(r"\1[key]\2", mask_for_logs(text))


class RedactingFilter(logging.Filter):
    """Masks personal data in a record's message, its arguments, its extra fields and its traceback
    (it changes the record, so put it on the handler that writes; it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _mask(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD or key.startswith("_") or isinstance(value, (int, float, bool, type(None))):
                continue
            setattr(record, key, _mask(value if isinstance(value, str) else repr(value)))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _mask(record.exc_text)
        if record.stack_info:
            record.stack_info = _mask(record.stack_info)
        return True


def json_handler(stream: TextIO | None = None) -> logging.Handler:
    """A handler writing JSON lines to `stream` (stderr by default), personal data masked."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    return handler


def configure_logging(level: str = "INFO") -> None:
    """Route the root logger (and uvicorn's) to stderr as JSON lines."""
    handler = json_handler()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # httpx logs every request's full URL at INFO: a declared http tool's URL carries the caller's
    # key and argument values, which are caller data, not operations news.
    logging.getLogger("httpx").setLevel(logging.WARNING)
