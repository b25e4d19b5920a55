"""Customers, orders and appointments as the tools see them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from db import BookingRefused, BusinessData, Database, QueryLog, SafeQuery, UnsafeQuery
from db.seed import seed_demo

pytestmark = pytest.mark.mongodb

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
async def data(database: Database, query_log: QueryLog) -> BusinessData:
    await seed_demo(database, now=NOW)
    return BusinessData(SafeQuery(database, query_log), now=lambda: NOW)


@pytest.mark.parametrize(
    ("key", "value"),
    [("customer_id", "C-1002"), ("phone", "+15550102"), ("email", "grace@example.com"), ("account_id", "ACCT-1002")],
)
async def test_customer_by_each_selective_key(data: BusinessData, key: str, value: str) -> None:
    customer = await data.customer(key, value)  # type: ignore[arg-type]
    assert customer is not None and customer["name"] == "Grace Hopper"


async def test_customer_cannot_be_looked_up_by_name(data: BusinessData) -> None:
    with pytest.raises(ValueError):
        await data.customer("name", "Grace Hopper")  # type: ignore[arg-type]


async def test_order_projection_hides_what_the_tool_did_not_declare(data: BusinessData) -> None:
    order = await data.order("O-50001", "C-1001")
    assert order is not None and order["status"] == "shipped"
    assert "shipping_address" not in order and "items" not in order
    assert await data.order("O-99999", "C-1001") is None


async def test_an_order_is_found_only_for_its_owner(data: BusinessData) -> None:
    assert await data.order("O-50004", "C-1001") is None  # Grace's order, asked for on Ada's account
    assert (await data.order("O-50004", "C-1002") or {}).get("customer_id") == "C-1002"


async def test_recent_orders_newest_first_with_status_and_dates(data: BusinessData, query_log: QueryLog) -> None:
    everything = await data.recent_orders("C-1001")
    assert [order["order_id"] for order in everything.documents] == ["O-50003", "O-50001", "O-50002"]
    shipped = await data.recent_orders("C-1001", status="shipped")
    assert [order["order_id"] for order in shipped.documents] == ["O-50001"]
    last_week = await data.recent_orders("C-1001", since=date(2025, 5, 26), until=date(2025, 5, 31))
    assert [order["order_id"] for order in last_week.documents] == ["O-50001"]
    assert query_log.records[-1].filter == {
        "customer_id": "C-1001",
        "created_at": {"$gte": datetime(2025, 5, 26, tzinfo=UTC), "$lt": datetime(2025, 6, 1, tzinfo=UTC)},
    }


async def test_recent_orders_open_ended_ranges(data: BusinessData) -> None:
    assert len((await data.recent_orders("C-1001", since=date(2025, 5, 1), until=date.max)).documents) == 3
    until = datetime(2025, 5, 31, tzinfo=UTC)
    assert [order["order_id"] for order in (await data.recent_orders("C-1001", until=until)).documents] == ["O-50002"]


async def test_recent_orders_need_a_customer(data: BusinessData) -> None:
    with pytest.raises(UnsafeQuery):
        await data.recent_orders("")


async def test_book_then_cancel_frees_the_slot(data: BusinessData) -> None:
    slot = datetime(2025, 6, 3, 10, 30, tzinfo=UTC)
    booked = await data.book_appointment("C-1002", slot, "Installation")
    assert booked["status"] == "booked" and booked["ends_at"] == slot + timedelta(minutes=30)
    with pytest.raises(BookingRefused, match="already booked"):
        await data.book_appointment("C-1003", slot, "Repair")
    with pytest.raises(BookingRefused, match="has no appointment"):
        await data.cancel_appointment(booked["appointment_id"], "C-1003")
    cancelled = await data.cancel_appointment(booked["appointment_id"], "C-1002")
    assert cancelled["status"] == "cancelled"
    with pytest.raises(BookingRefused, match="already cancelled"):
        await data.cancel_appointment(booked["appointment_id"], "C-1002")
    assert (await data.book_appointment("C-1003", slot, "Repair"))["customer_id"] == "C-1003"


@pytest.mark.parametrize(
    ("customer", "starts_at", "reason"),
    [
        ("C-1001", datetime(2025, 6, 3, 10, 15, tzinfo=UTC), "half hour"),
        ("C-1001", datetime(2025, 6, 1, 10, 0, tzinfo=UTC), "passed"),
        ("C-0000", datetime(2025, 6, 3, 10, 0, tzinfo=UTC), "no customer"),
    ],
)
async def test_bookings_refused(data: BusinessData, customer: str, starts_at: datetime, reason: str) -> None:
    with pytest.raises(BookingRefused, match=reason):
        await data.book_appointment(customer, starts_at, "Repair")
