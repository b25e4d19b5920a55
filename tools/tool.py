"""What a tool is: a strict pydantic argument model, an async handler and a description.

The argument model is the contract with the model: strict types (no "12" for 12), no fields beyond
the declared ones, required fields required, strings and numbers constrained. The handler only
ever sees a validated instance, and builds its queries from those fields, never from the JSON.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from db.safe_query import ReadResult

_TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class CallerChecks(Protocol):
    """The call's identity checks (the session's verifier), reached by the identity tools: a
    tool never decides who the caller is, it hands what the caller said to the server's checks."""

    async def identify(self, field: str, value: str) -> str:
        """Take the caller's claim (an account id, email...): what the model should do next."""
        ...

    async def verify(self, facts: Mapping[str, str]) -> str:
        """Check the facts the caller said; raise `ToolError` when they do not match."""
        ...


@dataclass(slots=True)
class CallerIdentity:
    """Whose data this call may touch, decided by the server and never by what the model sends.

    One per call, owned by the session: identification (caller ID, a declared lookup) and
    verification (keypad PIN, spoken facts) set `customer_key` once the agent's identity policy is
    met. Tools declared `scope: caller` inject that key into their filter or request; until it is
    set they refuse with `unverified_message`, which tells the model what to ask the caller for."""

    customer_key: str | None = None
    """The verified customer's key (e.g. "C-1001"); None until the caller is verified."""
    claimed_key: str | None = None
    """The key the caller was identified as (by caller ID or a lookup), not yet verified."""
    unverified_message: str = "the caller is not verified yet; ask them to verify their identity first"
    checks: CallerChecks | None = None
    """The verifier behind this identity (None: the call has no identity checks to offer)."""

    def verified_key(self) -> str:
        """The verified customer's key, or a `ToolError` the model should hear."""
        if self.customer_key is None:
            raise ToolError(self.unverified_message)
        return self.customer_key


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who a tool call is for: handlers scope their queries to this call, agent and caller."""

    call_sid: str
    agent_id: str
    caller_number: str
    caller: CallerIdentity = field(default_factory=CallerIdentity)
    """The call's identity state (shared with the session, which verifies the caller)."""


class ToolArguments(BaseModel):
    """Base of every argument model: strict, closed, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ToolError(Exception):
    """A refusal the model should hear (not a crash): "no appointment A-1 for that customer".
    The message goes to the model as it is, so keep it short and say what to do next."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A handler's answer: a small summary plus an optional list the executor may shorten to fit
    the result cap (reporting "truncated: N more")."""

    data: Mapping[str, Any] = field(default_factory=dict)
    items: Sequence[Mapping[str, Any]] = ()
    items_key: str = "items"
    more: int = 0
    """Items already left out before the executor saw the result (by the database layer)."""
    more_is_lower_bound: bool = False

    @classmethod
    def from_read(cls, read: ReadResult, items_key: str, **data: Any) -> ToolResult:
        return cls(data, read.documents, items_key, read.more, read.more_is_lower_bound)


Args = TypeVar("Args", bound=ToolArguments)
Handler = Callable[[Args, ToolContext], Awaitable[ToolResult | Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Tool(Generic[Args]):
    name: str
    description: str
    """What the model reads to decide when to call the tool; say when, not how."""
    arguments: type[Args]
    handler: Handler[Args]
    timeout_s: float | None = None
    """Per-tool time limit; None uses the executor's default."""

    def __post_init__(self) -> None:
        if not _TOOL_NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r}: lower case letters, digits and '_', at most 64")
        if not issubclass(self.arguments, ToolArguments):
            raise TypeError(f"tool {self.name}: arguments must subclass ToolArguments (strict, extra='forbid')")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"tool {self.name}: timeout_s must be positive")
