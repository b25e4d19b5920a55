"""The safe-query layer: the only way a tool reads (or writes) business data.

The incident this exists for: a model called a search tool with `{}`, the code ran
`collection.find(params)`, and a million documents were decoded into a 1 GiB pod. Here that cannot
happen by construction:

- Filters are built from a `ReadSpec` the tool declares and plain values it validated: field names
  must be declared, may not start with `$` or contain a dot, and values must be scalars (a dict
  could smuggle an operator). The only operators are the ones this module writes (`Between`, `Prefix`).
- A filter with no equality on a selective (indexed, near-unique) field is refused.
- Every read has a limit (default and hard maximum), a projection of the declared fields,
  `max_time_ms` and a batch size, and is read batch by batch against a byte budget; what did not fit
  is reported as "truncated: N more" from a capped count. No server-side JavaScript, ever.

Every operation is reported to an optional observer before it is issued, so tests (and metrics)
can see exactly what reached the database.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import bson
from pymongo import ReturnDocument

from db.client import Database
from db.settings import DbSettings

Scalar = str | int | float | bool | datetime
_SCALARS = (str, int, float, bool, datetime)
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MIN_PREFIX_CHARS = 3
"""A prefix on a selective field counts as selective only from this many characters on."""


class UnsafeQuery(ValueError):
    """A query the layer refuses to issue. The message is short and safe to show a model."""


@dataclass(frozen=True, slots=True)
class Between:
    """A range on one field: `low <= value < high` (`<= high` when `high_inclusive`); either end may
    be open (None)."""

    low: Scalar | date | None = None
    high: Scalar | date | None = None
    high_inclusive: bool = False


@dataclass(frozen=True, slots=True)
class Prefix:
    """String values starting with `text`: an anchored regular expression of the escaped text, which
    the server answers from the field's index. Selective (on a selective field) only from
    `MIN_PREFIX_CHARS` characters on, so "a" cannot list a collection."""

    text: str


@dataclass(frozen=True, slots=True)
class ReadSpec:
    """What a tool may read from one collection, declared in code, never taken from a model."""

    collection: str
    fields: tuple[str, ...]
    """The projection: only these fields come back (`_id` only if listed)."""
    selective: frozenset[str]
    """Fields whose equality makes a filter narrow enough (indexed, few documents per value).
    At least one must appear in every filter with a plain value."""
    filterable: frozenset[str] = frozenset()
    """Further fields a filter may narrow by (equality or `Between`), never alone."""
    sort: tuple[tuple[str, int], ...] = ()
    """Fixed order of results (e.g. newest first)."""

    def __post_init__(self) -> None:
        names = {*self.fields, *self.selective, *self.filterable, *(name for name, _ in self.sort)}
        bad = sorted(name for name in names if not _FIELD_NAME.match(name))
        if bad or not self.fields or not self.selective:
            raise ValueError(f"{self.collection}: a ReadSpec needs fields and selective fields with plain names {bad}")


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One operation as it was sent to the database."""

    operation: Literal["find", "count", "insert", "update"]
    collection: str
    filter: Mapping[str, Any]
    projection: Mapping[str, Any] | None
    limit: int | None
    max_time_ms: int | None
    batch_size: int | None
    sort: tuple[tuple[str, int], ...] = ()


QueryObserver = Callable[[QueryRecord], None]


class QueryLog:
    """An observer that keeps the last `max_records` operations (tests, debugging)."""

    def __init__(self, max_records: int = 10_000) -> None:
        self.records: deque[QueryRecord] = deque(maxlen=max_records)
        """Bounded: the oldest records fall off past `max_records`."""

    def __call__(self, record: QueryRecord) -> None:
        self.records.append(record)

    def __iter__(self) -> Iterator[QueryRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def clear(self) -> None:
        self.records.clear()


@dataclass(frozen=True, slots=True)
class ReadResult:
    documents: list[dict[str, Any]]
    more: int = 0
    """Matching documents left out (by the limit or the byte budget)."""
    more_is_lower_bound: bool = False
    """True when the count stopped at `count_cap`, so there are at least `more` left out."""
    bytes: int = 0
    """BSON bytes of the returned documents."""
    stopped_by: Literal["limit", "bytes"] | None = None

    @property
    def truncated(self) -> bool:
        return self.stopped_by is not None

    def truncation_note(self) -> str | None:
        """The note for the model, "truncated: N more" (or "at least N more"); None when complete."""
        if not self.truncated:
            return None
        return f"truncated: {'at least ' if self.more_is_lower_bound else ''}{self.more} more"


def build_filter(spec: ReadSpec, where: Mapping[str, object], *, max_string_chars: int = 256) -> dict[str, Any]:
    """Turn validated values into a MongoDB filter, or raise `UnsafeQuery` saying why not."""
    if not isinstance(where, Mapping):
        raise UnsafeQuery("a filter must be a mapping of field names to values")
    built: dict[str, Any] = {}
    selective = False
    for name, value in where.items():
        _check_name(spec, name)
        if isinstance(value, Between):
            built[name] = _range(name, value, max_string_chars)
            continue
        if isinstance(value, Prefix):
            built[name] = _prefix(name, value, max_string_chars)
            if name in spec.selective and len(value.text) >= MIN_PREFIX_CHARS:
                selective = True
            continue
        built[name] = _scalar(name, value, max_string_chars)
        if name in spec.selective and value != "":
            selective = True
    if not selective:
        wanted = " or ".join(sorted(spec.selective))
        raise UnsafeQuery(f"refused: a search of {spec.collection} needs {wanted}")
    return built


def _check_name(spec: ReadSpec, name: object) -> None:
    if not isinstance(name, str):
        raise UnsafeQuery("field names must be strings")
    if name.startswith("$"):
        raise UnsafeQuery(f"refused: operator keys such as {name[:32]!r} are not allowed")
    if "." in name:
        raise UnsafeQuery(f"refused: dotted field names such as {name[:32]!r} are not allowed")
    if name not in spec.selective and name not in spec.filterable:
        raise UnsafeQuery(f"refused: {spec.collection} cannot be searched by {name[:32]!r}")


def _scalar(name: str, value: object, max_string_chars: int) -> Scalar:
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value is None or not isinstance(value, _SCALARS):
        raise UnsafeQuery(f"refused: {name} must be a plain value, not {type(value).__name__}")
    if isinstance(value, str) and len(value) > max_string_chars:
        raise UnsafeQuery(f"refused: {name} is longer than {max_string_chars} characters")
    if isinstance(value, float) and value != value:  # NaN matches nothing useful and hides mistakes
        raise UnsafeQuery(f"refused: {name} is not a number")
    return value


def _range(name: str, value: Between, max_string_chars: int) -> dict[str, Scalar]:
    bounds = {
        op: _scalar(name, end, max_string_chars)
        for op, end in (("$gte", value.low), ("$lte" if value.high_inclusive else "$lt", value.high))
        if end is not None
    }
    if not bounds:
        raise UnsafeQuery(f"refused: a range on {name} needs at least one end")
    if len({type(end) for end in bounds.values()}) > 1:
        raise UnsafeQuery(f"refused: the ends of the range on {name} have different types")
    return bounds


def _prefix(name: str, value: Prefix, max_string_chars: int) -> dict[str, str]:
    text = value.text
    if not isinstance(text, str) or not text or "\x00" in text:
        raise UnsafeQuery(f"refused: a prefix of {name} must be a non-empty string")
    if len(text) > max_string_chars:
        raise UnsafeQuery(f"refused: {name} is longer than {max_string_chars} characters")
    return {"$regex": "^" + re.escape(text)}


class SafeQuery:
    """Bounded reads and narrow writes on a `Database`."""

    def __init__(self, database: Database, observer: QueryObserver | None = None) -> None:
        self.database = database
        self.settings: DbSettings = database.settings
        self.observer = observer

    def _observe(self, record: QueryRecord) -> None:
        if self.observer is not None:
            self.observer(record)

    async def find(
        self, spec: ReadSpec, where: Mapping[str, object], *, limit: int | None = None, count_more: bool = True
    ) -> ReadResult:
        """Up to `limit` (default `default_limit`, at most `max_limit`) documents within the byte budget.
        When that cuts the result, a capped count says how many were left out (unless `count_more`
        is False: then `more` is 1 and a lower bound)."""
        s = self.settings
        record = self.plan_find(spec, where, limit=limit)
        query, projection, batch_size = record.filter, record.projection or {}, record.batch_size or 1
        limit = (record.limit or 2) - 1
        self._observe(record)
        cursor = self.database.find(
            spec.collection,
            query,
            projection,
            limit=limit + 1,  # one extra says whether anything was left out
            max_time_ms=s.max_time_ms,
            batch_size=batch_size,
            sort=spec.sort,
        )
        documents: list[dict[str, Any]] = []
        used = 0
        stopped_by: Literal["limit", "bytes"] | None = None
        try:
            async for document in cursor:
                if len(documents) == limit:
                    stopped_by = "limit"
                    break
                size = len(bson.encode(document))
                if used + size > s.max_result_bytes:
                    stopped_by = "bytes"
                    break
                documents.append(document)
                used += size
        finally:
            await cursor.close()
        if stopped_by is None:
            return ReadResult(documents, bytes=used)
        if not count_more:
            return ReadResult(documents, 1, True, used, stopped_by)
        total = await self.count(spec.collection, query)
        more = max(total - len(documents), 1)
        return ReadResult(documents, more, total >= s.count_cap, used, stopped_by)

    def plan_find(self, spec: ReadSpec, where: Mapping[str, object], *, limit: int | None = None) -> QueryRecord:
        """The read `find` would issue, built and checked but not sent (dry runs show it)."""
        s = self.settings
        limit = s.default_limit if limit is None else limit
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise UnsafeQuery("refused: limit must be a positive whole number")
        limit = min(limit, s.max_limit)
        query = build_filter(spec, where, max_string_chars=s.max_filter_string_chars)
        batch_size = min(s.batch_size, limit + 1)  # one extra says whether anything was left out
        return QueryRecord(
            "find", spec.collection, query, _projection(spec), limit + 1, s.max_time_ms, batch_size, spec.sort
        )

    async def find_one(self, spec: ReadSpec, where: Mapping[str, object]) -> dict[str, Any] | None:
        result = await self.find(spec, where, limit=1, count_more=False)
        return result.documents[0] if result.documents else None

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        """Matching documents, counted by the server and capped at `count_cap`. Only for filters
        `build_filter` made."""
        s = self.settings
        self._observe(QueryRecord("count", collection, query, None, s.count_cap, s.max_time_ms, None))
        return await self.database.count(collection, query, limit=s.count_cap, max_time_ms=s.max_time_ms)

    async def insert(self, collection: str, document: Mapping[str, Any]) -> None:
        """Insert a document the caller built from validated values."""
        _check_document(document)
        self._observe(QueryRecord("insert", collection, {}, None, None, None, None))
        await self.database.collection(collection).insert_one(dict(document))

    async def update_one(
        self, spec: ReadSpec, where: Mapping[str, object], changes: Mapping[str, object], unset: Sequence[str] = ()
    ) -> bool:
        """Set `changes` (and remove `unset`) on the one document `where` selects; True if one matched."""
        s = self.settings
        query = build_filter(spec, where, max_string_chars=s.max_filter_string_chars)
        _check_document(changes)
        update: dict[str, Any] = {"$set": dict(changes)}
        if unset:
            _check_document(dict.fromkeys(unset, ""))
            update["$unset"] = dict.fromkeys(unset, "")
        self._observe(QueryRecord("update", spec.collection, query, None, 1, None, None))
        result = await self.database.collection(spec.collection).update_one(query, update)
        return bool(result.matched_count)

    async def set_one(
        self, spec: ReadSpec, where: Mapping[str, object], changes: Mapping[str, object]
    ) -> dict[str, Any] | None:
        """Set `changes` (plain values) on the one document `where` selects, within `max_time_ms`, and
        return it as changed, projected to `spec.fields`; None if nothing matched."""
        record, values = self.plan_set_one(spec, where, changes)
        self._observe(record)
        return await self.database.collection(spec.collection).find_one_and_update(
            record.filter,
            {"$set": values},
            projection=record.projection,
            sort=list(spec.sort) or None,
            return_document=ReturnDocument.AFTER,
            maxTimeMS=record.max_time_ms,
        )

    def plan_set_one(
        self, spec: ReadSpec, where: Mapping[str, object], changes: Mapping[str, object]
    ) -> tuple[QueryRecord, dict[str, Scalar]]:
        """The update `set_one` would issue (the record and the `$set` values), checked but not sent."""
        s = self.settings
        query = build_filter(spec, where, max_string_chars=s.max_filter_string_chars)
        _check_document(changes)
        values = {name: _scalar(name, value, s.max_filter_string_chars) for name, value in changes.items()}
        if not values:
            raise UnsafeQuery("refused: an update must set at least one field")
        return QueryRecord(
            "update", spec.collection, query, _projection(spec), 1, s.max_time_ms, None, spec.sort
        ), values


def _projection(spec: ReadSpec) -> dict[str, int]:
    """Only the declared fields; `_id` only when declared."""
    projection = {name: 1 for name in spec.fields}
    if "_id" not in spec.fields:
        projection["_id"] = 0
    return projection


def _check_document(document: Mapping[str, Any]) -> None:
    for key in document:
        if not isinstance(key, str) or not _FIELD_NAME.match(key):
            raise UnsafeQuery(f"refused: field name {str(key)[:32]!r} is not allowed in a write")
