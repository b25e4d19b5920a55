"""Declared arguments: what an operator writes about one argument, and the strict model it compiles to.

A declaration is refused unless every argument is bounded: strings need `max_length`, numbers need
both `minimum` and `maximum`, dates have (default) year bounds, enums a short list. A `pattern` must
compile with Python's `re` and with pydantic's linear-time regex engine, which is the one that
validates (so an operator's pattern cannot backtrack the pod's event loop to a halt); it is treated
as a full match. The compiled model subclasses `ToolArguments` (strict, extra fields forbidden);
optional arguments default to None. Dates and datetimes come as ISO strings in the model's JSON,
which strict mode accepts in JSON mode (the executor validates JSON), like the built-ins' `Day`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic_core import SchemaError

from db.safe_query import MIN_PREFIX_CHARS
from tools.tool import ToolArguments

ArgumentType = Literal["string", "integer", "number", "boolean", "date", "datetime", "enum"]
Match = Literal["equals", "range_start", "range_end", "prefix"]

MAX_STRING_CHARS = 256
"""Largest `max_length` a string argument may declare (the safe-query layer's filter string cap)."""
MAX_PATTERN_CHARS = 200
"""Longest `pattern` a string argument may declare."""
MAX_ENUM_VALUES, MAX_ENUM_VALUE_CHARS = 50, 100
"""An enum lists 1 to MAX_ENUM_VALUES values of at most MAX_ENUM_VALUE_CHARS characters each."""
MAX_NUMBER = 2**53
"""Number bounds must lie within +-MAX_NUMBER (exact in a double, fits MongoDB's int64)."""
FIRST_YEAR, LAST_YEAR = 1970, 2100
"""Default bounds of date and datetime arguments, as for the built-in tools."""
FIELD_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
"""A document field a declaration may name: plain, no `$`, no dots (the safe-query layer's rule)."""

EnumValue = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ENUM_VALUE_CHARS)]
_RANGED = {"integer", "number", "date", "datetime"}


class ArgumentDeclaration(BaseModel):
    """One argument of a declared tool: its type and bounds, what the model is told, and how it
    matches a document field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    type: ArgumentType
    description: str = Field("", max_length=300)
    required: bool = False
    max_length: int | None = Field(None, ge=1, le=MAX_STRING_CHARS, validate_default=True)
    """Strings only, and required for them."""
    pattern: str | None = Field(None, max_length=MAX_PATTERN_CHARS, validate_default=True)
    """Strings only: a regular expression the whole value must match."""
    minimum: int | float | None = Field(None, ge=-MAX_NUMBER, le=MAX_NUMBER, validate_default=True)
    maximum: int | float | None = Field(None, ge=-MAX_NUMBER, le=MAX_NUMBER, validate_default=True)
    """Numbers only, and both required for them."""
    earliest: date | None = Field(None, validate_default=True)
    latest: date | None = Field(None, validate_default=True)
    """Dates and datetimes only; default the years FIRST_YEAR..LAST_YEAR."""
    values: tuple[EnumValue, ...] | None = Field(None, min_length=1, max_length=MAX_ENUM_VALUES, validate_default=True)
    """Enums only, and required for them."""
    match: Match = Field("equals", validate_default=True)
    field: str | None = Field(None, pattern=FIELD_NAME)
    """The document field this argument matches; default: the argument's name."""

    @property
    def target(self) -> str:
        """The document field this argument filters (or sets)."""
        return self.field or self.name

    @field_validator("max_length")
    @classmethod
    def _max_length(cls, value: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("type")
        if kind == "string" and value is None:
            raise ValueError(f"a string argument needs max_length (at most {MAX_STRING_CHARS})")
        if kind not in (None, "string") and value is not None:
            raise ValueError("max_length is for string arguments only")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("type") not in (None, "string"):
            raise ValueError("pattern is for string arguments only")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from None
        try:
            TypeAdapter(Annotated[str, StringConstraints(pattern=full_match(value))])
        except SchemaError:
            raise ValueError("pattern uses a feature the validator lacks (look-around, back-references)") from None
        return value

    @field_validator("minimum", "maximum")
    @classmethod
    def _bound(cls, value: int | float | None, info: ValidationInfo) -> int | float | None:
        kind = info.data.get("type")
        if kind in ("integer", "number") and value is None:
            raise ValueError(f"{kind} arguments need both minimum and maximum")
        if kind not in (None, "integer", "number") and value is not None:
            raise ValueError(f"{info.field_name} is for integer and number arguments only")
        if value is not None and not math.isfinite(value):
            raise ValueError("bounds must be finite")
        if kind == "integer" and value is not None and value != int(value):
            raise ValueError("an integer argument's bounds must be whole numbers")
        if info.field_name == "maximum" and value is not None and info.data.get("minimum") is not None:
            if value < info.data["minimum"]:
                raise ValueError("maximum must not be below minimum")
        return value

    @field_validator("earliest", "latest")
    @classmethod
    def _date_bound(cls, value: date | None, info: ValidationInfo) -> date | None:
        kind = info.data.get("type")
        if kind not in (None, "date", "datetime") and value is not None:
            raise ValueError(f"{info.field_name} is for date and datetime arguments only")
        if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValueError(f"the year must be between {FIRST_YEAR} and {LAST_YEAR}")
        if info.field_name == "latest" and value is not None and info.data.get("earliest") is not None:
            if value < info.data["earliest"]:
                raise ValueError("latest must not be before earliest")
        return value

    @field_validator("values")
    @classmethod
    def _values(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        kind = info.data.get("type")
        if kind == "enum" and value is None:
            raise ValueError(f"an enum argument needs values (1 to {MAX_ENUM_VALUES})")
        if kind not in (None, "enum") and value is not None:
            raise ValueError("values is for enum arguments only")
        if value is not None and len(set(value)) != len(value):
            raise ValueError("enum values must be unique")
        return value

    @field_validator("match")
    @classmethod
    def _match(cls, value: Match, info: ValidationInfo) -> Match:
        kind = info.data.get("type")
        if value == "prefix" and kind not in (None, "string"):
            raise ValueError("prefix matches strings only")
        if value == "prefix" and (info.data.get("max_length") or MIN_PREFIX_CHARS) < MIN_PREFIX_CHARS:
            raise ValueError(f"a prefix argument needs max_length of at least {MIN_PREFIX_CHARS}")
        if value in ("range_start", "range_end") and kind not in (None, *_RANGED):
            raise ValueError("range_start and range_end match integer, number, date and datetime arguments only")
        return value


def full_match(pattern: str) -> str:
    """The declared pattern as a whole-value match, for the validator and the JSON schema."""
    return f"^(?:{pattern})$"


def compile_arguments(tool_name: str, arguments: Sequence[ArgumentDeclaration]) -> type[ToolArguments]:
    """The strict argument model of a declared tool: one field per declared argument, bounded as
    declared; optional ones default to None (strict schema: required but nullable)."""
    fields: dict[str, Any] = {}
    for argument in arguments:
        kind = _field_type(argument)
        description = argument.description or None
        if argument.required:
            fields[argument.name] = (kind, Field(description=description))
        else:
            fields[argument.name] = (kind | None, Field(None, description=description))
    model_name = "".join(part.capitalize() for part in tool_name.split("_")) + "Args"
    return create_model(model_name, __base__=ToolArguments, __doc__=f"Arguments of {tool_name}.", **fields)


def _field_type(argument: ArgumentDeclaration) -> Any:
    match argument.type:
        case "string":
            pattern = full_match(argument.pattern) if argument.pattern is not None else None
            shortest = MIN_PREFIX_CHARS if argument.match == "prefix" else None  # "a" would match too much
            return Annotated[
                str, StringConstraints(min_length=shortest, max_length=argument.max_length, pattern=pattern)
            ]
        case "integer":
            return Annotated[int, Field(ge=int(argument.minimum or 0), le=int(argument.maximum or 0))]
        case "number":
            return Annotated[float, Field(ge=argument.minimum, le=argument.maximum, allow_inf_nan=False)]
        case "boolean":
            return bool
        case "date":
            earliest, latest = _date_bounds(argument)
            return Annotated[date, Field(ge=earliest, le=latest)]
        case "datetime":
            earliest, latest = _date_bounds(argument)
            return Annotated[datetime, AfterValidator(_moment_within(earliest, latest))]
        case "enum":
            return Literal[tuple(argument.values or ())]
    raise ValueError(f"unknown argument type {argument.type!r}")  # pragma: no cover - the Literal refuses first


def _date_bounds(argument: ArgumentDeclaration) -> tuple[date, date]:
    return argument.earliest or date(FIRST_YEAR, 1, 1), argument.latest or date(LAST_YEAR, 12, 31)


def _moment_within(earliest: date, latest: date) -> Any:
    def check(value: datetime) -> datetime:
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        if not earliest <= value.astimezone(UTC).date() <= latest:
            raise ValueError(f"must be between {earliest.isoformat()} and {latest.isoformat()}")
        return value

    return check
