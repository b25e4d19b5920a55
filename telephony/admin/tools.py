"""`/api/tools`: operator-declared tools, versioned like agents, and their dry run.

A declaration is validated as a whole (422 naming the field: pydantic's `loc` under `body`), then
built on this pod's resources (its caps, its allowed hosts), so a declaration that could not run
here is refused when it is written, never during a call. Every write is a new version; agents
follow a tool (`"name"`) or pin one (`"name@3"`), and an agent naming a tool that does not exist is
refused when the agent is written (`check_agent_tools`). The dry run shows the exact bounded query
or request a tool would issue for sample arguments and, with `execute`, its capped result.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from agents.config import AgentConfig
from db import AgentConfigs, Database, StoredDeclaration, ToolDeclarations, ToolExists, VersionConflict
from db.tool_declarations import TOOL_NAME_PATTERN
from telephony.admin.common import MAX_PAGE, Page, Problem, database_of, field_error, not_found, pod_of
from telephony.agent_tools import (
    ToolReferenceError,
    build_declared,
    declared_tool_resources,
    followed,
    resolve_references,
)
from tools import CallerIdentity, ToolCall, ToolContext, ToolError, ToolExecutor
from tools.declared import (
    DeclaredToolResources,
    ToolDeclaration,
    build_tool,
    declaration_json,
    describe,
    parse_declaration,
)

router = APIRouter()
ToolName = Annotated[str, Path(pattern=TOOL_NAME_PATTERN, max_length=64)]
Db = Annotated[Database, Depends(database_of)]


def resources_of(request: Request) -> DeclaredToolResources:
    """What this pod builds declared tools on (its business database, its allowed hosts)."""
    return declared_tool_resources(database_of(request), pod_of(request).settings)


Resources = Annotated[DeclaredToolResources, Depends(resources_of)]
DRY_RUN_CALL_SID = "dry-run"
"""The call sid a dry run's context carries (no call record is written for it)."""


class ToolOut(BaseModel):
    name: str
    version: int
    updated_at: datetime
    declaration: ToolDeclaration


class ToolVersions(BaseModel):
    name: str
    versions: list[int]
    """Newest first."""


class DryRunIn(BaseModel):
    arguments: dict[str, Any] = Field(default_factory=dict)
    """Sample arguments, as the model would send them."""
    customer_key: str | None = Field(None, min_length=1, max_length=200)
    """The verified caller a `scope: caller` tool is run for (as if identity had verified them)."""
    execute: bool = False
    """Also run it (a read, or the write it declares) and return its capped result."""
    version: int | None = Field(None, ge=1, le=2**31)
    """A stored version to try; unset: the latest."""


class DryRunOut(BaseModel):
    name: str
    version: int
    issued: dict[str, Any]
    """The exact bounded query or request the tool would issue for these arguments."""
    result: Any = None
    """With `execute`: what the model would be given (capped as in a call)."""


def _validation_422(exc: ValidationError, prefix: tuple[str | int, ...] = ("body",)) -> NoReturn:
    errors = [{"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    raise HTTPException(422, errors)


def _out(stored: StoredDeclaration) -> ToolOut:
    declaration = parse_declaration({**stored.declaration, "name": stored.name})
    return ToolOut(name=stored.name, version=stored.version, updated_at=stored.updated_at, declaration=declaration)


def _checked(declaration: ToolDeclaration, resources: DeclaredToolResources) -> dict[str, Any]:
    """The document to store, once this pod has shown it can build the tool."""
    try:
        build_tool(declaration, resources)
    except ValidationError as exc:
        _validation_422(exc)
    return {key: value for key, value in declaration_json(declaration).items() if key != "name"}


async def check_agent_tools(config: AgentConfig, db: Database, resources: DeclaredToolResources) -> None:
    """422 naming the tool when an agent names one that does not exist (or cannot be built here)."""
    try:
        references = await resolve_references(config.tools, db)
    except ToolReferenceError as exc:
        field_error(["body", "tools", exc.index], str(exc))
    for index, reference in enumerate(references):
        if reference.declared is not None:
            try:
                build_declared(reference.declared, resources)
            except ValidationError as exc:
                field_error(["body", "tools", index], f"tool {reference.name!r} cannot be built: {exc}"[:600])


@router.get("/tools", response_model=Page[ToolOut], tags=["tools"])
async def list_tools(
    db: Db,
    after: Annotated[str | None, Query(pattern=TOOL_NAME_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[ToolOut]:
    stored = await ToolDeclarations(db).page(after=after, limit=limit)
    return Page(items=[_out(s) for s in stored], next=stored[-1].name if len(stored) == limit else None)


@router.post("/tools", status_code=201, response_model=ToolOut, tags=["tools"], responses={409: {"model": Problem}})
async def create_tool(declaration: ToolDeclaration, db: Db, resources: Resources) -> ToolOut:
    """A new tool (version 1). A built-in's name may be taken: agents naming it then get the
    declaration (see `tools.declared.BUILTIN_DECLARATIONS`, the caller-scoped order tools)."""
    document = _checked(declaration, resources)
    try:
        stored = await ToolDeclarations(db).create(declaration.name, document)
    except ToolExists:
        field_error(["body", "name"], f"tool {declaration.name!r} already exists", status=409)
    return _out(stored)


@router.get("/tools/{name}", response_model=ToolOut, tags=["tools"], responses={404: {"model": Problem}})
async def get_tool(name: ToolName, db: Db) -> ToolOut:
    stored = await ToolDeclarations(db).current(name)
    return _out(stored) if stored else not_found(f"tool {name!r}")


@router.put(
    "/tools/{name}",
    response_model=ToolOut,
    tags=["tools"],
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def update_tool(
    name: ToolName,
    declaration: ToolDeclaration,
    db: Db,
    resources: Resources,
    expected_version: Annotated[
        int | None, Query(ge=1, description="refuse (409) unless this is the current version")
    ] = None,
) -> ToolOut:
    """Replace the whole declaration: a new version, which agents following the tool use from their
    next call on (agents pinned to a version keep theirs)."""
    if declaration.name != name:
        field_error(["body", "name"], "must match the tool name in the path")
    document = _checked(declaration, resources)
    try:
        stored = await ToolDeclarations(db).update(name, document, expected_version=expected_version)
    except VersionConflict as conflict:
        field_error(["query", "expected_version"], f"the current version is {conflict.current}", status=409)
    return _out(stored) if stored else not_found(f"tool {name!r}")


@router.delete(
    "/tools/{name}", status_code=204, tags=["tools"], responses={404: {"model": Problem}, 409: {"model": Problem}}
)
async def delete_tool(name: ToolName, db: Db) -> Response:
    """Retire the tool (its versions stay readable, so pinned agents keep it). Refused while an
    agent follows its latest version."""
    agents = await AgentConfigs(db).page(limit=db.settings.max_listed)
    following = [s.agent_id for s in agents if name in followed(s.config.get("tools", []))]
    if following:
        field_error(["path", "name"], f"agents use this tool: {', '.join(following[:5])}", status=409)
    if not await ToolDeclarations(db).delete(name):
        not_found(f"tool {name!r}")
    return Response(status_code=204)


@router.get("/tools/{name}/versions", response_model=ToolVersions, tags=["tools"], responses={404: {"model": Problem}})
async def tool_versions(name: ToolName, db: Db, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50) -> ToolVersions:
    versions = await ToolDeclarations(db).versions(name, limit=limit)
    return ToolVersions(name=name, versions=versions) if versions else not_found(f"tool {name!r}")


@router.get(
    "/tools/{name}/versions/{version}", response_model=ToolOut, tags=["tools"], responses={404: {"model": Problem}}
)
async def tool_version(name: ToolName, version: Annotated[int, Path(ge=1, le=2**31)], db: Db) -> ToolOut:
    stored = await ToolDeclarations(db).version(name, version)
    return _out(stored) if stored else not_found(f"version {version} of tool {name!r}")


@router.post(
    "/tools/{name}/dry-run",
    response_model=DryRunOut,
    tags=["tools"],
    responses={404: {"model": Problem}, 422: {"model": Problem}},
)
async def dry_run(name: ToolName, body: DryRunIn, db: Db, resources: Resources, request: Request) -> DryRunOut:
    """The exact bounded query or request the tool would issue for `arguments` (and, with
    `execute`, its result as the model would get it): what an operator checks before an agent uses it."""
    tools = ToolDeclarations(db)
    stored = await (tools.current(name) if body.version is None else tools.version(name, body.version))
    if stored is None:
        not_found(f"tool {name!r}" if body.version is None else f"version {body.version} of tool {name!r}")
    declaration = parse_declaration({**stored.declaration, "name": stored.name})
    context = ToolContext(DRY_RUN_CALL_SID, "dry-run", "", CallerIdentity(customer_key=body.customer_key))
    try:
        issued = describe(declaration, body.arguments, context, resources, customer_key=body.customer_key)
    except ValidationError as exc:
        _validation_422(exc, ("body", "arguments"))
    except ToolError as exc:
        field_error(["body", "customer_key"], str(exc))
    result = None
    if body.execute:
        settings = pod_of(request).settings
        executor = ToolExecutor(
            [build_tool(declaration, resources)],
            max_result_bytes=settings.tool_max_result_bytes,
            default_timeout_s=settings.tool_timeout_seconds,
        )
        outcome = await executor.turn(context).run(ToolCall(DRY_RUN_CALL_SID, name, json.dumps(body.arguments)))
        result = json.loads(outcome.content)
    return DryRunOut(name=name, version=stored.version, issued=issued, result=result)
