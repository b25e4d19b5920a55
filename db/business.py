"""The business data tools read: customers, orders and appointments.

Every read goes through `SafeQuery` with a `ReadSpec` declared here, so what a tool can see (its
projection) and how it can search (its selective fields) is fixed in code. Arguments arrive
already validated by the tool layer; this layer checks them again because it trusts nobody.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pymongo.errors import DuplicateKeyError

from db.errors import translates_driver_errors
from db.indexes import APPOINTMENTS, CUSTOMERS, ORDERS
from db.safe_query import Between, ReadResult, ReadSpec, SafeQuery

CustomerKey = Literal["customer_id", "phone", "email", "account_id"]
OrderStatus = Literal["pending", "processing", "shipped", "delivered", "cancelled", "returned"]

CUSTOMER = ReadSpec(
    CUSTOMERS,
    fields=("customer_id", "name", "phone", "email", "account_id", "tier"),
    selective=frozenset({"customer_id", "phone", "email", "account_id"}),
)
ORDER = ReadSpec(
    ORDERS,
    fields=(
        "order_id",
        "customer_id",
        "status",
        "created_at",
        "total",
        "currency",
        "eta",
        "carrier",
        "tracking_number",
    ),
    selective=frozenset({"order_id"}),
    filterable=frozenset({"customer_id"}),
)
CUSTOMER_ORDERS = ReadSpec(
    ORDERS,
    fields=("order_id", "status", "created_at", "total", "currency", "eta"),
    selective=frozenset({"customer_id"}),
    filterable=frozenset({"status", "created_at"}),
    sort=(("created_at", -1),),
)
APPOINTMENT = ReadSpec(
    APPOINTMENTS,
    fields=("appointment_id", "customer_id", "starts_at", "ends_at", "status", "reason"),
    selective=frozenset({"appointment_id"}),
    filterable=frozenset({"customer_id", "status"}),
)

SLOT_MINUTES = 30
"""Appointments take one fixed slot; `starts_at` falls on a slot boundary."""


class BookingRefused(ValueError):
    """A booking or cancellation that cannot be done; the message is meant for the caller."""


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day_start(day: date | datetime) -> datetime:
    if isinstance(day, datetime):
        return _utc(day)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@translates_driver_errors
class BusinessData:
    def __init__(self, query: SafeQuery, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.query = query
        self.now = now

    async def customer(self, key: CustomerKey, value: str) -> dict[str, Any] | None:
        """The customer whose `key` (customer id, phone, email or account id) equals `value`."""
        if key not in CUSTOMER.selective:
            raise ValueError(f"customers cannot be looked up by {key!r}")
        return await self.query.find_one(CUSTOMER, {key: value})

    async def order(self, order_id: str, customer_id: str) -> dict[str, Any] | None:
        """Order `order_id` if `customer_id` owns it: another customer's order is not found."""
        return await self.query.find_one(ORDER, {"order_id": order_id, "customer_id": customer_id})

    async def recent_orders(
        self,
        customer_id: str,
        *,
        status: OrderStatus | None = None,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        limit: int | None = None,
    ) -> ReadResult:
        """Newest first; `since` inclusive and `until` inclusive of its whole day when a date."""
        where: dict[str, object] = {"customer_id": customer_id}
        if status is not None:
            where["status"] = status
        if since is not None or until is not None:
            high = None
            if isinstance(until, datetime):
                high = _utc(until)
            elif until is not None and until < date.max:  # the day after date.max does not exist
                high = _day_start(until) + timedelta(days=1)
            where["created_at"] = Between(None if since is None else _day_start(since), high)
        return await self.query.find(CUSTOMER_ORDERS, where, limit=limit)

    async def appointment(self, appointment_id: str) -> dict[str, Any] | None:
        return await self.query.find_one(APPOINTMENT, {"appointment_id": appointment_id})

    async def book_appointment(self, customer_id: str, starts_at: datetime, reason: str) -> dict[str, Any]:
        """Book the slot at `starts_at` for an existing customer, or raise `BookingRefused`."""
        starts_at = _utc(starts_at)
        if starts_at.minute % SLOT_MINUTES or starts_at.second or starts_at.microsecond:
            raise BookingRefused(f"appointments start on the hour or half hour ({SLOT_MINUTES}-minute slots)")
        if starts_at <= self.now():
            raise BookingRefused("that time has already passed")
        if await self.customer("customer_id", customer_id) is None:
            raise BookingRefused(f"there is no customer {customer_id}")
        appointment = {
            "appointment_id": "A-" + secrets.token_hex(4).upper(),
            "customer_id": customer_id,
            "starts_at": starts_at,
            "ends_at": starts_at + timedelta(minutes=SLOT_MINUTES),
            "status": "booked",
            "reason": reason,
            "slot": starts_at.isoformat(),
            "booked_at": self.now(),
        }
        try:
            await self.query.insert(APPOINTMENTS, appointment)
        except DuplicateKeyError:
            raise BookingRefused("that time is already booked; offer the caller another time") from None
        return {key: appointment[key] for key in APPOINTMENT.fields}

    async def cancel_appointment(self, appointment_id: str, customer_id: str) -> dict[str, Any]:
        """Cancel a booked appointment of this customer (frees its slot), or raise `BookingRefused`."""
        cancelled = await self.query.update_one(
            APPOINTMENT,
            {"appointment_id": appointment_id, "customer_id": customer_id, "status": "booked"},
            {"status": "cancelled", "cancelled_at": self.now()},
            unset=("slot",),
        )
        appointment = await self.query.find_one(
            APPOINTMENT, {"appointment_id": appointment_id, "customer_id": customer_id}
        )  # another customer's appointment is not even read
        if appointment is None:
            raise BookingRefused(f"customer {customer_id} has no appointment {appointment_id}")
        if not cancelled:
            raise BookingRefused(f"appointment {appointment_id} was already {appointment['status']}")
        return appointment
