"""The built-in tools, driven the way the conversation engine drives them: through the executor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db import BusinessData
from tools import BUILTIN, ToolCall, ToolContext, ToolExecutor, builtin_tools

pytestmark = pytest.mark.mongodb


async def call(executor: ToolExecutor, context: ToolContext, name: str, arguments: dict[str, Any] | str) -> Any:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    outcome = await executor.turn(context).run(ToolCall("call_1", name, raw))
    return json.loads(outcome.content)


@pytest.mark.parametrize(
    "arguments",
    [
        {"phone": "+15550102"},
        {"email": "grace@example.com", "phone": None, "account_id": None},
        {"account_id": "ACCT-1002"},
    ],
)
async def test_find_customer_by_exactly_one_key(
    executor: ToolExecutor, context: ToolContext, arguments: dict[str, Any]
) -> None:
    body = await call(executor, context, "find_customer", arguments)
    assert body["found"] is True and body["customer"]["customer_id"] == "C-1002"


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({}, "exactly one of phone, email or account_id"),
        ({"phone": "+15550102", "email": "grace@example.com"}, "exactly one"),
        ({"phone": "555-0102"}, "phone: String should match pattern"),
        ({"email": "not an email"}, "email: String should match pattern"),
    ],
)
async def test_find_customer_refusals(
    executor: ToolExecutor, context: ToolContext, arguments: dict[str, Any], error: str
) -> None:
    assert error in (await call(executor, context, "find_customer", arguments))["error"]


async def test_find_customer_not_found(executor: ToolExecutor, context: ToolContext) -> None:
    body = await call(executor, context, "find_customer", {"phone": "+15559999"})
    assert body["found"] is False and "ask the caller" in body["message"]


async def test_get_order_status(executor: ToolExecutor, context: ToolContext) -> None:
    body = await call(executor, context, "get_order_status", {"order_id": "O-50001"})
    assert body["order"]["status"] == "shipped" and body["order"]["tracking_number"].startswith("1Z")
    missing = await call(executor, context, "get_order_status", {"order_id": "O-1"})
    assert missing["found"] is False


async def test_list_recent_orders_with_filters(executor: ToolExecutor, context: ToolContext) -> None:
    body = await call(executor, context, "list_recent_orders", {"customer_id": "C-1001"})
    assert [order["order_id"] for order in body["orders"]] == ["O-50003", "O-50001", "O-50002"]
    assert "truncated" not in body
    body = await call(executor, context, "list_recent_orders", {"customer_id": "C-1001", "status": "delivered"})
    assert [order["order_id"] for order in body["orders"]] == ["O-50002"]
    body = await call(executor, context, "list_recent_orders", {"customer_id": "C-1001", "limit": 1})
    assert len(body["orders"]) == 1 and body["truncated"] == "truncated: 2 more"
    today = datetime.now(UTC).date()
    body = await call(
        executor,
        context,
        "list_recent_orders",
        {"customer_id": "C-1001", "since": str(today - timedelta(days=3)), "until": str(today)},
    )
    assert [order["order_id"] for order in body["orders"]] == ["O-50003", "O-50001"]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"customer_id": "C-1001", "status": "lost"}, "status: Input should be 'pending'"),
        ({"customer_id": "C-1001", "since": "2025-02-01", "until": "2025-01-01"}, "since must not be after until"),
        ({"customer_id": "C-1001", "since": "last week"}, "since: Input should be a valid date"),
        ({"customer_id": "C-1001", "limit": 500}, "limit: Input should be less than or equal to 20"),
        ({"customer_id": "C-1001", "limit": 2.0}, "limit: Input should be a valid integer"),
        ({"customer_id": "C-1001", "until": "9999-12-31"}, "until: the year must be between 1970 and 2100"),
    ],
)
async def test_list_recent_orders_refusals(
    executor: ToolExecutor, context: ToolContext, arguments: dict[str, Any], error: str
) -> None:
    assert error in (await call(executor, context, "list_recent_orders", arguments))["error"]


async def test_book_and_cancel(executor: ToolExecutor, context: ToolContext) -> None:
    slot = (datetime.now(UTC) + timedelta(days=3)).replace(hour=10, minute=30, second=0, microsecond=0)
    booking = {"customer_id": "C-1003", "starts_at": slot.isoformat(), "reason": "  Repair  "}
    booked = await call(executor, context, "book_appointment", booking)
    appointment = booked["appointment"]
    assert booked["booked"] and appointment["reason"] == "Repair" and appointment["starts_at"] == slot.isoformat()
    again = await call(executor, context, "book_appointment", {**booking, "customer_id": "C-1002"})
    assert "already booked" in again["error"]
    wrong_owner = {"appointment_id": appointment["appointment_id"], "customer_id": "C-1002"}
    assert "has no appointment" in (await call(executor, context, "cancel_appointment", wrong_owner))["error"]
    cancel = {"appointment_id": appointment["appointment_id"], "customer_id": "C-1003"}
    assert (await call(executor, context, "cancel_appointment", cancel))["appointment"]["status"] == "cancelled"
    assert "already cancelled" in (await call(executor, context, "cancel_appointment", cancel))["error"]


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
    body = await call(
        executor, context, "book_appointment", {"customer_id": "C-1001", "starts_at": starts_at, "reason": "x"}
    )
    assert error in body["error"]


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
