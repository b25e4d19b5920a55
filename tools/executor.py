"""Running the model's tool calls: parse, validate, time-limit, cap, audit, and never crash.

Whatever the model sends (no JSON, the wrong JSON, megabytes of it, operators where values belong),
the answer is a `ToolOutcome` whose `content` is a short JSON message for the model: a result, or
an error that says what to fix or ask the caller. Exceptions never leave `ToolTurn.run` except
cancellation, which belongs to the caller (barge-in cancels a turn).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from db.errors import DatabaseError
from db.safe_query import UnsafeQuery
from tools.audit import MAX_AUDIT_ARGUMENT_CHARS, ToolAudit, ToolAuditEntry
from tools.call_log import log_finished, log_started
from tools.pii import Redactor, SecretVault
from tools.schema import tool_schema
from tools.tool import Tool, ToolContext, ToolError, ToolResult

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 600
"""An error message to the model is cut to this many characters."""
_MAX_ERRORS_LISTED = 5


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """The raw JSON text the model produced."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    call_id: str
    name: str
    ok: bool
    content: str
    """Exactly what goes back to the model as the tool message."""
    duration_ms: float
    result_bytes: int
    truncated: bool = False
    error: str | None = None
    """A short error kind for logs and metrics: unknown_tool, step_limit, too_large, invalid_arguments,
    refused, timeout, database, result_too_large, overloaded, internal."""


class ToolExecutor:
    """The tools an agent has, and the bounds every call to them obeys."""

    def __init__(
        self,
        tools: Sequence[Tool[Any]],
        audit: ToolAudit | None = None,
        *,
        max_steps_per_turn: int = 4,
        max_result_bytes: int = 8192,
        default_timeout_s: float = 5.0,
        max_argument_bytes: int = 4096,
        shedding: Callable[[], bool] | None = None,
    ) -> None:
        """`max_steps_per_turn` bounds tool calls in one caller turn (the rest are refused);
        `max_result_bytes` bounds the UTF-8 size of each tool message; `default_timeout_s` bounds a
        handler without its own timeout; `max_argument_bytes` bounds the raw argument text parsed.
        While `shedding()` says the pod sheds load (memory at its hard threshold), tool calls are
        refused before they run: a tool result is an allocation the pod cannot afford then."""
        if max_steps_per_turn < 1 or max_result_bytes < 256 or default_timeout_s <= 0 or max_argument_bytes < 2:
            raise ValueError("need max_steps_per_turn >= 1, max_result_bytes >= 256, a positive timeout")
        self.tools: dict[str, Tool[Any]] = {}
        for tool in tools:
            if tool.name in self.tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self.tools[tool.name] = tool
        self.audit = audit
        self.max_steps_per_turn = max_steps_per_turn
        self.max_result_bytes = max_result_bytes
        self.default_timeout_s = default_timeout_s
        self.max_argument_bytes = max_argument_bytes
        self.shedding = shedding
        self._schemas = [tool_schema(tool) for tool in self.tools.values()]

    def schemas(self) -> list[dict[str, Any]]:
        """The chat API's `tools` list (strict)."""
        return json.loads(json.dumps(self._schemas))  # a copy the caller may change

    def turn(self, context: ToolContext, vault: SecretVault | None = None) -> ToolTurn:
        """A fresh step budget for one caller turn; `vault` holds the call's secrets (see ToolTurn)."""
        return ToolTurn(self, context, vault)


_AUDIT_REDACTOR = Redactor()
"""Scrubs audit arguments of a turn without a vault (card numbers and SSNs the model typed)."""


class ToolTurn:
    def __init__(self, executor: ToolExecutor, context: ToolContext, vault: SecretVault | None = None) -> None:
        """With a `vault`, a placeholder the model passes ("[card number 1]") is replaced by its value
        just before validation, so only the tool sees it; the result and any error go back to the
        model with values turned into placeholders, and the audit keeps the model's own text."""
        self.executor = executor
        self.context = context
        self.vault = vault
        self.steps = 0

    async def run(self, call: ToolCall) -> ToolOutcome:
        started = time.perf_counter()
        self.steps += 1
        log_started(call.id, call.name, call.arguments, self.vault, self.context.call_sid)
        try:
            content, error, truncated = await self._run(call)
        except asyncio.CancelledError:  # a barge-in: the start line gets its end all the same
            ms = (time.perf_counter() - started) * 1000
            log_finished(call.id, call.name, self.context.call_sid, ok=False, error="cancelled", ms=ms, result_bytes=0)
            raise
        if error is not None and self.vault is not None:
            content = self.vault.redact(content)  # a refusal may quote what the tool was given
        outcome = ToolOutcome(
            call_id=call.id,
            name=call.name,
            ok=error is None,
            content=content,
            duration_ms=(time.perf_counter() - started) * 1000,
            result_bytes=len(content.encode()),
            truncated=truncated,
            error=error,
        )
        log_finished(
            call.id,
            call.name,
            self.context.call_sid,
            ok=outcome.ok,
            error=error,
            ms=outcome.duration_ms,
            result_bytes=outcome.result_bytes,
        )
        await self._audit(call, outcome)
        return outcome

    async def _run(self, call: ToolCall) -> tuple[str, str | None, bool]:
        executor = self.executor
        name = call.name if isinstance(call.name, str) else ""
        if self.steps > executor.max_steps_per_turn:
            limit = executor.max_steps_per_turn
            return _fail("step_limit", f"step limit reached ({limit} tool calls this turn); answer with what you have")
        if executor.shedding is not None and executor.shedding():
            return _fail("overloaded", "the system is too busy to look this up right now; tell the caller so")
        tool = executor.tools.get(name)
        if tool is None:
            available = ", ".join(executor.tools) or "none"
            return _fail("unknown_tool", f"there is no tool named {name[:64]!r}; available tools: {available}")
        raw = call.arguments if isinstance(call.arguments, str) else ""
        if len(raw) > executor.max_argument_bytes or len(raw.encode(errors="replace")) > executor.max_argument_bytes:
            limit = executor.max_argument_bytes
            return _fail("too_large", f"arguments for {tool.name} are over {limit} bytes; send only its fields")
        try:
            revealed = self.vault.reveal_json(raw) if self.vault is not None else raw
            arguments = tool.arguments.model_validate_json(revealed.strip() or "{}")
        except ValidationError as exc:
            return _fail("invalid_arguments", _describe(tool, exc))
        timeout = tool.timeout_s or executor.default_timeout_s
        try:
            async with asyncio.timeout(timeout):
                result = await tool.handler(arguments, self.context)
        except TimeoutError:
            return _fail("timeout", f"{tool.name} took over {timeout:g} s; tell the caller you cannot check right now")
        except (ToolError, UnsafeQuery) as exc:
            return _fail("refused", str(exc))
        except DatabaseError as exc:
            kind = type(exc.__cause__ or exc).__name__  # the driver's error name, as logged before
            log.warning("tool %s: database error %s", tool.name, kind, extra={"tool": tool.name})
            return _fail("database", f"{tool.name} could not reach the records; tell the caller, offer to try again")
        except Exception:
            log.exception("tool %s failed", tool.name, extra={"tool": tool.name})
            return _fail("internal", f"{tool.name} failed; tell the caller you cannot do that right now")
        try:
            return self._render(tool, result)
        except (TypeError, ValueError):
            log.exception("tool %s returned a result that is not JSON", tool.name, extra={"tool": tool.name})
            return _fail("internal", f"{tool.name} failed; tell the caller you cannot do that right now")

    def _render(self, tool: Tool[Any], result: ToolResult | Mapping[str, Any]) -> tuple[str, str | None, bool]:
        """The result as compact JSON within `max_result_bytes`, shortening the item list if needed."""
        if not isinstance(result, ToolResult):
            result = ToolResult(dict(result))
        cap = self.executor.max_result_bytes
        items = list(result.items)
        keep = len(items)
        while True:
            more = result.more + len(items) - keep
            body: dict[str, Any] = dict(result.data)
            if items or result.more:
                body[result.items_key] = items[:keep]
            if more:
                body["truncated"] = f"truncated: {'at least ' if result.more_is_lower_bound else ''}{more} more"
            content = _dumps(body) if self.vault is None else self.vault.redact(_dumps(body))
            if len(content.encode()) <= cap:
                return content, None, bool(more)
            if keep == 0:
                message = f"{tool.name} found more than fits in a reply; narrow the search"
                return _fail("result_too_large", message, truncated=True)
            keep = keep // 2 if len(content.encode()) > 2 * cap else keep - 1

    async def _audit(self, call: ToolCall, outcome: ToolOutcome) -> None:
        audit = self.executor.audit
        if audit is None:
            return
        raw = call.arguments if isinstance(call.arguments, str) else repr(call.arguments)
        entry = ToolAuditEntry(
            call_sid=self.context.call_sid,
            agent_id=self.context.agent_id,
            tool_call_id=str(call.id)[:64],
            name=str(call.name)[:64],
            arguments=self._redacted(raw)[:MAX_AUDIT_ARGUMENT_CHARS],
            arguments_chars=len(raw),
            ok=outcome.ok,
            error=outcome.error,
            duration_ms=round(outcome.duration_ms, 3),
            result_bytes=outcome.result_bytes,
            truncated=outcome.truncated,
            customer_key=self.context.caller.customer_key,
            at=datetime.now(UTC),
        )
        try:
            await audit.record(entry)
        except Exception:  # the audit trail must not take the call down with it
            log.exception("tool audit write failed", extra={"tool": entry.name})

    def _redacted(self, raw: str) -> str:
        """The arguments as the audit keeps them: placeholders stay, any value the model typed goes."""
        return self.vault.redact(raw) if self.vault is not None else _AUDIT_REDACTOR.scrub(raw)


def _describe(tool: Tool[Any], exc: ValidationError) -> str:
    """What was wrong with the arguments, by field, without echoing the values."""
    allowed = ", ".join(tool.arguments.model_fields)
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False)[:_MAX_ERRORS_LISTED]:
        where = ".".join(str(part)[:40] for part in error["loc"]) or "arguments"
        kind = error["type"]
        if kind == "json_invalid":
            problems.append("arguments are not valid JSON (send one JSON object)")
        elif kind == "missing":
            problems.append(f"{where} is required")
        elif kind == "extra_forbidden":
            problems.append(f"{where} is not a field (fields: {allowed})")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            problems.append(f"arguments must be a JSON object with fields: {allowed}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message[:120]}")
    more = exc.error_count() - len(problems)
    if more > 0:
        problems.append(f"and {more} more")
    listed = "; ".join(problems)
    return f"invalid arguments for {tool.name}: {listed}. Fix them, or ask the caller for what is missing."


def _fail(kind: str, message: str, *, truncated: bool = False) -> tuple[str, str | None, bool]:
    """(content, error kind, truncated) for a refusal."""
    return _error(message), kind, truncated


def _error(message: str) -> str:
    return _dumps({"error": message[:MAX_ERROR_CHARS]})


def _dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body, default=_plain, ensure_ascii=False, separators=(",", ":"))


def _plain(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)[:200]
