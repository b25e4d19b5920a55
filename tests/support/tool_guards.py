"""What every operation the tools caused must look like, checked on the db layer's query log."""

from __future__ import annotations

from datetime import datetime

from db import DbSettings, QueryRecord
from db.business import APPOINTMENT, CUSTOMER, CUSTOMER_ORDERS, ORDER

SPECS = (CUSTOMER, ORDER, CUSTOMER_ORDERS, APPOINTMENT)
OUR_OPERATORS = {"$gte", "$lt"}
SCALARS = (str, int, float, bool, datetime)


def assert_bounded(records: list[QueryRecord], settings: DbSettings) -> None:
    """No read without limit, projection and time limit; no filter without a selective field; no
    operator in a filter except the range operators the layer itself writes."""
    for record in records:
        if record.operation == "insert":
            continue
        _assert_selective(record)
        if record.operation == "find":
            assert record.limit is not None and 2 <= record.limit <= settings.max_limit + 1, record
            assert record.projection and set(record.projection.values()) <= {0, 1}, record
            assert record.max_time_ms == settings.max_time_ms, record
            assert record.batch_size is not None and 1 <= record.batch_size <= settings.batch_size, record
        elif record.operation == "count":
            assert record.limit == settings.count_cap and record.max_time_ms == settings.max_time_ms, record
        else:
            assert record.operation == "update" and record.limit == 1, record


def _assert_selective(record: QueryRecord) -> None:
    assert record.filter, record
    for key, value in record.filter.items():
        assert not key.startswith("$") and "." not in key, record
        if isinstance(value, dict):
            assert value and set(value) <= OUR_OPERATORS, record
            assert all(isinstance(end, SCALARS) for end in value.values()), record
        else:
            assert isinstance(value, SCALARS), record
    assert any(
        spec.collection == record.collection
        and any(isinstance(record.filter.get(name), str) and record.filter[name] for name in spec.selective)
        for spec in SPECS
    ), record
