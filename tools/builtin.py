"""The built-in tools agents enable by name: customers, orders and appointments.

Each is a strict argument model (what the model may send), a handler that turns the validated
fields into a `BusinessData` call (never passing model JSON on), and a description for the model.
Call control (transfer to a human, end the call) is not a tool: the session asks its port.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from db.business import BookingRefused, BusinessData, OrderStatus
from tools.tool import Tool, ToolArguments, ToolContext, ToolError, ToolResult

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]{1,180}\.[A-Za-z]{2,24}$")]
FIRST_YEAR, LAST_YEAR = 1970, 2100
"""Dates and times outside these years are refused (they are mistakes, and near year 1 or 9999
arithmetic on them overflows)."""


def _sane_year(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    return value


Day = Annotated[date, AfterValidator(_sane_year)]
Moment = Annotated[datetime, AfterValidator(_sane_year)]
MAX_LIST_LIMIT = 20
"""Most orders `list_recent_orders` returns in one call (the database layer's cap may be lower)."""
BOOKING_HORIZON_DAYS = 180
"""Appointments can be booked at most this far ahead."""


# -- find_customer -----------------------------------------------------------------------------


class FindCustomerArgs(ToolArguments):
    phone: Phone | None = Field(None, description="E.164 phone number, e.g. +15550101")
    email: Email | None = Field(None, description="email address")
    account_id: Id | None = Field(None, description="account id, e.g. ACCT-1001")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in ("phone", "email", "account_id") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of phone, email or account_id (the others null)")
        return self


def find_customer(data: BusinessData) -> Tool[FindCustomerArgs]:
    async def handler(args: FindCustomerArgs, context: ToolContext) -> dict[str, Any]:
        if args.phone is not None:
            customer = await data.customer("phone", args.phone)
        elif args.email is not None:
            customer = await data.customer("email", args.email)
        else:
            customer = await data.customer("account_id", str(args.account_id))
        if customer is None:
            return {"found": False, "message": "no customer matches; ask the caller to check it"}
        return {"found": True, "customer": customer}

    return Tool(
        "find_customer",
        "Identify the caller's customer record by exactly one of phone number, email or account id. "
        "Returns customer_id, which the order and appointment tools need.",
        FindCustomerArgs,
        handler,
    )


# -- get_order_status --------------------------------------------------------------------------


class GetOrderStatusArgs(ToolArguments):
    order_id: Id = Field(description="order number, e.g. O-50001")


def get_order_status(data: BusinessData) -> Tool[GetOrderStatusArgs]:
    async def handler(args: GetOrderStatusArgs, context: ToolContext) -> dict[str, Any]:
        order = await data.order(args.order_id)
        if order is None:
            return {"found": False, "message": f"no order {args.order_id}; ask the caller to repeat the number"}
        return {"found": True, "order": order}

    return Tool(
        "get_order_status",
        "Look up one order by its order number: status, dates, carrier and tracking number.",
        GetOrderStatusArgs,
        handler,
    )


# -- list_recent_orders ------------------------------------------------------------------------


class ListRecentOrdersArgs(ToolArguments):
    customer_id: Id = Field(description="from find_customer")
    status: OrderStatus | None = Field(None, description="only orders in this status")
    since: Day | None = Field(None, description="first day to include, YYYY-MM-DD")
    until: Day | None = Field(None, description="last day to include, YYYY-MM-DD")
    limit: int | None = Field(None, ge=1, le=MAX_LIST_LIMIT, description=f"how many, 1 to {MAX_LIST_LIMIT}")

    @model_validator(mode="after")
    def _range_in_order(self) -> Self:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("since must not be after until")
        return self


def list_recent_orders(data: BusinessData) -> Tool[ListRecentOrdersArgs]:
    async def handler(args: ListRecentOrdersArgs, context: ToolContext) -> ToolResult:
        read = await data.recent_orders(
            args.customer_id, status=args.status, since=args.since, until=args.until, limit=args.limit
        )
        return ToolResult.from_read(read, "orders", customer_id=args.customer_id)

    return Tool(
        "list_recent_orders",
        "List a customer's most recent orders, newest first, optionally only one status or a date range.",
        ListRecentOrdersArgs,
        handler,
    )


# -- appointments ------------------------------------------------------------------------------


class BookAppointmentArgs(ToolArguments):
    customer_id: Id = Field(description="from find_customer")
    starts_at: Moment = Field(description="ISO 8601 start on the hour or half hour; UTC unless an offset is given")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] = Field(
        description="what the appointment is for, in a few words"
    )


def book_appointment(data: BusinessData) -> Tool[BookAppointmentArgs]:
    async def handler(args: BookAppointmentArgs, context: ToolContext) -> dict[str, Any]:
        starts_at = args.starts_at if args.starts_at.tzinfo else args.starts_at.replace(tzinfo=UTC)
        if starts_at > data.now() + timedelta(days=BOOKING_HORIZON_DAYS):
            raise ToolError(f"appointments can be booked at most {BOOKING_HORIZON_DAYS} days ahead")
        try:
            appointment = await data.book_appointment(args.customer_id, starts_at, args.reason)
        except BookingRefused as exc:
            raise ToolError(str(exc)) from None
        return {"booked": True, "appointment": appointment}

    return Tool(
        "book_appointment",
        "Book a 30-minute appointment for a customer at a time the caller agreed to.",
        BookAppointmentArgs,
        handler,
    )


class CancelAppointmentArgs(ToolArguments):
    appointment_id: Id = Field(description="e.g. A-1F2E3D4C")
    customer_id: Id = Field(description="from find_customer; must own the appointment")


def cancel_appointment(data: BusinessData) -> Tool[CancelAppointmentArgs]:
    async def handler(args: CancelAppointmentArgs, context: ToolContext) -> dict[str, Any]:
        try:
            appointment = await data.cancel_appointment(args.appointment_id, args.customer_id)
        except BookingRefused as exc:
            raise ToolError(str(exc)) from None
        return {"cancelled": True, "appointment": appointment}

    return Tool(
        "cancel_appointment",
        "Cancel a customer's booked appointment after the caller confirmed it.",
        CancelAppointmentArgs,
        handler,
    )


# -- by name -----------------------------------------------------------------------------------

BUILTIN: dict[str, Callable[[BusinessData], Tool[Any]]] = {
    "find_customer": find_customer,
    "get_order_status": get_order_status,
    "list_recent_orders": list_recent_orders,
    "book_appointment": book_appointment,
    "cancel_appointment": cancel_appointment,
}


def builtin_tools(data: BusinessData, names: Sequence[str]) -> list[Tool[Any]]:
    """The built-in tools `names` (in that order) working on `data`; unknown names raise ValueError."""
    if isinstance(names, str):
        raise TypeError("names is a sequence of tool names, not one string")
    unknown = [name for name in names if name not in BUILTIN]
    if unknown:
        raise ValueError(f"unknown tool(s) {', '.join(map(repr, unknown))}; built-in tools are: {', '.join(BUILTIN)}")
    if len(set(names)) != len(names):
        raise ValueError("a tool is named twice")
    return [BUILTIN[name](data) for name in names]
