"""The post-call part of `/api/calls`: what a record's `post_call` looks like, and the list filters on it.

A filter is `field=<name>:<value>` (repeatable, all must match) and `post_call=<status>`. The API
does not know which agent declared a field, so a value is matched as every kind it can be: `yes`
also matches a yes/no field's true, `3` a number field's 3.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from db.calls import MAX_POST_CALL_FILTERS, POST_CALL_FIELD_PATTERN
from telephony.admin.common import field_error

MAX_FILTER_VALUE_CHARS = 200
"""Bound on the value part of one `field=<name>:<value>` filter."""
PostCallStatus = Literal["pending", "done", "failed"]

_NAME = re.compile(POST_CALL_FIELD_PATTERN)
_YES = {"yes", "true"}
_NO = {"no", "false"}


class PostCallBrief(BaseModel):
    """What a call listing shows of the post-call result."""

    model_config = ConfigDict(extra="ignore")

    status: PostCallStatus
    fields: dict[str, Any] = {}
    """The declared fields' values (text, true/false, a number, a choice; null: the call did not say)."""


class PostCallOut(PostCallBrief):
    """A call's post-call result: `pending` once queued after the call ended, then `done` or `failed`."""

    summary: str | None = None
    error: str | None = None
    """Why it failed (`queue full`, a timeout, the model's error, arguments that do not fit the declaration)."""
    updated_at: datetime | None = None


def _candidates(value: str) -> list[Any]:
    """The stored values `value` stands for: the text itself, a yes/no, a number."""
    found: list[Any] = [value]
    lowered = value.strip().lower()
    if lowered in _YES:
        found.append(True)
    elif lowered in _NO:
        found.append(False)
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            found.append(number)
    return found


def field_filters(raw: list[str] | None) -> dict[str, list[Any]] | None:
    """`["resolved:yes", "reason:billing"]` as the database's filters, or a 422 naming the bad one."""
    if not raw:
        return None
    if len(raw) > MAX_POST_CALL_FILTERS:
        field_error(["query", "field"], f"at most {MAX_POST_CALL_FILTERS} field filters")
    filters: dict[str, list[Any]] = {}
    for item in raw:
        name, colon, value = item.partition(":")
        if not colon or not _NAME.match(name):
            field_error(["query", "field"], f"{item[:60]!r} is not <field name>:<value> (a lower-case field name)")
        if not value or len(value) > MAX_FILTER_VALUE_CHARS:
            field_error(["query", "field"], f"the value for {name!r} must be 1-{MAX_FILTER_VALUE_CHARS} characters")
        if name in filters:
            field_error(["query", "field"], f"field {name!r} is filtered twice")
        filters[name] = _candidates(value)
    return filters
