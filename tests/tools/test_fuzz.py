"""Property-based fuzzing of every built-in tool's arguments.

Whatever text the model sends to whichever tool, `ToolTurn.run` returns (never raises), its
content is a JSON object within the result cap, no handler crashes, and every operation that
reached the database had a selective filter, a limit, a projection and a time limit.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from db import BusinessData, QueryLog, SafeQuery
from db.seed import seed_demo
from tests.support.db import open_test_database
from tests.support.tool_guards import assert_bounded
from tools import BUILTIN, CallerIdentity, ToolCall, ToolContext, ToolExecutor, builtin_tools
from tools.builtin import (
    BookAppointmentArgs,
    CancelAppointmentArgs,
    FindCustomerArgs,
    GetOrderStatusArgs,
    ListRecentOrdersArgs,
)

pytestmark = pytest.mark.mongodb

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTEXT = ToolContext("CA-fuzz", "support", "+15550101", CallerIdentity(customer_key="C-1001"))
"""Ada Lovelace, verified by the server: whatever the arguments, nobody else's records are touched."""
MODELS: dict[str, type[BaseModel]] = {
    "find_customer": FindCustomerArgs,
    "get_order_status": GetOrderStatusArgs,
    "list_recent_orders": ListRecentOrdersArgs,
    "book_appointment": BookAppointmentArgs,
    "cancel_appointment": CancelAppointmentArgs,
}

PLAUSIBLE: st.SearchStrategy[object] = st.sampled_from(
    [
        "C-1001", "C-1002", "O-50001", "A-DEMO0001", "ACCT-1001", "+15550101", "ada@example.com", "shipped",
        "delivered", "2025-01-01", "2024-12-31", "2030-01-01T10:00:00Z", "2026-06-01T10:30:00+02:00", "", " ",
        ".*", "$ne", "C-1001\x00", "9999-12-31", "0001-01-01T00:00:00+14:00", "ä", 0, 1, 20, 21, -1, 2**63, 1.5,
        True, None, [], {},
    ]
)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30) | PLAUSIBLE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=16,
)
OPERATORS = st.sampled_from(
    [{"$ne": None}, {"$regex": ".*"}, {"$gt": ""}, {"$where": "sleep(100)"}, {"$in": ["C-1001"]}]
)


IDS = st.sampled_from(["C-1001", "C-1002", "C-1003", "O-50001", "O-50006", "A-DEMO0001", "ACCT-1001"]) | st.from_regex(
    r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,39}\Z"
)
MOMENTS = st.datetimes(timezones=st.none() | st.just(UTC)).map(lambda moment: moment.isoformat())
VALID: dict[str, st.SearchStrategy[dict[str, object]]] = {
    "find_customer": st.fixed_dictionaries({}),
    "get_order_status": st.fixed_dictionaries({"order_id": IDS}),
    "list_recent_orders": st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(["pending", "shipped", "delivered", "lost"]) | st.none(),
            "since": st.dates().map(str) | st.none(),
            "until": st.dates().map(str) | st.none(),
            "limit": st.integers(-2, 60) | st.none(),
        },
    ),
    "book_appointment": st.fixed_dictionaries(
        {
            "starts_at": MOMENTS | st.sampled_from(["2030-01-01T10:00:00Z", "2026-12-20T10:30:00+00:00"]),
            "reason": st.text(max_size=220),
        }
    ),
    "cancel_appointment": st.fixed_dictionaries({"appointment_id": IDS}),
}


def _mutate(drawn: tuple[dict[str, object], int, int, str, object]) -> dict[str, object]:
    arguments, how, index, key, value = drawn
    arguments = dict(arguments)
    names = list(arguments)
    if how == 1 and names:
        arguments[names[index % len(names)]] = value  # a hostile or random value in a declared field
    elif how == 2:
        arguments[key] = value  # a field nobody declared
    elif how == 3 and names:
        del arguments[names[index % len(names)]]
    return arguments


def arguments_for(name: str) -> st.SearchStrategy[str]:
    """Raw argument text: mostly valid or nearly valid objects (one field replaced, added or
    dropped), then objects of hostile keys and values, then any JSON, then any text."""
    declared = list(MODELS[name].model_fields)
    hostile_keys = st.sampled_from([*declared, "$where", "$or", "name", "customer.id", "_id", "customer_id", "phone"])
    values = PLAUSIBLE | OPERATORS | JSON
    nearly_valid = st.tuples(VALID[name], st.integers(0, 3), st.integers(0, 9), hostile_keys, values).map(_mutate)
    hostile = st.dictionaries(hostile_keys, values, max_size=len(declared) + 2)
    return st.one_of(nearly_valid.map(json.dumps), hostile.map(json.dumps), JSON.map(json.dumps), st.text(max_size=200))


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for a test's examples (the database client belongs to it)."""
    with asyncio.Runner() as runner:
        yield runner


def test_every_builtin_tool_is_fuzzed() -> None:
    assert set(MODELS) == set(BUILTIN)


@pytest.mark.parametrize("name", list(BUILTIN))
def test_any_arguments_to_any_builtin_tool(runner: asyncio.Runner, name: str) -> None:
    database_context = open_test_database()
    database = runner.run(database_context.__aenter__())
    try:
        runner.run(seed_demo(database))
        log = QueryLog()
        seen: Counter[str] = Counter()
        executor = ToolExecutor(builtin_tools(BusinessData(SafeQuery(database, log)), list(BUILTIN)))

        @FUZZ
        @given(arguments=arguments_for(name))
        def one_call(arguments: str) -> None:
            log.clear()
            outcome = runner.run(executor.turn(CONTEXT).run(ToolCall("fuzz", name, arguments)))
            seen[outcome.error or "ok"] += 1
            body = json.loads(outcome.content)
            assert isinstance(body, dict) and outcome.result_bytes <= executor.max_result_bytes
            assert outcome.error != "internal", outcome.content
            assert outcome.ok or set(body) == {"error"}
            assert_bounded(list(log), database.settings)
            # every read and write is scoped to the verified caller, whatever the model asked for
            assert all(q.filter.get("customer_id") == "C-1001" for q in log if q.operation != "insert"), list(log)

        one_call()
        reached_handler = sum(count for error, count in seen.items() if error not in ("invalid_arguments", "too_large"))
        assert reached_handler > 0, seen  # the fuzzer got past validation, not only bounced off it
    finally:
        runner.run(database_context.__aexit__(None, None, None))
