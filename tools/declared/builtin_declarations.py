"""The built-in order tools re-expressed as declarations, scoped to the verified caller.

They read what `list_recent_orders` and `get_order_status` read (the same collection, fields and
order), but the customer key comes from the server (`identity_field: customer_id`), never from the
model: a caller cannot list another customer's orders or read another customer's order by number.
An agent can use these instead of the code built-ins; they are also the reference declarations the
tests run the incident payloads and the identity checks against.
"""

from __future__ import annotations

from typing import Any, get_args

from db.business import OrderStatus
from tools.declared.mongo import MongoFindDeclaration

MAX_LIST_RESULTS = 20
"""As the built-in list_recent_orders' MAX_LIST_LIMIT."""

ORDER_ID: dict[str, Any] = {
    "name": "order_id",
    "type": "string",
    "description": "order number, e.g. O-50001",
    "required": True,
    "max_length": 40,
    "pattern": "[A-Za-z0-9][A-Za-z0-9_-]{0,39}",
}

LIST_RECENT_ORDERS: dict[str, Any] = {
    "name": "list_recent_orders",
    "kind": "mongo_find",
    "description": "List the caller's most recent orders, newest first, optionally only one status or a date range.",
    "scope": "caller",
    "identity_field": "customer_id",
    "collection": "orders",
    "arguments": [
        {
            "name": "status",
            "type": "enum",
            "values": list(get_args(OrderStatus)),
            "description": "only orders in this status",
        },
        {
            "name": "since",
            "type": "date",
            "match": "range_start",
            "field": "created_at",
            "description": "first day to include, YYYY-MM-DD",
        },
        {
            "name": "until",
            "type": "date",
            "match": "range_end",
            "field": "created_at",
            "description": "last day to include, YYYY-MM-DD",
        },
    ],
    "returns": ["order_id", "status", "created_at", "total", "currency", "eta"],
    "sort": [{"field": "created_at", "direction": "desc"}],
    "max_results": MAX_LIST_RESULTS,
}

GET_ORDER_STATUS: dict[str, Any] = {
    "name": "get_order_status",
    "kind": "mongo_find",
    "description": "Look up one of the caller's orders by its order number: status, dates, carrier and tracking.",
    "scope": "caller",
    "identity_field": "customer_id",
    "collection": "orders",
    "arguments": [ORDER_ID],
    "selective": ["order_id"],
    "returns": ["order_id", "status", "created_at", "total", "currency", "eta", "carrier", "tracking_number"],
    "max_results": 1,
}

BUILTIN_DECLARATIONS: dict[str, dict[str, Any]] = {
    "list_recent_orders": LIST_RECENT_ORDERS,
    "get_order_status": GET_ORDER_STATUS,
}
"""By tool name, in their JSON form (as the admin API stores them)."""


def builtin_declaration(name: str) -> MongoFindDeclaration:
    """The parsed declaration of a built-in re-expressed as one; KeyError for other names."""
    return MongoFindDeclaration.model_validate(BUILTIN_DECLARATIONS[name])
