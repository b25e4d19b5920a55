"""The one database error the rest of the code sees, so that the driver stays inside db/.

Every public coroutine of a repository (`AgentConfigs`, `BusinessData`, `CallRecords`...) turns the
driver's `PyMongoError` into `DatabaseError`, keeping the driver's error as `__cause__`. `Database` and
`SafeQuery`, which the repositories build on, do not: a repository still catches what it expects
from the driver (a duplicate key is a refusal, not an outage) before the rest is translated. Callers
above (a tool call, the stored agents) catch `DatabaseError` to say "the records are out of reach"
without importing pymongo.
db's own refusals (`AgentExists`, `VersionConflict`, `UnsafeQuery`...) pass through unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from pymongo.errors import PyMongoError

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=type)


class DatabaseError(Exception):
    """The database failed: unreachable, timed out, or it refused the operation. The message starts
    with the driver's error name (`ServerSelectionTimeoutError: ...`), which is what logs need."""


def translated(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """`method`, raising `DatabaseError` where the driver raises."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except PyMongoError as exc:
            raise DatabaseError(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


def translates_driver_errors(cls: C) -> C:
    """Class decorator: every public coroutine method of `cls` raises `DatabaseError`, never the driver's."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, translated(member))
    return cls
