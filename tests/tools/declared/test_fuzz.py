"""Acceptance 3, by property: random valid declarations x random arguments. Every query a declared
Mongo tool issues is bounded (limit, projection, maxTimeMS) and selective (the caller's key, or a
selective field with a plain value or a long enough prefix); a call never crashes (only results and
refusals) and a result never carries a field outside `returns`."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db import QueryLog, SafeQuery
from tests.support.db import open_test_database
from tests.support.declared_guards import assert_declared_bounded
from tools import CallerIdentity, ToolCall, ToolContext, ToolExecutor
from tools.declared import DeclaredToolResources, build_tool, parse_declaration
from tools.declared.mongo import MongoFindDeclaration

pytestmark = pytest.mark.mongodb

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COLLECTION, IDENTITY = "items", "owner"
CUSTOMERS = ("C-1001", "C-1002")
PATTERNS = [None, "[A-Za-z0-9-]+", "[a-z]{2,10}", r"\d+", "C-[0-9]{4}", r"[^@\s]+@[a-z.]+"]
HOSTILE: list[object] = [
    None, "", " ", ".*", "^", "$ne", "a\x00b", "C-1001", "C-1002", {"$ne": None}, {"$regex": ".*"}, {"$gt": ""},
    [], ["C-1001"], {}, True, 0, -1, 2**63, 1.5, 1e308, "2024-01-01", "2024-01-01T10:00:00Z", "9999-12-31", "x" * 300,
]  # fmt: skip


@st.composite
def argument(draw: st.DrawFn, index: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["string", "integer", "number", "boolean", "date", "datetime", "enum"]))
    declared: dict[str, Any] = {
        "name": f"a{index}",
        "type": kind,
        "field": f"f{index}",
        "required": draw(st.booleans()),
    }
    if kind == "string":
        declared["max_length"] = draw(st.integers(3, 256))
        declared["pattern"] = draw(st.sampled_from(PATTERNS))
        declared["match"] = draw(st.sampled_from(["equals", "prefix"]))
    elif kind in ("integer", "number"):
        low, high = sorted(draw(st.lists(st.integers(-1000, 1000), min_size=2, max_size=2)))
        declared |= {"minimum": low, "maximum": high}
        declared["match"] = draw(st.sampled_from(["equals", "range_start", "range_end"]))
    elif kind in ("date", "datetime"):
        declared["match"] = draw(st.sampled_from(["equals", "range_start", "range_end"]))
    elif kind == "enum":
        declared["values"] = draw(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5, unique=True))
    return {key: value for key, value in declared.items() if value is not None}


def selective_ok(declared: dict[str, Any]) -> bool:
    return declared["type"] not in ("boolean", "enum") and declared.get("match", "equals") in ("equals", "prefix")


@st.composite
def declarations(draw: st.DrawFn) -> dict[str, Any]:
    arguments = [draw(argument(index)) for index in range(draw(st.integers(1, 6)))]
    if draw(st.booleans()):  # sometimes a range start and end on one field
        kind = draw(st.sampled_from(["date", "datetime", "integer", "number"]))
        bounds = {"minimum": -10, "maximum": 10} if kind in ("integer", "number") else {}
        ends = ("range_start", "range_end")
        arguments += [
            {"name": f"r{n}", "type": kind, "match": end, "field": "when", **bounds} for n, end in enumerate(ends)
        ]
    eligible = [item["name"] for item in arguments if selective_ok(item)]
    write = draw(st.booleans()) and bool(eligible)
    scope = "caller" if write else draw(st.sampled_from(["caller", "none"]))
    if scope == "none" and not eligible:
        arguments.append({"name": "key", "type": "string", "max_length": 40, "field": "key"})
        eligible = ["key"]
    minimum = 1 if write or scope == "none" else 0
    selective = draw(st.lists(st.sampled_from(eligible), min_size=minimum, unique=True)) if eligible else []
    fields = [item["field"] for item in arguments] + ["secret", "_id", "note"]
    declaration: dict[str, Any] = {
        "name": "fuzzed",
        "description": "a fuzzed declaration",
        "kind": "mongo_update_one" if write else "mongo_find",
        "scope": scope,
        "collection": COLLECTION,
        "arguments": arguments,
        "selective": selective,
        "returns": draw(st.lists(st.sampled_from(fields), min_size=1, max_size=5, unique=True)),
    }
    if scope == "caller":
        declaration["identity_field"] = IDENTITY
    if write:
        values = [item["name"] for item in arguments if item["name"] not in selective and "field" in item]
        chosen = draw(st.lists(st.sampled_from(values), unique=True)) if values else []
        taken = {item["field"] for item in arguments if item["name"] not in chosen}
        sets: dict[str, Any] = {f"s{n}": {"argument": name} for n, name in enumerate(chosen)}
        sets["note"] = {"value": draw(st.text(max_size=20) | st.integers(-5, 5) | st.booleans())}
        declaration["set"] = {field: source for field, source in sets.items() if field not in taken}
    else:
        sort = draw(st.lists(st.sampled_from(fields[:-3] or ["f0"]), max_size=2, unique=True))
        declaration["sort"] = [{"field": name, "direction": draw(st.sampled_from(["asc", "desc"]))} for name in sort]
        declaration["max_results"] = draw(st.integers(1, 50))
    return declaration


def value_for(declared: dict[str, Any]) -> st.SearchStrategy[object]:
    kind = declared["type"]
    near: st.SearchStrategy[object]
    if kind == "string":
        near = st.from_regex(declared.get("pattern") or ".{3,}", fullmatch=True) | st.text(max_size=12)
    elif kind in ("integer", "number"):
        near = st.integers(declared["minimum"] - 2, declared["maximum"] + 2)
        if kind == "number":
            near = near | st.floats(declared["minimum"], declared["maximum"])
    elif kind == "boolean":
        near = st.booleans()
    elif kind == "date":
        near = st.dates(date(1960, 1, 1), date(2110, 1, 1)).map(str)
    elif kind == "datetime":
        moments = st.datetimes(datetime(1960, 1, 1), datetime(2110, 1, 1), timezones=st.sampled_from([None, UTC]))
        near = moments.map(datetime.isoformat)
    else:
        near = st.sampled_from(declared["values"])
    return near


@st.composite
def arguments_for(draw: st.DrawFn, declaration: dict[str, Any]) -> str:
    how = draw(st.integers(0, 9))
    if how == 0:
        return draw(st.text(max_size=40))
    given: dict[str, object] = {}
    for item in declaration["arguments"]:
        if item.get("required") or draw(st.booleans()):
            given[item["name"]] = draw(st.sampled_from(HOSTILE)) if how == 2 else draw(value_for(item))
    if how == 1:
        given[draw(st.sampled_from(["$where", "owner", "_id", "f0.x", "extra"]))] = draw(st.sampled_from(HOSTILE))
    return json.dumps(given)


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


def test_random_declarations_with_random_arguments_issue_only_bounded_selective_queries(runner: asyncio.Runner) -> None:
    database_context = open_test_database()
    database = runner.run(database_context.__aenter__())
    seen: Counter[str] = Counter()
    try:
        documents = [
            {IDENTITY: CUSTOMERS[n % 2], "key": f"K{n}", "secret": "never returned unless declared", "note": "x"}
            | {f"f{i}": n for i in range(7)}
            for n in range(30)
        ]
        runner.run(database.collection(COLLECTION).insert_many(documents))

        @FUZZ
        @given(st.data(), st.booleans())
        def one_call(data: st.DataObject, verified: bool) -> None:
            document = data.draw(declarations())
            declaration = parse_declaration(document)  # every generated declaration is valid
            log = QueryLog()
            tool = build_tool(declaration, DeclaredToolResources(safe_query=SafeQuery(database, log)))
            caller = CallerIdentity(customer_key=CUSTOMERS[0] if verified else None)
            context = ToolContext("CA-fuzz", "support", "+15550101", caller)
            executor = ToolExecutor([tool])
            raw = data.draw(arguments_for(document))
            outcome = runner.run(executor.turn(context).run(ToolCall("fuzz", "fuzzed", raw)))
            seen[outcome.error or "ok"] += 1
            body = json.loads(outcome.content)
            assert outcome.error not in ("internal", "database"), outcome.content
            assert outcome.ok or set(body) == {"error"}
            assert_declared_bounded(log, declaration, database.settings, caller.customer_key)
            if outcome.ok and isinstance(declaration, MongoFindDeclaration):
                assert all(set(item) <= set(declaration.returns) for item in body.get("results", []))
            elif outcome.ok and body.get("updated"):
                assert set(body["record"]) <= set(declaration.returns)
            if declaration.scope == "caller" and not verified:
                assert len(log) == 0

        one_call()
        assert seen["ok"] > 0, seen  # the fuzzer got past validation, not only bounced off it
    finally:
        runner.run(database_context.__aexit__(None, None, None))
