"""What every admin route shares: the pod and database, pages, and errors with field locations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel

from db import Database
from telephony.admin.auth import Principal

if TYPE_CHECKING:
    from telephony.pod import Pod

T = TypeVar("T")
MAX_PAGE = 200
"""Bound on items one list request returns."""


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = None
    """Pass as `after` (or `cursor`) for the next page; null on the last page."""


class Problem(BaseModel):
    detail: Any


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No API key, or an unknown one"},
    403: {"model": Problem, "description": "The key lacks the scope this route needs"},
    413: {"model": Problem, "description": "Request body too large"},
}


def pod_of(request: Request) -> Pod:
    return request.app.state.pod  # type: ignore[no-any-return]


def database_of(request: Request) -> Database:
    database = pod_of(request).database
    if database is None:
        raise HTTPException(503, "the admin API needs SWITCHBOARD_MONGODB_URI")
    return database


def not_found(what: str) -> NoReturn:
    raise HTTPException(404, f"{what} not found")


def field_error(location: list[str | int], message: str, status: int = 422) -> NoReturn:
    """The shape of FastAPI's own validation errors, for checks only a route can make."""
    raise HTTPException(status, [{"loc": location, "msg": message, "type": "value_error"}])


async def agent_exists(request: Request, database: Database, agent_id: str) -> bool:
    """Stored in the database, or served by this pod (built in, or from the agents file)."""
    from db import AgentConfigs

    return (
        pod_of(request).agents.get(agent_id) is not None or await AgentConfigs(database).current(agent_id) is not None
    )


MAX_TENANT_AGENTS = 1000
"""Bound on the agents one tenant's listing filters by (a tenant with more sees its first 1,000 agents' calls)."""


def principal_of(request: Request) -> Principal:
    """The key this request acts for (set by `ApiKeyAuth` before any route runs)."""
    return request.state.principal  # type: ignore[no-any-return]


def key_tenant(request: Request) -> str | None:
    """The tenant the request's key is restricted to, or None for an unrestricted key."""
    return principal_of(request).tenant


async def agent_tenant(request: Request, database: Database | None, agent_id: str) -> str | None:
    """The tenant of an agent: its current stored config's, else the one this pod built at start-up."""
    from db import AgentConfigs

    if database is not None:
        stored = await AgentConfigs(database).current(agent_id)
        if stored is not None:
            tenant = stored.config.get("tenant")
            return tenant if isinstance(tenant, str) else None
    agent = pod_of(request).agents.get(agent_id)
    config = getattr(agent, "config", None)
    return getattr(config, "tenant", None)


async def tenant_agent_ids(request: Request, database: Database) -> list[str] | None:
    """The agent ids whose calls the request's key may list, or None when the key is unrestricted."""
    from db import AgentConfigs

    tenant = key_tenant(request)
    if tenant is None:
        return None
    ids = await AgentConfigs(database).ids_of_tenant(tenant, limit=MAX_TENANT_AGENTS)
    built = [
        agent_id
        for agent_id, agent in pod_of(request).agents.agents.items()
        if getattr(getattr(agent, "config", None), "tenant", None) == tenant
    ]
    return sorted(set(ids) | set(built))


async def visible_call(request: Request, database: Database, call_sid: str) -> dict[str, Any]:
    """The call record, or 404 when there is none or it belongs to another tenant than the key's (the same
    answer for both, so a key cannot learn that another tenant's call exists)."""
    from db import CallRecords

    record = await CallRecords(database).get(call_sid)
    if record is None:
        not_found("call")
    tenant = key_tenant(request)
    if tenant is not None and await agent_tenant(request, database, str(record.get("agent_id"))) != tenant:
        not_found("call")
    return record
