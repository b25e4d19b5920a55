"""The built-in tools agents enable by name: customers, orders and appointments.

Each is a strict argument model (what the model may send), a handler that turns the validated
fields into a `BusinessData` call (never passing model JSON on), and a description for the model.
Every one is caller-scoped: the customer it works for is the call's verified caller
(`context.caller.verified_key()`, set by the server's identity checks), never an argument, so no
phrasing of a request reaches another customer's data. Until the caller is verified they refuse
with what to ask the caller for. Call control (transfer, end the call) is not a tool: the session
asks its port.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from db.business import BookingRefused, BusinessData, OrderStatus
from tools.tool import Tool, ToolArguments, ToolContext, ToolError, ToolResult

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]
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
    """No arguments: whose record is the server's decision (the verified caller), never the model's."""


def find_customer(data: BusinessData) -> Tool[FindCustomerArgs]:
    async def handler(args: FindCustomerArgs, context: ToolContext) -> dict[str, Any]:
        customer = await data.customer("customer_id", context.caller.verified_key())
        if customer is None:
            return {"found": False, "message": "the caller's record is not on file; offer a transfer"}
        return {"found": True, "customer": customer}

    return Tool(
        "find_customer",
        "The verified caller's own customer record: name, tier and contact details.",
        FindCustomerArgs,
        handler,
    )


# -- get_order_status --------------------------------------------------------------------------


class GetOrderStatusArgs(ToolArguments):
    order_id: Id = Field(description="order number, e.g. O-50001")


def get_order_status(data: BusinessData) -> Tool[GetOrderStatusArgs]:
    async def handler(args: GetOrderStatusArgs, context: ToolContext) -> dict[str, Any]:
        order = await data.order(args.order_id, context.caller.verified_key())
        if order is None:  # another customer's order reads exactly like a missing one
            message = f"no order {args.order_id} on this caller's account; ask the caller to repeat the number"
            return {"found": False, "message": message}
        return {"found": True, "order": order}

    return Tool(
        "get_order_status",
        "Look up one of the caller's orders by its order number: status, dates, carrier and tracking number.",
        GetOrderStatusArgs,
        handler,
    )


# -- list_recent_orders ------------------------------------------------------------------------


class ListRecentOrdersArgs(ToolArguments):
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
            context.caller.verified_key(), status=args.status, since=args.since, until=args.until, limit=args.limit
        )
        return ToolResult.from_read(read, "orders")

    return Tool(
        "list_recent_orders",
        "List the caller's most recent orders, newest first, optionally only one status or a date range.",
        ListRecentOrdersArgs,
        handler,
    )


# -- appointments ------------------------------------------------------------------------------


class BookAppointmentArgs(ToolArguments):
    starts_at: Moment = Field(description="ISO 8601 start on the hour or half hour; UTC unless an offset is given")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] = Field(
        description="what the appointment is for, in a few words"
    )


def book_appointment(data: BusinessData) -> Tool[BookAppointmentArgs]:
    async def handler(args: BookAppointmentArgs, context: ToolContext) -> dict[str, Any]:
        customer_id = context.caller.verified_key()
        starts_at = args.starts_at if args.starts_at.tzinfo else args.starts_at.replace(tzinfo=UTC)
        if starts_at > data.now() + timedelta(days=BOOKING_HORIZON_DAYS):
            raise ToolError(f"appointments can be booked at most {BOOKING_HORIZON_DAYS} days ahead")
        try:
            appointment = await data.book_appointment(customer_id, starts_at, args.reason)
        except BookingRefused as exc:
            raise ToolError(str(exc)) from None
        return {"booked": True, "appointment": appointment}

    return Tool(
        "book_appointment",
        "Book a 30-minute appointment for the caller at a time they agreed to.",
        BookAppointmentArgs,
        handler,
    )


class CancelAppointmentArgs(ToolArguments):
    appointment_id: Id = Field(description="e.g. A-1F2E3D4C")


def cancel_appointment(data: BusinessData) -> Tool[CancelAppointmentArgs]:
    async def handler(args: CancelAppointmentArgs, context: ToolContext) -> dict[str, Any]:
        try:
            appointment = await data.cancel_appointment(args.appointment_id, context.caller.verified_key())
        except BookingRefused as exc:
            raise ToolError(str(exc)) from None
        return {"cancelled": True, "appointment": appointment}

    return Tool(
        "cancel_appointment",
        "Cancel one of the caller's booked appointments after they confirmed it.",
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
