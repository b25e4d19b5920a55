"""What every operation a declared Mongo tool issues must look like, checked on the query log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from db import DbSettings, QueryRecord
from db.safe_query import MIN_PREFIX_CHARS
from tools.declared import DeclarationBase, MongoFindDeclaration, MongoUpdateOneDeclaration

SCALARS = (str, int, float, bool, datetime)
RANGE_OPERATORS = {"$gte", "$lt", "$lte"}


def assert_declared_bounded(
    records: Iterable[QueryRecord], declaration: DeclarationBase, settings: DbSettings, customer_key: str | None
) -> None:
    """Each read has a limit within the declaration's cap, the declared projection and the time
    limit; each filter carries the caller's key (scope caller) and a selective field with a plain
    value or a long enough prefix; the only operators are the ones the safe-query layer writes."""
    assert isinstance(declaration, (MongoFindDeclaration, MongoUpdateOneDeclaration)), declaration
    projection = {name: 1 for name in declaration.returns} | ({} if "_id" in declaration.returns else {"_id": 0})
    for record in records:
        assert record.collection == declaration.collection, record
        assert record.max_time_ms == settings.max_time_ms, record
        if record.operation == "count":
            assert record.limit == settings.count_cap, record
        elif record.operation == "find":
            assert isinstance(declaration, MongoFindDeclaration), record
            cap = min(declaration.max_results, settings.max_limit) + 1
            assert record.limit is not None and 2 <= record.limit <= cap, record
            assert record.projection == projection, record
            assert record.batch_size is not None and 1 <= record.batch_size <= settings.batch_size, record
        else:
            assert record.operation == "update" and isinstance(declaration, MongoUpdateOneDeclaration), record
            assert record.limit == 1 and record.projection == projection, record
        assert_selective(record, declaration, customer_key)


def assert_selective(
    record: QueryRecord, declaration: MongoFindDeclaration | MongoUpdateOneDeclaration, customer_key: str | None
) -> None:
    query = record.filter
    assert query, record
    for key, value in query.items():
        assert isinstance(key, str) and not key.startswith("$") and "." not in key, record
        if isinstance(value, dict):
            assert value and set(value) <= RANGE_OPERATORS | {"$regex"}, record
            assert all(isinstance(end, SCALARS) for end in value.values()), record
        else:
            assert isinstance(value, SCALARS), record
    if declaration.scope == "caller":
        assert declaration.identity_field is not None and customer_key is not None, declaration
        assert query.get(declaration.identity_field) == customer_key, record
    selective = {argument.target for argument in declaration.arguments if argument.name in declaration.selective}
    given = [name for name in selective if _narrows(query.get(name))]
    if declaration.selective:
        assert given, record
    else:
        assert declaration.scope == "caller", record


def _narrows(value: object) -> bool:
    if isinstance(value, dict):
        pattern = value.get("$regex")
        return set(value) == {"$regex"} and isinstance(pattern, str) and len(pattern) > MIN_PREFIX_CHARS
    return isinstance(value, SCALARS) and not isinstance(value, bool) and value != ""
