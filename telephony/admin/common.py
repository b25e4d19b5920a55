"""What every admin route shares: the pod and database, pages, and errors with field locations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel

from db import Database

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
