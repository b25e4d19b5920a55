"""Compiling a Mongo declaration into a `Tool`, and its dry run.

The handler builds the filter from the validated argument instance only (never the model's JSON):
the verified caller's key on `identity_field`, each given argument as its declared match (a value,
a `Prefix`, or a `Between` from a range start and end), and reads through `SafeQuery`, which adds
the limit, projection, `maxTimeMS` and byte budget. Results carry only the `returns` fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from db.errors import translated
from db.safe_query import Between, Prefix, QueryRecord, ReadSpec, SafeQuery
from tools.declared.arguments import compile_arguments
from tools.declared.base import DeclaredToolResources, refuse
from tools.declared.mongo import MongoDeclaration, MongoFindDeclaration, MongoUpdateOneDeclaration, SetFromArgument
from tools.tool import Tool, ToolArguments, ToolContext, ToolError, ToolResult

NOTHING_FOUND = "nothing matched for this caller; ask them to check the details"
"""What the model hears when a read or write matched no document (never whose it might have been)."""
_find = translated(SafeQuery.find)
_set_one = translated(SafeQuery.set_one)
"""The reads and writes, raising `DatabaseError` (the executor's "could not reach the records") for
the driver's errors, as the repositories do."""


def read_spec(declaration: MongoDeclaration) -> ReadSpec:
    """What the safe-query layer may do for this declaration: its projection, selective and filter fields."""
    filters = declaration.filter_arguments()
    selective = {argument.target for argument in filters if argument.name in declaration.selective}
    if declaration.identity_field is not None:
        selective.add(declaration.identity_field)
    sort = tuple(key.pair for key in declaration.sort) if isinstance(declaration, MongoFindDeclaration) else ()
    return ReadSpec(
        collection=declaration.collection,
        fields=declaration.returns,
        selective=frozenset(selective),
        filterable=frozenset(argument.target for argument in filters),
        sort=sort,
    )


def build_mongo_tool(declaration: MongoDeclaration, resources: DeclaredToolResources) -> Tool[Any]:
    query = _safe_query(declaration, resources)
    arguments = compile_arguments(declaration.name, declaration.arguments)
    spec = read_spec(declaration)

    if isinstance(declaration, MongoFindDeclaration):

        async def find(args: ToolArguments, context: ToolContext) -> ToolResult:
            where = build_where(declaration, args, _identity(declaration, context))
            read = await _find(query, spec, where, limit=declaration.max_results)
            read = replace(read, documents=_only(read.documents, declaration.returns))
            if not read.documents:
                return ToolResult({"found": 0, "message": NOTHING_FOUND})
            return ToolResult.from_read(read, "results", found=len(read.documents))

        handler: Any = find
    else:
        update = declaration

        async def set_one(args: ToolArguments, context: ToolContext) -> dict[str, Any]:
            where = build_where(update, args, _identity(update, context))
            document = await _set_one(query, spec, where, build_changes(update, args))
            if document is None:
                return {"updated": False, "message": NOTHING_FOUND}
            return {"updated": True, "record": _only([document], update.returns)[0]}

        handler = set_one
    return Tool(declaration.name, declaration.description, arguments, handler, declaration.timeout_s)


def build_where(declaration: MongoDeclaration, args: ToolArguments, customer_key: str | None) -> dict[str, object]:
    """The filter values from the validated arguments (and the identity key), or a `ToolError` when
    no selective argument was given."""
    where: dict[str, object] = {}
    ranges: dict[str, dict[str, object]] = {}
    given_selective = False
    for argument in declaration.filter_arguments():
        value = getattr(args, argument.name)
        if value is None:
            continue
        if argument.name in declaration.selective and value != "":
            given_selective = True
        if argument.match == "equals":
            where[argument.target] = value
        elif argument.match == "prefix":
            where[argument.target] = Prefix(value)
        else:
            ranges.setdefault(argument.target, {})["low" if argument.match == "range_start" else "high"] = value
    for field, ends in ranges.items():
        where[field] = _between(field, ends.get("low"), ends.get("high"))
    if declaration.selective and not given_selective:
        raise ToolError(f"{declaration.name} needs one of: {', '.join(declaration.selective)}; ask the caller")
    if declaration.identity_field is not None:
        if customer_key is None:  # pragma: no cover - _identity raises first
            raise ToolError("the caller is not verified yet")
        where[declaration.identity_field] = customer_key
    return where


def build_changes(declaration: MongoUpdateOneDeclaration, args: ToolArguments) -> dict[str, object]:
    changes: dict[str, object] = {}
    for field, source in declaration.set.items():
        value = getattr(args, source.argument) if isinstance(source, SetFromArgument) else source.value
        if value is not None:
            changes[field] = value
    if not changes:
        wanted = [source.argument for source in declaration.set.values() if isinstance(source, SetFromArgument)]
        raise ToolError(f"{declaration.name} has nothing to change; give {' or '.join(wanted)}")
    return changes


def describe_mongo(
    declaration: MongoDeclaration,
    sample_arguments: Mapping[str, Any],
    context: ToolContext,
    resources: DeclaredToolResources,
    *,
    customer_key: str | None = None,
) -> dict[str, Any]:
    """See `tools.declared.describe`. `limit` is as issued: `max_results` + 1, the extra document
    telling whether any were left out (the result never has more than `max_results`)."""
    query = _safe_query(declaration, resources)
    model = compile_arguments(declaration.name, declaration.arguments)
    args = model.model_validate_json(json.dumps(dict(sample_arguments)))  # as the executor validates a call
    key = customer_key if customer_key is not None else _identity(declaration, context)
    where = build_where(declaration, args, key)
    spec = read_spec(declaration)
    if isinstance(declaration, MongoFindDeclaration):
        record = query.plan_find(spec, where, limit=declaration.max_results)
        limits = {"max_results": declaration.max_results, "max_result_bytes": query.settings.max_result_bytes}
        return {"operation": "find", **_record(record), "batch_size": record.batch_size, **limits}
    record, values = query.plan_set_one(spec, where, build_changes(declaration, args))
    return {"operation": "update_one", **_record(record), "update": {"$set": _jsonable(values)}}


def _safe_query(declaration: MongoDeclaration, resources: DeclaredToolResources) -> SafeQuery:
    if resources.safe_query is None:
        raise refuse(declaration.name, ("kind",), "this pod has no business database for mongo tools")
    cap = resources.safe_query.settings.max_limit
    if isinstance(declaration, MongoFindDeclaration) and declaration.max_results > cap:
        raise refuse(
            declaration.name, ("max_results",), f"max_results is above this pod's cap of {cap}", declaration.max_results
        )
    return resources.safe_query


def _identity(declaration: MongoDeclaration, context: ToolContext) -> str | None:
    return context.caller.verified_key() if declaration.scope == "caller" else None


def _only(documents: list[dict[str, Any]], returns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Documents cut to the declared fields (the projection already did; this makes it a guarantee)."""
    return [{name: document[name] for name in returns if name in document} for document in documents]


def _between(field: str, low: Any, high: Any) -> Between:
    """A range start and end (either may be absent); a date's end includes that whole day."""
    if low is not None and high is not None and low > high:
        raise ToolError(f"the range on {field} starts after it ends; swap or correct them")
    if type(high) is date:
        return Between(low, high + timedelta(days=1))  # before the next day starts
    return Between(low, high, high_inclusive=high is not None)


def _record(record: QueryRecord) -> dict[str, Any]:
    return {
        "collection": record.collection,
        "filter": _jsonable(record.filter),
        "projection": dict(record.projection or {}),
        "sort": [[field, direction] for field, direction in record.sort],
        "limit": record.limit,
        "max_time_ms": record.max_time_ms,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
