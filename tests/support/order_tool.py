"""One strict tool schema, as the session sends it, shared by the chat-model tests."""

from __future__ import annotations

from typing import Any

ORDER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order by its number.",
        "parameters": {
            "type": "object",
            "properties": {"order_number": {"type": "string"}},
            "required": ["order_number"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
