"""Reading a campaign's contact list (CSV or JSON) into validated rows and a per-row error report.

CSV: a header row with `phone` (required), `timezone` (optional, IANA), and any other columns,
which become the contact's variables for the agent's prompt (`{first_name}`). JSON: a list of
objects `{"phone": ..., "timezone": ..., "variables": {...}}`. Bad rows are reported by number with
the failing field and never stop the good ones; numbers repeated within the upload are reported too.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from telephony.campaigns.campaign import E164_PATTERN, check_timezone

MAX_VARIABLES = 32
"""Bound on variables per contact."""
MAX_VARIABLE_CHARS = 500
"""Bound on one variable's value."""
MAX_ERRORS_REPORTED = 1000
"""Bound on per-row errors listed in one report (the count is always complete)."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ContactIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    phone: str = Field(pattern=E164_PATTERN)
    """E.164 number to call."""
    timezone: str | None = Field(None, max_length=64)
    """IANA zone of the contact; unset: the campaign's."""
    variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)
    """Values for `{name}` placeholders in the agent's prompt."""

    @field_validator("phone", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip().replace(" ", "").replace("-", "") if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return check_timezone(value) if value else None

    @field_validator("variables", mode="before")
    @classmethod
    def _plain(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: (str(v) if isinstance(v, (int, float, bool)) else v) for k, v in value.items()}
        return value

    @field_validator("variables")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        return check_variables(value)


def check_variables(value: dict[str, str]) -> dict[str, str]:
    """Plain names and bounded values (ValueError naming the bad one)."""
    for name, text in value.items():
        if not _NAME.match(name):
            raise ValueError(f"variable name {name[:64]!r} must be letters, digits and '_'")
        if len(text) > MAX_VARIABLE_CHARS:
            raise ValueError(f"variable {name!r} is longer than {MAX_VARIABLE_CHARS} characters")
    return value


@dataclass
class RowError:
    row: int
    """1-based row number (CSV: counting the header as row 1; JSON: the item's position)."""
    field: str
    message: str


@dataclass
class ParsedUpload:
    contacts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rejected: int = 0

    def reject(self, row: int, field_name: str, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append(RowError(row, field_name, message[:300]))


class UploadError(ValueError):
    """The upload as a whole is unreadable (not CSV/JSON, no phone column, too many rows)."""


def _validate(parsed: ParsedUpload, row: int, raw: Any, seen: set[str]) -> None:
    try:
        contact = ContactIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        parsed.reject(row, ".".join(str(p) for p in first["loc"]) or "row", first["msg"])
        return
    if contact.phone in seen:
        parsed.reject(row, "phone", "number appears earlier in this upload")
        return
    seen.add(contact.phone)
    parsed.contacts.append({"row": row, **contact.model_dump()})


def parse_csv(text: str, *, max_rows: int) -> ParsedUpload:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if "phone" not in columns:
        raise UploadError("the CSV needs a header row with a 'phone' column")
    reader.fieldnames = columns
    parsed, seen = ParsedUpload(), set[str]()
    try:
        for n, record in enumerate(reader, start=2):
            if n - 1 > max_rows:
                raise UploadError(f"more than {max_rows} rows; upload the list in parts")
            if None in record:  # more cells than header columns
                parsed.reject(n, "row", "more cells than columns")
                continue
            variables = {k: v for k, v in record.items() if k not in ("phone", "timezone") and v not in (None, "")}
            _validate(
                parsed,
                n,
                {
                    "phone": record.get("phone") or "",
                    "timezone": record.get("timezone") or None,
                    "variables": variables,
                },
                seen,
            )
    except csv.Error as exc:
        raise UploadError(f"not readable as CSV: {exc}") from None
    return parsed


def parse_json(text: str, *, max_rows: int) -> ParsedUpload:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UploadError(f"not valid JSON: {exc}") from None
    if isinstance(raw, dict) and isinstance(raw.get("contacts"), list):
        raw = raw["contacts"]
    if not isinstance(raw, list):
        raise UploadError('JSON contacts are a list of objects, or {"contacts": [...]}')
    if len(raw) > max_rows:
        raise UploadError(f"more than {max_rows} rows; upload the list in parts")
    parsed, seen = ParsedUpload(), set[str]()
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            parsed.reject(n, "row", "each contact is an object")
            continue
        _validate(parsed, n, item, seen)
    return parsed


def parse_upload(body: bytes, content_type: str, *, max_rows: int) -> ParsedUpload:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadError("the upload must be UTF-8 text") from None
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return parse_csv(text, max_rows=max_rows)
    if kind == "application/json":
        return parse_json(text, max_rows=max_rows)
    raise UploadError("send text/csv or application/json")
