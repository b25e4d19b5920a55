"""One declaration of any kind: the union the admin API stores, parsing, building and dry runs.

`parse_declaration` raises pydantic's `ValidationError` (its `loc` names the offending field: the
admin API's 422). `build_tool` may refuse too, with the same error shape, for what only the pod
knows (its result cap, its allowed hosts). `describe` is the dry run: the exact bounded query or
request a call with sample arguments would issue, without issuing it.

A kind plugs in with two lines: its model in `ToolDeclaration`, its builder and describer in `_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, get_args

from pydantic import Field, TypeAdapter, ValidationError

from tools.declared.base import DeclarationBase, DeclaredToolResources, refuse
from tools.declared.http import HttpDeclaration, build_http_tool, describe_http
from tools.declared.mongo import MongoFindDeclaration, MongoUpdateOneDeclaration
from tools.declared.mongo_build import build_mongo_tool, describe_mongo
from tools.tool import Tool, ToolContext

ToolDeclaration = Annotated[
    MongoFindDeclaration | MongoUpdateOneDeclaration | HttpDeclaration, Field(discriminator="kind")
]
_ADAPTER: TypeAdapter[ToolDeclaration] = TypeAdapter(ToolDeclaration)

Builder = Callable[[Any, DeclaredToolResources], Tool[Any]]
Describer = Callable[..., dict[str, Any]]
"""(declaration, sample_arguments, context, resources, *, customer_key) -> the operation as JSON data."""
_KINDS: dict[type[DeclarationBase], tuple[Builder, Describer]] = {
    MongoFindDeclaration: (build_mongo_tool, describe_mongo),
    MongoUpdateOneDeclaration: (build_mongo_tool, describe_mongo),
    HttpDeclaration: (build_http_tool, describe_http),
}


def parse_declaration(document: Mapping[str, Any]) -> ToolDeclaration:
    """A declaration from its JSON form (the admin API's body, a stored version)."""
    try:
        return _ADAPTER.validate_python(document)
    except ValidationError as exc:
        if any(error["type"] in ("union_tag_invalid", "union_tag_not_found") for error in exc.errors()):
            kinds = ", ".join(sorted(_kind_tags()))
            raise refuse("ToolDeclaration", ("kind",), f"kind must be one of: {kinds}") from None
        raise


def _kind_tags() -> set[str]:
    return {tag for model in _KINDS for tag in get_args(model.model_fields["kind"].annotation)}


def declaration_json(declaration: DeclarationBase) -> dict[str, Any]:
    """The JSON form `parse_declaration` reads back (to store, or to show)."""
    return declaration.model_dump(mode="json", exclude_none=True)


def build_tool(declaration: DeclarationBase, resources: DeclaredToolResources) -> Tool[Any]:
    """The executable tool; raises `ValidationError` (naming the field) when this pod cannot run it."""
    return _kind(declaration)[0](declaration, resources)


def describe(
    declaration: DeclarationBase,
    sample_arguments: Mapping[str, Any],
    context: ToolContext,
    resources: DeclaredToolResources,
    *,
    customer_key: str | None = None,
) -> dict[str, Any]:
    """The dry run: validates `sample_arguments` as a call would (`ValidationError` if invalid) and
    returns the exact operation it would issue, as JSON-ready data. The identity key is the
    caller's verified one, or `customer_key` for a dry run without a call (an operator's sample);
    without either, a caller-scoped tool raises the `ToolError` a call would get."""
    return _kind(declaration)[1](declaration, sample_arguments, context, resources, customer_key=customer_key)


def _kind(declaration: DeclarationBase) -> tuple[Builder, Describer]:
    try:
        return _KINDS[type(declaration)]
    except KeyError:
        raise TypeError(f"no builder for {type(declaration).__name__}") from None
