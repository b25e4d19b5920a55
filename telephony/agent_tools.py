"""An agent's tools: built-ins by name, operator-declared tools from the database, one executor.

An agent names each tool as `name` (a declared tool following its latest version, else the code
built-in of that name) or `name@3` (a declared tool pinned to version 3). A declaration takes a
built-in's name to re-express it (`tools.declared.BUILTIN_DECLARATIONS`: caller-scoped). The admin
API checks the references when an agent is written (422 naming the tool), so a call never meets an
unknown one; building the agent resolves them again (`tools_for`), since a tool may have changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.config import AgentConfig
from db import BusinessData, CallRecords, Database, SafeQuery, StoredDeclaration, ToolDeclarations
from db.tool_declarations import TOOL_NAME_PATTERN, parse_reference
from telephony.settings import Settings
from tools import BUILTIN, CallRecordsAudit, Tool, ToolAudit, ToolExecutor, builtin_tools
from tools.declared import DeclaredToolResources, build_tool, parse_declaration

_NAME = re.compile(TOOL_NAME_PATTERN)


class ToolReferenceError(ValueError):
    """An agent's tool reference that names no tool (or no such version, or a tool twice)."""

    def __init__(self, index: int, reference: str, message: str) -> None:
        super().__init__(f"tool {reference!r}: {message}")
        self.index = index
        self.reference = reference


@dataclass(frozen=True, slots=True)
class Reference:
    """One entry of `AgentConfig.tools`, resolved: a built-in, or a stored declaration."""

    name: str
    declared: StoredDeclaration | None = None


def followed(references: Sequence[object]) -> list[str]:
    """Names of the tools these references follow (not pinned): the ones whose new versions (or a
    first declaration re-expressing a built-in) change the agent. Pinned or malformed ones are left out."""
    return [r for r in references if isinstance(r, str) and _NAME.match(r)]


async def resolve_references(references: Sequence[str], database: Database | None) -> list[Reference]:
    """Each reference resolved, in order; `ToolReferenceError` for the first that names nothing."""
    resolved: list[Reference] = []
    seen: set[str] = set()
    for index, reference in enumerate(references):
        try:
            name, version = parse_reference(reference)
        except ValueError as exc:
            raise ToolReferenceError(index, str(reference), str(exc)) from None
        if name in seen:
            raise ToolReferenceError(index, reference, "the agent names this tool twice")
        seen.add(name)
        declared = await ToolDeclarations(database).resolve(reference) if database is not None else None
        if declared is not None:
            resolved.append(Reference(name, declared))
        elif name in BUILTIN and version is None:
            resolved.append(Reference(name))
        elif database is None:
            raise ToolReferenceError(index, reference, "declared tools need SWITCHBOARD_MONGODB_URI")
        else:
            what = f"no version {version} of tool {name!r}" if version else f"no tool {name!r}"
            raise ToolReferenceError(index, reference, f"{what} (built-in tools: {', '.join(BUILTIN)})")
    return resolved


def declared_tool_resources(database: Database, settings: Settings) -> DeclaredToolResources:
    """What declared tools are built on in this pod: the business database behind the safe-query
    layer, and the hosts http tools may call (`SWITCHBOARD_TOOL_HTTP_ALLOWED_HOSTS`; header secrets
    from the environment)."""
    return DeclaredToolResources(safe_query=SafeQuery(database), allowed_hosts=settings.http_allowed_hosts())


def build_declared(stored: StoredDeclaration, resources: DeclaredToolResources) -> Tool[Any]:
    """A stored declaration compiled into a tool (pydantic `ValidationError` if it no longer
    validates or this pod cannot build it)."""
    return build_tool(parse_declaration({**stored.declaration, "name": stored.name}), resources)


async def tools_for(
    config: AgentConfig,
    database: Database | None,
    settings: Settings,
    shedding: Callable[[], bool] | None = None,
    audit: ToolAudit | None = None,
) -> ToolExecutor | None:
    """The agent's tools (built-in and declared, in the order it names them) on the database, or
    None when it has none. While `shedding()` (the memory guard at its hard threshold), tool calls
    are refused. `audit`: where tool calls are audited (the pod's record writer; default: each
    entry written to the call's record as it comes).

    An agent naming tools on a pod without a database, or a tool that does not exist, is a
    configuration error (`ValueError`), said at start-up or when a stored agent is built."""
    if not config.tools:
        return None
    if database is None:
        raise ValueError(f"agent {config.id!r} uses tools {config.tools} but SWITCHBOARD_MONGODB_URI is not set")
    references = await resolve_references(config.tools, database)
    named = [reference.name for reference in references if reference.declared is None]
    builtins = {tool.name: tool for tool in builtin_tools(BusinessData(SafeQuery(database)), named)}
    resources = declared_tool_resources(database, settings)
    tools = [builtins[r.name] if r.declared is None else build_declared(r.declared, resources) for r in references]
    tools += config.identity.tools()  # identify_caller / verify_identity, when the identity policy needs them
    return ToolExecutor(
        tools,
        audit or CallRecordsAudit(CallRecords(database)),
        max_steps_per_turn=settings.tool_max_steps_per_turn,
        max_result_bytes=settings.tool_max_result_bytes,
        default_timeout_s=settings.tool_timeout_seconds,
        shedding=shedding,
    )
