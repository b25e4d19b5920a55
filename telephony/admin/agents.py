"""`/api/agents` (versioned agent configs) and `/api/numbers` (number -> agent routing)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from agents.config import AgentConfig
from db import AgentConfigs, AgentExists, Database, PhoneNumbers, StoredConfig, VersionConflict
from db.agent_configs import AGENT_ID_PATTERN
from telephony.admin.agent_checks import check_agent
from telephony.admin.common import (
    MAX_PAGE,
    Page,
    Problem,
    agent_exists,
    database_of,
    field_error,
    key_tenant,
    not_found,
)
from telephony.admin.tools import Resources
from telephony.campaigns.campaign import E164_PATTERN

router = APIRouter()
AgentId = Annotated[str, Path(pattern=AGENT_ID_PATTERN, max_length=64)]
Number = Annotated[str, Path(pattern=E164_PATTERN, max_length=16)]
Db = Annotated[Database, Depends(database_of)]


class AgentOut(BaseModel):
    id: str
    version: int
    updated_at: datetime
    config: AgentConfig


class Versions(BaseModel):
    id: str
    versions: list[int]
    """Newest first."""


class Route(BaseModel):
    number: str
    agent_id: str


class RouteIn(BaseModel):
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)


def _out(stored: StoredConfig) -> AgentOut:
    return AgentOut(
        id=stored.agent_id,
        version=stored.version,
        updated_at=stored.updated_at,
        config=AgentConfig.model_validate({**stored.config, "id": stored.agent_id}),
    )


def _theirs(request: Request, stored: StoredConfig | None) -> StoredConfig | None:
    """The stored agent if the request's key may see it: a tenant's key sees only that tenant's agents (another
    tenant's answers 404, as if it did not exist)."""
    tenant = key_tenant(request)
    if stored is None or tenant is None or stored.config.get("tenant") == tenant:
        return stored
    return None


async def _visible_to_key(request: Request, db: Database, agent_id: str) -> None:
    """404 for a tenant's key asking about an agent that is not its tenant's (now)."""
    if key_tenant(request) is not None and _theirs(request, await AgentConfigs(db).current(agent_id)) is None:
        not_found(f"agent {agent_id!r}")


def _own_tenant(request: Request, config: AgentConfig) -> None:
    tenant = key_tenant(request)
    if tenant is not None and config.tenant != tenant:
        field_error(["body", "tenant"], f"this key writes only agents of tenant {tenant!r}")


@router.get("/agents", response_model=Page[AgentOut], tags=["agents"])
async def list_agents(
    db: Db,
    request: Request,
    after: Annotated[str | None, Query(pattern=AGENT_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[AgentOut]:
    stored = await AgentConfigs(db).page(after=after, limit=limit, tenant=key_tenant(request))
    return Page(items=[_out(s) for s in stored], next=stored[-1].agent_id if len(stored) == limit else None)


@router.post("/agents", status_code=201, response_model=AgentOut, tags=["agents"], responses={409: {"model": Problem}})
async def create_agent(config: AgentConfig, db: Db, resources: Resources, request: Request) -> AgentOut:
    _own_tenant(request, config)
    await check_agent(config, db, resources, request)
    try:
        stored = await AgentConfigs(db).create(config.id, config.model_dump(mode="json", exclude={"id"}))
    except AgentExists:
        field_error(["body", "id"], f"agent {config.id!r} already exists", status=409)
    return _out(stored)


@router.get("/agents/{agent_id}", response_model=AgentOut, tags=["agents"], responses={404: {"model": Problem}})
async def get_agent(agent_id: AgentId, db: Db, request: Request) -> AgentOut:
    stored = _theirs(request, await AgentConfigs(db).current(agent_id))
    return _out(stored) if stored else not_found(f"agent {agent_id!r}")


@router.put(
    "/agents/{agent_id}",
    response_model=AgentOut,
    tags=["agents"],
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def update_agent(
    agent_id: AgentId,
    config: AgentConfig,
    db: Db,
    resources: Resources,
    request: Request,
    expected_version: Annotated[
        int | None, Query(ge=1, description="refuse (409) unless this is the current version")
    ] = None,
) -> AgentOut:
    """Replace the agent's whole config; the result is a new version (calls record the version)."""
    if config.id != agent_id:
        field_error(["body", "id"], "must match the agent id in the path")
    _own_tenant(request, config)
    await _visible_to_key(request, db, agent_id)
    await check_agent(config, db, resources, request)
    try:
        stored = await AgentConfigs(db).update(
            agent_id, config.model_dump(mode="json", exclude={"id"}), expected_version=expected_version
        )
    except VersionConflict as conflict:
        field_error(["query", "expected_version"], f"the current version is {conflict.current}", status=409)
    return _out(stored) if stored else not_found(f"agent {agent_id!r}")


@router.delete(
    "/agents/{agent_id}",
    status_code=204,
    tags=["agents"],
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def delete_agent(agent_id: AgentId, db: Db, request: Request) -> Response:
    """Retire the agent (its versions stay readable). Refused while a number routes to it."""
    await _visible_to_key(request, db, agent_id)
    routed = await PhoneNumbers(db).numbers_for(agent_id, limit=5)
    if routed:
        field_error(["path", "agent_id"], f"numbers still route to this agent: {', '.join(routed)}", status=409)
    if not await AgentConfigs(db).delete(agent_id):
        not_found(f"agent {agent_id!r}")
    return Response(status_code=204)


@router.get(
    "/agents/{agent_id}/versions", response_model=Versions, tags=["agents"], responses={404: {"model": Problem}}
)
async def agent_versions(
    agent_id: AgentId, db: Db, request: Request, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50
) -> Versions:
    await _visible_to_key(request, db, agent_id)
    versions = await AgentConfigs(db).versions(agent_id, limit=limit)
    return Versions(id=agent_id, versions=versions) if versions else not_found(f"agent {agent_id!r}")


@router.get(
    "/agents/{agent_id}/versions/{version}",
    response_model=AgentOut,
    tags=["agents"],
    responses={404: {"model": Problem}},
)
async def agent_version(
    agent_id: AgentId, version: Annotated[int, Path(ge=1, le=2**31)], db: Db, request: Request
) -> AgentOut:
    await _visible_to_key(request, db, agent_id)
    stored = await AgentConfigs(db).version(agent_id, version)
    return _out(stored) if stored else not_found(f"version {version} of agent {agent_id!r}")


@router.get("/numbers", response_model=Page[Route], tags=["numbers"])
async def list_numbers(db: Db) -> Page[Route]:
    routes = await PhoneNumbers(db).routes()
    return Page(items=[Route(number=n, agent_id=a) for n, a in routes.items()])


@router.put("/numbers/{number}", response_model=Route, tags=["numbers"])
async def route_number(number: Number, route: RouteIn, db: Db, request: Request) -> Route:
    """Calls to `number` are answered by `agent_id` (stored, or built into the pod like `echo`)."""
    if not await agent_exists(request, db, route.agent_id):
        field_error(["body", "agent_id"], f"no agent {route.agent_id!r}")
    await PhoneNumbers(db).assign(number, route.agent_id)
    return Route(number=number, agent_id=route.agent_id)


@router.delete("/numbers/{number}", status_code=204, tags=["numbers"], responses={404: {"model": Problem}})
async def release_number(number: Number, db: Db) -> Response:
    if not await PhoneNumbers(db).release(number):
        not_found(f"number {number}")
    return Response(status_code=204)
