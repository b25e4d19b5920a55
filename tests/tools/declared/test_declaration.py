"""Declarations that cannot be made safe are refused with a `ValidationError` naming the field (the
admin API's 422); valid ones round-trip through their JSON form and build on a pod that can run them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from db import Database, SafeQuery
from tools.declared import (
    BUILTIN_DECLARATIONS,
    DeclaredToolResources,
    build_tool,
    declaration_json,
    parse_declaration,
)
from tools.declared.mongo import PLATFORM_COLLECTIONS

FIND: dict[str, Any] = {
    "name": "find_order",
    "kind": "mongo_find",
    "description": "Look up one of the caller's orders.",
    "collection": "orders",
    "identity_field": "customer_id",
    "arguments": [
        {"name": "order_id", "type": "string", "max_length": 40, "required": True},
        {"name": "status", "type": "enum", "values": ["shipped", "pending"]},
    ],
    "selective": ["order_id"],
    "returns": ["order_id", "status"],
}
UPDATE: dict[str, Any] = {
    "name": "set_delivery_note",
    "kind": "mongo_update_one",
    "description": "Change the delivery note of one of the caller's orders.",
    "collection": "orders",
    "identity_field": "customer_id",
    "arguments": [
        {"name": "order_id", "type": "string", "max_length": 40, "required": True},
        {"name": "note", "type": "string", "max_length": 200, "required": True},
    ],
    "selective": ["order_id"],
    "set": {"delivery_note": {"argument": "note"}, "note_source": {"value": "phone"}},
    "returns": ["order_id", "delivery_note"],
}


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def locations(document: dict[str, Any]) -> set[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as refused:
        parse_declaration(document)
    return {tuple(error["loc"]) for error in refused.value.errors()}


def refused_field(document: dict[str, Any]) -> set[str | int]:
    """The declaration's own field each error names (after the union's kind tag)."""
    return {loc[1] for loc in locations(document) if len(loc) > 1}


REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "no selective argument (scope none)": (changed(FIND, scope="none", identity_field=None, selective=[]), "selective"),
    "no selective argument (a write)": (changed(UPDATE, selective=[]), "selective"),
    "selective names an unknown argument": (changed(FIND, selective=["order_number"]), "selective"),
    "selective enum narrows too little": (changed(FIND, selective=["status"]), "selective"),
    "selective range": (
        changed(
            FIND,
            arguments=[{"name": "since", "type": "date", "match": "range_start", "field": "created_at"}],
            selective=["since"],
        ),
        "selective",
    ),
    "unbounded string": (changed(FIND, arguments=[{"name": "order_id", "type": "string"}]), "arguments"),
    "unbounded integer": (
        changed(FIND, arguments=[{"name": "order_id", "type": "integer", "minimum": 1}]),
        "arguments",
    ),
    "unknown type": (changed(FIND, arguments=[{"name": "order_id", "type": "uuid"}]), "arguments"),
    "pattern too long": (
        changed(FIND, arguments=[{"name": "order_id", "type": "string", "max_length": 9, "pattern": "a" * 201}]),
        "arguments",
    ),
    "max_results above the model's cap": (changed(FIND, max_results=101), "max_results"),
    "platform collection": (changed(FIND, collection="calls"), "collection"),
    "system collection": (changed(FIND, collection="system.users"), "collection"),
    "operator in the collection name": (changed(FIND, collection="$cmd"), "collection"),
    "scope caller without identity field": (changed(FIND, identity_field=None), "identity_field"),
    "argument targeting the identity field": (
        changed(
            FIND,
            arguments=[
                *FIND["arguments"],
                {"name": "customer", "type": "string", "max_length": 9, "field": "customer_id"},
            ],
        ),
        "identity_field",
    ),
    "argument named as the identity field": (
        changed(FIND, arguments=[*FIND["arguments"], {"name": "customer_id", "type": "string", "max_length": 9}]),
        "identity_field",
    ),
    "two arguments on one field": (
        changed(
            FIND,
            arguments=[*FIND["arguments"], {"name": "order", "type": "string", "max_length": 9, "field": "order_id"}],
        ),
        "arguments",
    ),
    "a range of mixed types": (
        changed(
            FIND,
            arguments=[
                *FIND["arguments"],
                {"name": "since", "type": "date", "match": "range_start", "field": "created_at"},
                {"name": "until", "type": "datetime", "match": "range_end", "field": "created_at"},
            ],
        ),
        "arguments",
    ),
    "set to a value that is not a number": (changed(UPDATE, set={"delivery_note": {"value": float("nan")}}), "set"),
    "no returned fields": (changed(FIND, returns=[]), "returns"),
    "dotted returned field": (changed(FIND, returns=["order_id", "customer.pin_hash"]), "returns"),
    "unknown field": (changed(FIND, filter={"$where": "1"}), "filter"),
    "a write without scope caller": (changed(UPDATE, scope="none", identity_field=None), "scope"),
    "set names an unknown argument": (changed(UPDATE, set={"delivery_note": {"argument": "text"}}), "set"),
    "set changes the identity field": (changed(UPDATE, set={"customer_id": {"value": "C-1002"}}), "set"),
    "set takes an operator": (changed(UPDATE, set={"delivery_note": {"value": {"$inc": 1}}}), "set"),
    "set from the selective argument": (changed(UPDATE, set={"order_id": {"argument": "order_id"}}), "set"),
}


@pytest.mark.parametrize(("document", "field"), REFUSALS.values(), ids=REFUSALS.keys())
def test_a_declaration_that_cannot_be_made_safe_is_refused_naming_the_field(
    document: dict[str, Any], field: str
) -> None:
    assert field in refused_field(document)


@pytest.mark.parametrize("kind", ["sql", None, 7])
def test_an_unknown_or_missing_kind_is_refused_naming_kind(kind: object) -> None:
    assert locations(changed(FIND, kind=kind)) == {("kind",)}


@pytest.mark.parametrize("collection", sorted(PLATFORM_COLLECTIONS))
def test_every_platform_collection_is_refused(collection: str) -> None:
    assert "collection" in refused_field(changed(FIND, collection=collection))


@pytest.mark.parametrize("document", [FIND, UPDATE, *BUILTIN_DECLARATIONS.values()])
def test_a_valid_declaration_round_trips_through_json(document: dict[str, Any]) -> None:
    declaration = parse_declaration(document)
    assert parse_declaration(declaration_json(declaration)) == declaration


@pytest.mark.mongodb
async def test_max_results_above_the_pods_cap_is_refused_at_build(make_database: Any) -> None:
    database: Database = await make_database(max_limit=20, default_limit=10)
    resources = DeclaredToolResources(safe_query=SafeQuery(database))
    build_tool(parse_declaration(changed(FIND, max_results=20)), resources)
    with pytest.raises(ValidationError) as refused:
        build_tool(parse_declaration(changed(FIND, max_results=21)), resources)
    assert [error["loc"] for error in refused.value.errors()] == [("max_results",)]
    assert "cap of 20" in str(refused.value)


def test_a_mongo_tool_needs_a_business_database() -> None:
    with pytest.raises(ValidationError, match="no business database"):
        build_tool(parse_declaration(FIND), DeclaredToolResources())
