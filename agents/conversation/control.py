"""Call control offered to the model as actions: ending the call and transferring it.

They look like tools to the model, but the session carries them out through its port: call
control never reaches into telephony, and never goes through the data tools.
"""

from __future__ import annotations

from typing import Any

END_CALL = "end_call"
TRANSFER_CALL = "transfer_call"
CONTROL_ACTIONS = frozenset({END_CALL, TRANSFER_CALL})


def _action(name: str, description: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
            "strict": True,
        },
    }


def control_schemas(*, hang_up: bool, transfer: bool) -> list[dict[str, Any]]:
    schemas = []
    if hang_up:
        schemas.append(_action(END_CALL, "End the call. Say goodbye first. Use only when the caller is done."))
    if transfer:
        schemas.append(
            _action(TRANSFER_CALL, "Transfer the caller to a human colleague. Tell the caller first that you will.")
        )
    return schemas
