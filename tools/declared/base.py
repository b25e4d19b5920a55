"""What every declared tool shares: the common declaration fields, the resources a build needs, and
the one way a build-time refusal is raised (a pydantic `ValidationError` whose `loc` names the field,
which the admin API answers with 422).

Kind modules (mongo.py, http.py) import from here; declaration.py joins them into one union.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from db.safe_query import SafeQuery
from tools.declared.arguments import ArgumentDeclaration

MAX_ARGUMENTS = 16
"""Most arguments one declared tool takes."""
MAX_DESCRIPTION_CHARS = 1000
"""Longest tool description (it goes into every prompt that offers the tool)."""
MAX_TIMEOUT_S = 30.0
"""Longest per-tool time limit a declaration may ask for."""

Scope = Literal["caller", "none"]


class DeclarationBase(BaseModel):
    """Fields every kind has. `scope: caller` (the default) means the server injects the verified
    caller's key (`ToolContext.caller.verified_key()`), never the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    scope: Scope = "caller"
    arguments: tuple[ArgumentDeclaration, ...] = Field((), max_length=MAX_ARGUMENTS)
    timeout_s: float | None = Field(None, gt=0, le=MAX_TIMEOUT_S)

    @field_validator("arguments")
    @classmethod
    def _unique_names(cls, arguments: tuple[ArgumentDeclaration, ...]) -> tuple[ArgumentDeclaration, ...]:
        names = [argument.name for argument in arguments]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"argument names must be unique: {', '.join(twice)} declared twice")
        return arguments

    def argument(self, name: str) -> ArgumentDeclaration | None:
        return next((argument for argument in self.arguments if argument.name == name), None)


@dataclass(frozen=True, slots=True)
class DeclaredToolResources:
    """What building a declared tool needs from the pod; a kind that needs a missing one refuses."""

    safe_query: SafeQuery | None = None
    """The business database, through the safe-query layer (mongo kinds)."""
    http_client: Any = None
    """The shared HTTP client (http kind)."""
    allowed_hosts: frozenset[str] | None = None
    """Hosts http tools may call (SWITCHBOARD_TOOL_HTTP_ALLOWED_HOSTS)."""
    secrets: Callable[[str], str | None] | None = None
    """Secret values by name (http headers); never logged or shown."""


def refuse(title: str, loc: tuple[str | int, ...], message: str, value: object = None) -> ValidationError:
    """A `ValidationError` for a declaration that is valid on its own but cannot be built here (a cap
    of this pod, a host not on its list): the same shape as a model error, so it becomes a 422."""
    error = PydanticCustomError("declaration_refused", message)
    details: list[InitErrorDetails] = [{"type": error, "loc": loc, "input": value}]
    return ValidationError.from_exception_data(title, details)
