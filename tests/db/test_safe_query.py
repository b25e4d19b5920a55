"""The safe-query layer: what it refuses to build, and the bounds on what it reads."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

import pytest

from db import Between, Database, QueryLog, QueryRecord, ReadSpec, SafeQuery, UnsafeQuery
from db.safe_query import Prefix, build_filter

pytestmark = pytest.mark.mongodb

ITEMS = ReadSpec(
    "items",
    fields=("item_id", "owner", "n", "body"),
    selective=frozenset({"item_id", "owner"}),
    filterable=frozenset({"kind", "at"}),
    sort=(("n", 1),),
)


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ({}, "needs item_id or owner"),
        ({"kind": "a"}, "needs item_id or owner"),
        ({"owner": ""}, "needs item_id or owner"),
        ({"$where": "sleep(1000)"}, "operator keys"),
        ({"$or": [{"owner": "a"}]}, "operator keys"),
        ({"owner.name": "a"}, "dotted"),
        ({"name": "a"}, "cannot be searched by 'name'"),
        ({"owner": {"$ne": None}}, "plain value"),
        ({"owner": {"$regex": ".*"}}, "plain value"),
        ({"owner": None}, "plain value"),
        ({"owner": ["a", "b"]}, "plain value"),
        ({"owner": "x" * 257}, "longer than 256"),
        ({"owner": "a", "at": Between()}, "at least one end"),
        ({"owner": "a", "at": Between(1, "z")}, "different types"),
        ({"owner": "a", "at": Between({"$gt": 1})}, "plain value"),  # type: ignore[arg-type]
        ({"owner": float("nan")}, "not a number"),
        ({1: "a"}, "must be strings"),
    ],
)
def test_refused_filters(where: dict[object, object], reason: str) -> None:
    with pytest.raises(UnsafeQuery, match=reason.replace("(", r"\(")):
        build_filter(ITEMS, where)  # type: ignore[arg-type]


def test_a_filter_is_built_only_from_declared_fields_and_our_operators() -> None:
    built = build_filter(ITEMS, {"owner": "a", "kind": "k", "at": Between(date(2024, 1, 1), datetime(2024, 2, 1))})
    assert built == {
        "owner": "a",
        "kind": "k",
        "at": {"$gte": datetime(2024, 1, 1, tzinfo=UTC), "$lt": datetime(2024, 2, 1)},
    }


def test_a_spec_must_name_fields_plainly() -> None:
    with pytest.raises(ValueError):
        ReadSpec("x", fields=("a.b",), selective=frozenset({"a"}))
    with pytest.raises(ValueError):
        ReadSpec("x", fields=("a",), selective=frozenset())


async def _items(database: Database, n: int, owner: str = "alice", body: str = "") -> None:
    await database.collection("items").insert_many(
        [{"item_id": f"I{i}", "owner": owner, "n": i, "kind": "k", "body": body, "secret": "s"} for i in range(n)]
    )


async def test_every_read_has_limit_projection_time_limit_and_batch_size(
    safe_query: SafeQuery, database: Database, query_log: QueryLog
) -> None:
    await _items(database, 3)
    result = await safe_query.find(ITEMS, {"owner": "alice"})
    assert [doc["item_id"] for doc in result.documents] == ["I0", "I1", "I2"]
    assert all(set(doc) == {"item_id", "owner", "n", "body"} for doc in result.documents)  # no secret, no _id
    assert not result.truncated and result.truncation_note() is None
    [record] = query_log.records
    assert record.operation == "find"
    assert record.filter == {"owner": "alice"}
    assert record.projection == {"item_id": 1, "owner": 1, "n": 1, "body": 1, "_id": 0}
    assert record.limit == database.settings.default_limit + 1
    assert record.max_time_ms == database.settings.max_time_ms
    assert record.batch_size == database.settings.default_limit + 1
    assert record.sort == (("n", 1),)


async def test_refused_query_never_reaches_the_database(safe_query: SafeQuery, query_log: QueryLog) -> None:
    with pytest.raises(UnsafeQuery):
        await safe_query.find(ITEMS, {})
    assert len(query_log) == 0


async def test_limit_cuts_and_reports_how_many_more(safe_query: SafeQuery, database: Database) -> None:
    await _items(database, 30)
    result = await safe_query.find(ITEMS, {"owner": "alice"}, limit=4)
    assert [doc["n"] for doc in result.documents] == [0, 1, 2, 3]
    assert (result.stopped_by, result.more, result.more_is_lower_bound) == ("limit", 26, False)
    assert result.truncation_note() == "truncated: 26 more"


async def test_limit_is_clamped_to_the_hard_maximum(make_database: Callable[..., Awaitable[Database]]) -> None:
    database = await make_database(default_limit=2, max_limit=5)
    log = QueryLog()
    await _items(database, 20)
    result = await SafeQuery(database, log).find(ITEMS, {"owner": "alice"}, limit=1_000_000)
    assert len(result.documents) == 5
    assert log.records[0].limit == 6


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
async def test_nonsense_limits_are_refused(safe_query: SafeQuery, limit: object) -> None:
    with pytest.raises(UnsafeQuery, match="limit"):
        await safe_query.find(ITEMS, {"owner": "alice"}, limit=limit)  # type: ignore[arg-type]


async def test_reading_stops_at_the_byte_budget(make_database: Callable[..., Awaitable[Database]]) -> None:
    database = await make_database(max_result_bytes=2048)
    await _items(database, 20, body="x" * 300)
    result = await SafeQuery(database).find(ITEMS, {"owner": "alice"}, limit=20)
    assert result.stopped_by == "bytes"
    assert 0 < len(result.documents) < 20
    assert result.bytes <= 2048
    assert result.more == 20 - len(result.documents)
    assert result.truncation_note() == f"truncated: {result.more} more"


async def test_a_document_larger_than_the_budget_is_not_returned(
    make_database: Callable[..., Awaitable[Database]],
) -> None:
    database = await make_database(max_result_bytes=1024)
    await _items(database, 1, body="x" * 5000)
    result = await SafeQuery(database).find(ITEMS, {"owner": "alice"})
    assert result.documents == [] and result.stopped_by == "bytes" and result.more == 1


async def test_the_count_of_what_was_left_out_is_capped(make_database: Callable[..., Awaitable[Database]]) -> None:
    database = await make_database(count_cap=8)
    log = QueryLog()
    await _items(database, 30)
    result = await SafeQuery(database, log).find(ITEMS, {"owner": "alice"}, limit=3)
    assert result.truncation_note() == "truncated: at least 5 more"
    count = log.records[-1]
    assert (count.operation, count.filter, count.limit) == ("count", {"owner": "alice"}, 8)
    assert count.max_time_ms == database.settings.max_time_ms


async def test_find_one_does_not_count(safe_query: SafeQuery, database: Database, query_log: QueryLog) -> None:
    await _items(database, 3)
    assert (await safe_query.find_one(ITEMS, {"owner": "alice"}) or {})["item_id"] == "I0"
    assert [record.operation for record in query_log] == ["find"]
    assert query_log.records[0].limit == 2


async def test_updates_need_a_selective_filter(safe_query: SafeQuery, database: Database) -> None:
    await _items(database, 3)
    with pytest.raises(UnsafeQuery):
        await safe_query.update_one(ITEMS, {"kind": "k"}, {"kind": "z"})
    with pytest.raises(UnsafeQuery):
        await safe_query.update_one(ITEMS, {"item_id": "I1"}, {"$set": 1})
    assert await safe_query.update_one(ITEMS, {"item_id": "I1"}, {"kind": "z"}, unset=("body",))
    assert not await safe_query.update_one(ITEMS, {"item_id": "nope"}, {"kind": "z"})
    changed = await database.collection("items").find_one({"item_id": "I1"})
    assert changed["kind"] == "z" and "body" not in changed


async def test_inserts_refuse_operator_keys(safe_query: SafeQuery) -> None:
    with pytest.raises(UnsafeQuery):
        await safe_query.insert("items", {"$where": "1"})


def test_query_log_is_bounded() -> None:
    log = QueryLog(max_records=2)
    for n in range(5):
        log(QueryRecord("find", "items", {"owner": str(n)}, {"owner": 1}, 2, 10, 2))
    assert [record.filter["owner"] for record in log] == ["3", "4"]


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ({"owner": Prefix("al")}, "needs item_id or owner"),  # too short to be selective
        ({"kind": Prefix("kind")}, "needs item_id or owner"),  # not a selective field
        ({"owner": Prefix("")}, "non-empty string"),
        ({"owner": Prefix("ali\x00")}, "non-empty string"),
        ({"owner": Prefix(7)}, "non-empty string"),  # type: ignore[arg-type]
        ({"owner": Prefix("x" * 257)}, "longer than 256"),
    ],
)
def test_refused_prefixes(where: dict[str, object], reason: str) -> None:
    with pytest.raises(UnsafeQuery, match=reason):
        build_filter(ITEMS, where)


def test_a_prefix_is_an_anchored_escaped_pattern_and_a_range_end_may_be_inclusive() -> None:
    where = {"owner": Prefix("a.b*"), "at": Between(1, 5, high_inclusive=True)}
    assert build_filter(ITEMS, where) == {"owner": {"$regex": r"^a\.b\*"}, "at": {"$gte": 1, "$lte": 5}}


async def test_a_prefix_finds_only_values_that_start_with_it(safe_query: SafeQuery, database: Database) -> None:
    await _items(database, 2, owner="alice")
    await _items(database, 1, owner="malice")
    await _items(database, 1, owner="al.ice")
    result = await safe_query.find(ITEMS, {"owner": Prefix("ali")})
    assert {doc["owner"] for doc in result.documents} == {"alice"}
    result = await safe_query.find(ITEMS, {"owner": Prefix("al.")})
    assert {doc["owner"] for doc in result.documents} == {"al.ice"}


async def test_the_planned_read_is_the_one_issued(safe_query: SafeQuery, query_log: QueryLog) -> None:
    planned = safe_query.plan_find(ITEMS, {"owner": "alice"}, limit=3)
    await safe_query.find(ITEMS, {"owner": "alice"}, limit=3)
    assert query_log.records == deque([planned])


async def test_set_one_changes_one_selected_document_and_returns_its_declared_fields(
    safe_query: SafeQuery, database: Database, query_log: QueryLog
) -> None:
    await _items(database, 3)
    changed = await safe_query.set_one(ITEMS, {"item_id": "I1", "owner": "alice"}, {"body": "new", "n": 10})
    assert changed == {"item_id": "I1", "owner": "alice", "n": 10, "body": "new"}  # no secret, no _id
    assert await safe_query.set_one(ITEMS, {"item_id": "I1", "owner": "bob"}, {"body": "x"}) is None
    [record, _] = query_log.records
    assert (record.operation, record.limit, record.max_time_ms) == ("update", 1, database.settings.max_time_ms)
    assert record.projection == {"item_id": 1, "owner": 1, "n": 1, "body": 1, "_id": 0}
    others = await database.collection("items").count_documents({"body": "new"})
    assert others == 1


@pytest.mark.parametrize(
    ("where", "changes", "reason"),
    [
        ({"kind": "k"}, {"body": "x"}, "needs item_id or owner"),
        ({"item_id": "I1"}, {"$set": "x"}, "not allowed in a write"),
        ({"item_id": "I1"}, {"a.b": "x"}, "not allowed in a write"),
        ({"item_id": "I1"}, {"body": {"$inc": 1}}, "plain value"),
        ({"item_id": "I1"}, {"body": float("nan")}, "not a number"),
        ({"item_id": "I1"}, {}, "at least one field"),
    ],
)
async def test_set_one_refuses_unsafe_updates(
    safe_query: SafeQuery, query_log: QueryLog, where: dict[str, object], changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(UnsafeQuery, match=reason):
        await safe_query.set_one(ITEMS, where, changes)
    assert len(query_log) == 0
