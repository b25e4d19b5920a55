"""The database handle the rest of the code holds: PyMongo's async client, or the in-memory fake.

`connect()` opens MongoDB through `pymongo.AsyncMongoClient` (Motor's official successor). Tests and
the offline benchmark use `in_memory()`, a fake built on mongomock-motor's `AsyncMongoMockClient`
behind this same class. The two differ in small ways (closing the client is a coroutine only in
PyMongo; the fake accepts and ignores `max_time_ms` and `batch_size`); those differences stay here.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pymongo import AsyncMongoClient

from db.settings import DbSettings

Kind = Literal["mongodb", "in-memory fake"]


class Database:
    """One database on one client. Collections are reached by name; reads take their cursor
    options explicitly so that no code path can forget a bound."""

    def __init__(self, client: Any, settings: DbSettings, kind: Kind) -> None:
        self._client = client
        self._db = client[settings.database]
        self.settings = settings
        self.kind: Kind = kind

    @property
    def name(self) -> str:
        return self.settings.database

    def collection(self, name: str) -> Any:
        """The driver's collection object (AsyncCollection, or the fake's)."""
        return self._db[name]

    def find(
        self,
        collection: str,
        filter: Mapping[str, Any],
        projection: Mapping[str, Any],
        *,
        limit: int,
        max_time_ms: int,
        batch_size: int,
        sort: Sequence[tuple[str, int]] = (),
    ) -> Any:
        """An async cursor with every bound set. Only the safe-query layer and repositories that
        read by their own key call this."""
        return self.collection(collection).find(
            dict(filter),
            dict(projection),
            limit=limit,
            max_time_ms=max_time_ms,
            batch_size=batch_size,
            sort=list(sort) or None,
        )

    async def count(self, collection: str, filter: Mapping[str, Any], *, limit: int, max_time_ms: int) -> int:
        return int(await self.collection(collection).count_documents(dict(filter), limit=limit, maxTimeMS=max_time_ms))

    async def ping(self) -> None:
        """Raises when the server cannot be reached within the server-selection timeout."""
        await self._db.command("ping")

    async def drop(self) -> None:
        """Drop the whole database (tests and benchmarks only)."""
        await self._client.drop_database(self.settings.database)

    async def close(self) -> None:
        result = self._client.close()
        if inspect.isawaitable(result):
            await result


def connect(settings: DbSettings) -> Database:
    """Open MongoDB with `settings` (connects lazily; `ping()` to check now)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.uri,
        tz_aware=True,
        appname="switchboard",
        serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
        connectTimeoutMS=settings.connect_timeout_ms,
        maxPoolSize=settings.max_pool_size,
    )
    return Database(client, settings, "mongodb")


def in_memory(settings: DbSettings | None = None) -> Database:
    """A fake MongoDB held in this process (mongomock-motor), for tests and offline benchmarks.
    It ignores `max_time_ms` and `batch_size` and scans without indexes, but enforces unique
    indexes and speaks the same query language."""
    try:
        from mongomock_motor import AsyncMongoMockClient
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the in-memory database needs the test or demo extra: pip install -e '.[demo]'") from exc
    return Database(AsyncMongoMockClient(tz_aware=True), settings or DbSettings(), "in-memory fake")
