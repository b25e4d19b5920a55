"""A FAKE database outage: the test's database behind a client the test can cut.

While cut, every operation (reads, writes, cursors, `ping`) raises what PyMongo raises when no server
answers, `pymongo.errors.ServerSelectionTimeoutError`, after `delay_s` (a dead server makes the driver
wait out its server-selection timeout). It wraps the client, not a repository, so the code under test
goes through all of its own layers (repositories, `DatabaseError` translation) exactly as in a real
outage; against a real server (`MONGODB_URI`) the same wrapper stands in for stopping it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NoReturn

from pymongo.errors import ServerSelectionTimeoutError

from db import Database

OUTAGE_ERROR = "localhost:27017: [Errno 111] Connection refused (FAKE outage: the test cut the client)"


class CuttableClient:
    """Wraps a database client (PyMongo's or mongomock-motor's); `cut` makes it a dead server."""

    def __init__(self, client: Any, delay_s: float = 0.0) -> None:
        self._client = client
        self.cut = False
        self.delay_s = delay_s
        self.refused = 0
        """Operations refused while cut."""

    async def fail(self) -> NoReturn:
        self.refused += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        raise ServerSelectionTimeoutError(OUTAGE_ERROR)

    def __getitem__(self, name: str) -> _CuttableDatabase:
        return _CuttableDatabase(self, self._client[name])

    def __getattr__(self, name: str) -> Any:  # close, drop_database: the test's own housekeeping
        return getattr(self._client, name)


class _CuttableDatabase:
    def __init__(self, cuttable: CuttableClient, database: Any) -> None:
        self._cuttable = cuttable
        self._database = database

    def __getitem__(self, name: str) -> _CuttableCollection:
        return _CuttableCollection(self._cuttable, self._database[name])

    async def command(self, *args: Any, **kwargs: Any) -> Any:
        if self._cuttable.cut:
            await self._cuttable.fail()
        return await self._database.command(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)


class _CuttableCollection:
    def __init__(self, cuttable: CuttableClient, collection: Any) -> None:
        self._cuttable = cuttable
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        member = getattr(self._collection, name)
        if not callable(member):
            return member

        def call(*args: Any, **kwargs: Any) -> Any:
            return _DeadOperation(self._cuttable) if self._cuttable.cut else member(*args, **kwargs)

        return call


class _DeadOperation:
    """What an operation on a cut client returns: awaiting it, iterating it (a cursor) or listing it
    raises the driver's outage error; cursor modifiers return it unchanged."""

    def __init__(self, cuttable: CuttableClient) -> None:
        self._cuttable = cuttable

    def __await__(self) -> Any:
        return self._cuttable.fail().__await__()

    def __aiter__(self) -> _DeadOperation:
        return self

    async def __anext__(self) -> NoReturn:
        await self._cuttable.fail()

    async def to_list(self, *args: Any, **kwargs: Any) -> NoReturn:
        await self._cuttable.fail()

    def __getattr__(self, name: str) -> Callable[..., _DeadOperation]:
        return lambda *args, **kwargs: self


def cuttable(database: Database, delay_s: float = 0.0) -> tuple[Database, CuttableClient]:
    """The same database (same data, same settings) on a client the test can cut."""
    client = CuttableClient(database._client, delay_s)  # the one place a test reaches the client
    return Database(client, database.settings, database.kind), client
