"""The built-in tools, driven the way the conversation engine drives them: through the executor.

Every one is caller-scoped: the customer is the call's verified caller (`context` is Ada Lovelace,
C-1001), never an argument, and an unverified call is refused with what to ask for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db import BusinessData, QueryLog
from db.business import APPOINTMENT, CUSTOMER, CUSTOMER_ORDERS, ORDER
from tools import BUILTIN, CallerIdentity, ToolCall, ToolContext, ToolExecutor, builtin_tools

pytestmark = pytest.mark.mongodb

OTHER_CUSTOMERS = ("C-1002", "C-1003", "Grace", "Hopper", "Alan", "Turing", "grace@", "ACCT-1002", "+15550102")


async def call(executor: ToolExecutor, context: ToolContext, name: str, arguments: dict[str, Any] | str) -> Any:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    outcome = await executor.turn(context).run(ToolCall("call_1", name, raw))
    return json.loads(outcome.content)


def as_caller(context: ToolContext, key: str | None) -> ToolContext:
    message = "ask the caller to key their PIN"
    return ToolContext(context.call_sid, context.agent_id, context.caller_number, CallerIdentity(key, None, message))


async def test_find_customer_is_the_verified_callers_own_record(executor: ToolExecutor, context: ToolContext) -> None:
    body = await call(executor, context, "find_customer", {})
    assert body["found"] is True and body["customer"]["customer_id"] == "C-1001"
    assert set(body["customer"]) == {"customer_id", "name", "phone", "email", "account_id", "tier"}  # no pin_hash


@pytest.mark.parametrize(
    "arguments",
    [{"phone": "+15550102"}, {"email": "grace@example.com"}, {"account_id": "ACCT-1002"}, {"customer_id": "C-1002"}],
)
async def test_find_customer_takes_no_identifier_from_the_model(
    executor: ToolExecutor, context: ToolContext, arguments: dict[str, Any]
) -> None:
    body = await call(executor, context, "find_customer", arguments)
    assert "is not a field" in body["error"] and "Grace" not in json.dumps(body)


@pytest.mark.parametrize("name", sorted(BUILTIN))
async def test_every_builtin_refuses_an_unverified_caller_with_what_to_ask(
    executor: ToolExecutor, context: ToolContext, query_log: QueryLog, name: str
) -> None:
    arguments = {
        "get_order_status": {"order_id": "O-50001"},
        "book_appointment": {"starts_at": "2099-01-01T10:00:00Z", "reason": "x"},
        "cancel_appointment": {"appointment_id": "A-DEMO0001"},
    }.get(name, {})
    query_log.clear()
    body = await call(executor, as_caller(context, None), name, arguments)
    assert body == {"error": "ask the caller to key their PIN"}
    assert list(query_log) == []  # refused before any read


async def test_get_order_status_only_finds_the_callers_own_orders(executor: ToolExecutor, context: ToolContext) -> None:
    body = await call(executor, context, "get_order_status", {"order_id": "O-50001"})
    assert body["order"]["status"] == "shipped" and body["order"]["tracking_number"].startswith("1Z")
    for order_id in ("O-50004", "O-50006", "O-1"):  # Grace's, Alan's, nobody's: all read the same
        missing = await call(executor, context, "get_order_status", {"order_id": order_id})
        assert missing == {
            "found": False,
            "message": f"no order {order_id} on this caller's account; ask the caller to repeat the number",
        }
    assert (await call(executor, as_caller(context, "C-1002"), "get_order_status", {"order_id": "O-50004"}))["found"]


async def test_list_recent_orders_with_filters(executor: ToolExecutor, context: ToolContext) -> None:
    body = await call(executor, context, "list_recent_orders", {})
    assert [order["order_id"] for order in body["orders"]] == ["O-50003", "O-50001", "O-50002"]
    assert "truncated" not in body
    body = await call(executor, context, "list_recent_orders", {"status": "delivered"})
    assert [order["order_id"] for order in body["orders"]] == ["O-50002"]
    body = await call(executor, context, "list_recent_orders", {"limit": 1})
    assert len(body["orders"]) == 1 and body["truncated"] == "truncated: 2 more"
    today = datetime.now(UTC).date()
    body = await call(
        executor, context, "list_recent_orders", {"since": str(today - timedelta(days=3)), "until": str(today)}
    )
    assert [order["order_id"] for order in body["orders"]] == ["O-50003", "O-50001"]
    grace = await call(executor, as_caller(context, "C-1002"), "list_recent_orders", {})
    assert [order["order_id"] for order in grace["orders"]] == ["O-50004", "O-50005"]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"customer_id": "C-1002"}, "customer_id is not a field"),
        ({"status": "lost"}, "status: Input should be 'pending'"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "since must not be after until"),
        ({"since": "last week"}, "since: Input should be a valid date"),
        ({"limit": 500}, "limit: Input should be less than or equal to 20"),
        ({"limit": 2.0}, "limit: Input should be a valid integer"),
        ({"until": "9999-12-31"}, "until: the year must be between 1970 and 2100"),
    ],
)
async def test_list_recent_orders_refusals(
    executor: ToolExecutor, context: ToolContext, arguments: dict[str, Any], error: str
) -> None:
    assert error in (await call(executor, context, "list_recent_orders", arguments))["error"]


async def test_book_and_cancel_for_the_verified_caller_only(
    executor: ToolExecutor, context: ToolContext, business: BusinessData
) -> None:
    alan, grace = as_caller(context, "C-1003"), as_caller(context, "C-1002")
    slot = (datetime.now(UTC) + timedelta(days=3)).replace(hour=10, minute=30, second=0, microsecond=0)
    booking = {"starts_at": slot.isoformat(), "reason": "  Repair  "}
    booked = await call(executor, alan, "book_appointment", booking)
    appointment = booked["appointment"]
    assert booked["booked"] and appointment["reason"] == "Repair" and appointment["starts_at"] == slot.isoformat()
    assert appointment["customer_id"] == "C-1003"
    assert (
        "customer_id is not a field"
        in (await call(executor, alan, "book_appointment", {**booking, "customer_id": "C-1002"}))["error"]
    )
    assert "already booked" in (await call(executor, grace, "book_appointment", booking))["error"]
    cancel = {"appointment_id": appointment["appointment_id"]}
    refused = await call(executor, grace, "cancel_appointment", cancel)  # another customer's appointment
    assert refused == {"error": f"customer C-1002 has no appointment {appointment['appointment_id']}"}
    assert (await business.appointment(appointment["appointment_id"]) or {}).get("status") == "booked"
    assert (await call(executor, alan, "cancel_appointment", cancel))["appointment"]["status"] == "cancelled"
    assert "already cancelled" in (await call(executor, alan, "cancel_appointment", cancel))["error"]


@pytest.mark.parametrize(
    ("starts_at", "error"),
    [
        ("2020-01-01T10:00:00Z", "already passed"),
        ("2099-01-01T10:00:00Z", "at most 180 days ahead"),
        ("tomorrow at ten", "starts_at: Input should be a valid datetime"),
        ("0001-01-01T00:00:00+14:00", "the year must be between"),
    ],
)
async def test_booking_refusals(executor: ToolExecutor, context: ToolContext, starts_at: str, error: str) -> None:
    body = await call(executor, context, "book_appointment", {"starts_at": starts_at, "reason": "x"})
    assert error in body["error"]


async def test_results_never_carry_another_customers_data(executor: ToolExecutor, context: ToolContext) -> None:
    """Ada's whole view of the data, through every read tool: none of it is anyone else's."""
    seen = [
        await call(executor, context, "find_customer", {}),
        await call(executor, context, "list_recent_orders", {"limit": 20}),
        *[await call(executor, context, "get_order_status", {"order_id": f"O-{n}"}) for n in range(50001, 50007)],
    ]
    text = json.dumps(seen)
    assert "C-1001" in text and not [other for other in OTHER_CUSTOMERS if other in text]


async def test_results_carry_only_the_declared_return_fields(executor: ToolExecutor, context: ToolContext) -> None:
    """Whatever the stored documents hold (items, addresses, PIN hashes), a result has only its
    `ReadSpec`'s fields."""
    slot = (datetime.now(UTC) + timedelta(days=4)).replace(hour=9, minute=0, second=0, microsecond=0)
    booked = await call(executor, context, "book_appointment", {"starts_at": slot.isoformat(), "reason": "Fit"})
    cancelled = await call(executor, context, "cancel_appointment", {"appointment_id": "A-DEMO0001"})
    order = await call(executor, context, "get_order_status", {"order_id": "O-50001"})
    orders = await call(executor, context, "list_recent_orders", {})
    customer = await call(executor, context, "find_customer", {})
    assert set(booked["appointment"]) <= set(APPOINTMENT.fields)
    assert set(cancelled["appointment"]) <= set(APPOINTMENT.fields)
    assert set(order["order"]) <= set(ORDER.fields)
    assert all(set(item) <= set(CUSTOMER_ORDERS.fields) for item in orders["orders"])
    assert set(customer["customer"]) <= set(CUSTOMER.fields)


def test_builtin_tools_by_name(business: BusinessData) -> None:
    assert [tool.name for tool in builtin_tools(business, ["get_order_status", "find_customer"])] == [
        "get_order_status",
        "find_customer",
    ]
    with pytest.raises(ValueError, match="unknown tool\\(s\\) 'transfer_call'; built-in tools are: find_customer"):
        builtin_tools(business, ["find_customer", "transfer_call"])
    with pytest.raises(ValueError, match="named twice"):
        builtin_tools(business, ["find_customer", "find_customer"])
    with pytest.raises(TypeError):
        builtin_tools(business, "find_customer")
    assert set(BUILTIN) == {
        "find_customer",
        "get_order_status",
        "list_recent_orders",
        "book_appointment",
        "cancel_appointment",
    }
