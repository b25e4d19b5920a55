"""Declared MongoDB tools: `mongo_find` and `mongo_update_one` over the operator's business collections.

A declaration names a collection, its arguments (each matching one document field), which of them
are selective, the fields returned and, for writes, the fields set. It is refused (a `ValidationError`
naming the field) unless every query it can issue is bounded and narrow: a platform collection, no
selective argument, a selective argument that narrows too little, an argument aimed at the identity
field. With `scope: caller` (the default) the server adds `{identity_field: verified key}` to every
filter, so a caller only ever reaches their own documents; that equality is itself selective, which
is why a caller-scoped find ("my recent orders") needs no selective argument, while a write always does.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from db.indexes import APPOINTMENTS, CUSTOMERS, INDEXES, ORDERS
from tools.declared.arguments import FIELD_NAME, ArgumentDeclaration
from tools.declared.base import DeclarationBase

MAX_RESULTS = 100
"""Most documents a declared find may return (the pod's `max_limit` may be lower: then it is refused)."""
MAX_RETURNED_FIELDS = 30
MAX_SORT_KEYS = 3
MAX_SET_FIELDS = 16
BUSINESS_COLLECTIONS = frozenset({CUSTOMERS, ORDERS, APPOINTMENTS})
"""The demo business data lives beside the platform's collections; declared tools may read it."""
PLATFORM_COLLECTIONS = (frozenset(INDEXES) - BUSINESS_COLLECTIONS) | {
    "api_keys",
    "audit",
    "identity",
    "retention",
    "settings",
    "tool_audit",
    "tool_declarations",
    "tool_declaration_versions",
    "tools",
}
"""The pod's own collections (calls, agents, keys, numbers, campaigns, contacts, do-not-call,
declarations...): never reachable through a declared tool."""

FieldName = Annotated[str, StringConstraints(pattern=FIELD_NAME)]
Collection = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]
Scalar = (
    Annotated[str, StringConstraints(max_length=256)]
    | bool
    | Annotated[int, Field(ge=-(2**63), lt=2**63)]
    | Annotated[float, Field(allow_inf_nan=False)]
)


class SortKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: FieldName
    direction: Literal["asc", "desc"] = "asc"

    @property
    def pair(self) -> tuple[str, int]:
        return self.field, 1 if self.direction == "asc" else -1


class SetFromArgument(BaseModel):
    """Set the field to a validated argument's value (skipped when an optional argument is not given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    argument: str


class SetValue(BaseModel):
    """Set the field to a fixed value (e.g. `status: "booked"`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: Scalar


class _MongoDeclaration(DeclarationBase):
    """Fields both kinds share; validators run in field order, so each sees the ones before it."""

    collection: Collection
    identity_field: FieldName | None = Field(None, validate_default=True)
    """The document field holding the customer key; required with `scope: caller`."""
    selective: tuple[str, ...] = Field((), max_length=16, validate_default=True)
    """Argument names of which at least one must be given; each matches `equals`, or `prefix` with
    at least MIN_PREFIX_CHARS characters."""

    @field_validator("collection")
    @classmethod
    def _business_collection(cls, value: str) -> str:
        if value in PLATFORM_COLLECTIONS or value.lower().startswith("system"):
            raise ValueError(f"{value!r} is one of the platform's own collections; declare a business collection")
        return value

    @field_validator("identity_field")
    @classmethod
    def _identity(cls, value: str | None, info: ValidationInfo) -> str | None:
        scope = info.data.get("scope")
        if scope == "caller" and value is None:
            raise ValueError("scope caller needs identity_field: the document field holding the customer key")
        if scope == "none" and value is not None:
            raise ValueError("identity_field is only for scope caller")
        aimed = [arg.name for arg in info.data.get("arguments", ()) if value is not None and arg.target == value]
        if aimed:
            raise ValueError(f"argument {aimed[0]!r} targets the identity field; the server sets it, never the model")
        return value

    @field_validator("selective")
    @classmethod
    def _selective(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if "arguments" not in info.data:
            return value  # the arguments were refused already
        declared = {argument.name: argument for argument in info.data["arguments"]}
        for name in value:
            argument = declared.get(name)
            if argument is None:
                raise ValueError(f"selective names {name!r}, which is not a declared argument")
            _check_selective(argument)
        if not value and (info.data.get("scope") != "caller" or cls._writes()):
            raise ValueError("declare at least one selective argument (one that narrows to a few documents)")
        return value

    @classmethod
    def _writes(cls) -> bool:
        return False

    def filter_arguments(self) -> tuple[ArgumentDeclaration, ...]:
        return self.arguments


def _check_selective(argument: ArgumentDeclaration) -> None:
    if argument.match not in ("equals", "prefix"):
        raise ValueError(f"selective argument {argument.name!r} must match equals or prefix, not {argument.match}")
    if argument.type in ("boolean", "enum"):
        raise ValueError(f"selective argument {argument.name!r} is a {argument.type}: it narrows too little")


def _check_filters(arguments: tuple[ArgumentDeclaration, ...]) -> None:
    """Arguments on one field combine only as a range (one start, one end)."""
    by_field: dict[str, list[ArgumentDeclaration]] = {}
    for argument in arguments:
        by_field.setdefault(argument.target, []).append(argument)
    for field, on_field in by_field.items():
        if len(on_field) == 1:
            continue
        if sorted(argument.match for argument in on_field) != ["range_end", "range_start"]:
            raise ValueError(f"field {field!r} is matched by more than one argument (only a range start and end may)")
        if len({argument.type for argument in on_field}) > 1:
            raise ValueError(f"the range start and end on {field!r} must have the same type")


class MongoFindDeclaration(_MongoDeclaration):
    """A bounded read: filter from validated arguments (+ the identity key), projection `returns`,
    fixed `sort`, at most `max_results` documents."""

    kind: Literal["mongo_find"]
    returns: tuple[FieldName, ...] = Field(min_length=1, max_length=MAX_RETURNED_FIELDS)
    sort: tuple[SortKey, ...] = Field((), max_length=MAX_SORT_KEYS)
    max_results: int = Field(10, ge=1, le=MAX_RESULTS)

    @field_validator("arguments")
    @classmethod
    def _filters(cls, value: tuple[ArgumentDeclaration, ...]) -> tuple[ArgumentDeclaration, ...]:
        _check_filters(value)
        return value


class MongoUpdateOneDeclaration(_MongoDeclaration):
    """A narrow write: one document chosen by a selective, identity-scoped filter; only the fields in
    `set` change, each from a validated argument or a fixed value; `returns` are echoed back."""

    kind: Literal["mongo_update_one"]
    set: dict[FieldName, SetFromArgument | SetValue] = Field(min_length=1, max_length=MAX_SET_FIELDS)
    returns: tuple[FieldName, ...] = Field(min_length=1, max_length=MAX_RETURNED_FIELDS)

    @classmethod
    def _writes(cls) -> bool:
        return True

    @field_validator("scope")
    @classmethod
    def _caller_only(cls, value: str) -> str:
        if value != "caller":
            raise ValueError("a write must have scope caller (identity-scoped filter)")
        return value

    @field_validator("set")
    @classmethod
    def _set(
        cls, value: dict[str, SetFromArgument | SetValue], info: ValidationInfo
    ) -> dict[str, SetFromArgument | SetValue]:
        declared = {argument.name for argument in info.data.get("arguments", ())}
        identity = info.data.get("identity_field")
        selective = set(info.data.get("selective", ()))
        for field, source in value.items():
            if field in (identity, "_id"):
                raise ValueError(f"set may not change {field!r}")
            if isinstance(source, SetFromArgument):
                if "arguments" in info.data and source.argument not in declared:
                    raise ValueError(f"set.{field} names {source.argument!r}, which is not a declared argument")
                if source.argument in selective:
                    raise ValueError(f"set.{field}: argument {source.argument!r} is selective (a filter), not a value")
        if "arguments" in info.data:
            _check_filters(_filters_of(info.data["arguments"], value))
        return value

    def filter_arguments(self) -> tuple[ArgumentDeclaration, ...]:
        return _filters_of(self.arguments, self.set)


def _filters_of(
    arguments: tuple[ArgumentDeclaration, ...], set_: dict[str, SetFromArgument | SetValue]
) -> tuple[ArgumentDeclaration, ...]:
    values = {source.argument for source in set_.values() if isinstance(source, SetFromArgument)}
    return tuple(argument for argument in arguments if argument.name not in values)


MongoDeclaration = MongoFindDeclaration | MongoUpdateOneDeclaration
