"""Declared `http` tools: an operator's own REST backend, called only the way its declaration allows.

A declaration names the method, the URL template (its host on SWITCHBOARD_TOOL_HTTP_ALLOWED_HOSTS:
see hosts.py), where each declared argument goes (a `{placeholder}` in the path, `query` or `body`),
headers (plain, or `{"secret": NAME}` read at call time: see secret_headers.py), the time limit,
the response byte cap, the JSON paths returned to the model, and GET-only retries. With `scope:
caller` (the default), `identity_param` says where the server puts the verified caller's key; it is
never an argument, so the model cannot set it. Requests are planned from validated arguments only
(http_request.py) and made with redirects never followed (http_call.py).

Refusals are pydantic `ValidationError`s naming the field (the admin API's 422): the declaration's
own rules when it is parsed, the pod's host list when it is built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tools.declared.arguments import compile_arguments
from tools.declared.base import DeclarationBase, DeclaredToolResources, refuse
from tools.declared.hosts import UrlTemplate, allowed, parse_url_template
from tools.declared.http_call import fetch_json, shape
from tools.declared.http_request import Location, plan_request, with_defaults
from tools.declared.secret_headers import HeaderValue, check_headers, environment_secrets, masked, resolve
from tools.tool import Tool, ToolArguments, ToolContext, ToolResult

MAX_HTTP_TIMEOUT_S = 10.0
"""Longest time limit of one http tool call (retries included)."""
MAX_RESPONSE_BYTES = 1024 * 1024
"""Largest `max_response_bytes` a declaration may ask for."""
DEFAULT_RESPONSE_BYTES = 64 * 1024
MAX_RETRIES = 2
MAX_RETURNS = 30
"""Most JSON paths one tool returns."""
TIMEOUT_SLACK_S = 0.5
"""The executor's limit is this much above the tool's own, so the tool's clearer error wins."""

_RETURN_PATH = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_-]{0,63}){0,7}$"
_PARAM_NAME = r"^[a-z][a-z0-9_]{0,39}$"


class IdentityParam(BaseModel):
    """Where the verified caller's key goes: a `{name}` path placeholder, a query parameter or a body field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location: Location
    name: str = Field(pattern=_PARAM_NAME)


class HttpDeclaration(DeclarationBase):
    """An http tool. Fields are validated in order, and each rule sits on the field it names."""

    kind: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH"] = "GET"
    query: tuple[str, ...] = ()
    """Argument names sent as query parameters."""
    body: tuple[str, ...] = ()
    """Argument names sent as a JSON object (not with GET)."""
    identity_param: IdentityParam | None = Field(None, validate_default=True)
    """Required with `scope: caller`, refused with `scope: none`."""
    url: str
    """`https://host/path/{argument}`: the host on the pod's list, placeholders in the path only."""
    headers: dict[str, HeaderValue] = Field(default_factory=dict)
    returns: tuple[str, ...] = Field(min_length=1, max_length=MAX_RETURNS)
    """Dotted JSON paths ("order.status") handed to the model; nothing else is."""
    retries: int = Field(0, ge=0, le=MAX_RETRIES)
    """Further attempts after 429/502/503/504 or a failed connection; GET only."""
    timeout_s: float = Field(5.0, gt=0, le=MAX_HTTP_TIMEOUT_S)  # type: ignore[assignment]
    max_response_bytes: int = Field(DEFAULT_RESPONSE_BYTES, ge=1, le=MAX_RESPONSE_BYTES)

    @field_validator("arguments")
    @classmethod
    def _plain_arguments(cls, arguments: tuple[Any, ...]) -> tuple[Any, ...]:
        for argument in arguments:
            if argument.match != "equals" or argument.field is not None:
                raise ValueError(f"{argument.name}: match and field are for database tools, not http")
        return arguments

    @field_validator("query", "body")
    @classmethod
    def _declared(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        known = {argument.name for argument in info.data.get("arguments", ())}
        unknown = [name for name in names if name not in known]
        if unknown and "arguments" in info.data:
            raise ValueError(f"not declared arguments: {', '.join(unknown)}")
        if len(set(names)) != len(names):
            raise ValueError("each name once")
        if info.field_name == "body" and names:
            if info.data.get("method") == "GET":
                raise ValueError("GET sends no body: use query")
            if set(names) & set(info.data.get("query", ())):
                raise ValueError("an argument goes in one place: query or body")
        return names

    @field_validator("identity_param")
    @classmethod
    def _identity(cls, identity: IdentityParam | None, info: ValidationInfo) -> IdentityParam | None:
        scope = info.data.get("scope")
        if scope == "caller" and identity is None:
            raise ValueError("scope caller needs identity_param: where the verified caller's key goes")
        if scope == "none" and identity is not None:
            raise ValueError("scope none sends no caller key: remove identity_param")
        if identity is None:
            return None
        if any(argument.name == identity.name for argument in info.data.get("arguments", ())):
            raise ValueError(f"{identity.name} is an argument; the caller's key must not be one the model can set")
        if identity.location == "body" and info.data.get("method") == "GET":
            raise ValueError("GET sends no body: put the key in the path or query")
        return identity

    @field_validator("url")
    @classmethod
    def _url(cls, url: str, info: ValidationInfo) -> str:
        template = parse_url_template(url)
        if "arguments" not in info.data:
            return url
        required = {argument.name: argument.required for argument in info.data["arguments"]}
        identity: IdentityParam | None = info.data.get("identity_param")
        identity_path = identity.name if identity is not None and identity.location == "path" else None
        elsewhere = set(info.data.get("query", ())) | set(info.data.get("body", ()))
        for name in template.placeholders:
            if name == identity_path:
                continue
            if name not in required or name in elsewhere:
                raise ValueError(f"{{{name}}} is not an argument declared for the path")
            if not required[name]:
                raise ValueError(f"{{{name}}} is in the path, so argument {name} must be required")
        if identity_path is not None and identity_path not in template.placeholders:
            raise ValueError(f"identity_param names the path placeholder {{{identity_path}}}, which is not in the url")
        unused = [name for name in required if name not in template.placeholders and name not in elsewhere]
        if unused and {"query", "body"} <= info.data.keys():
            raise ValueError(f"arguments sent nowhere (put them in the path, query or body): {', '.join(unused)}")
        return url

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, HeaderValue]) -> dict[str, HeaderValue]:
        return dict(check_headers(headers))

    @field_validator("returns")
    @classmethod
    def _returns(cls, returns: tuple[str, ...]) -> tuple[str, ...]:
        for path in returns:
            if not re.match(_RETURN_PATH, path):
                raise ValueError(f"{path[:80]!r} is not a dotted JSON path (names, at most 8 deep)")
        for path in returns:
            if any(other != path and other.startswith(path + ".") for other in returns) or returns.count(path) > 1:
                raise ValueError(f"{path} is named twice or contains another path: name only the values")
        return returns

    @field_validator("retries")
    @classmethod
    def _retries(cls, retries: int, info: ValidationInfo) -> int:
        if retries and info.data.get("method", "GET") != "GET":
            raise ValueError("only GET is retried (a write may have happened)")
        return retries

    def places(self) -> dict[str, Location]:
        """Each argument -> where it goes."""
        template = parse_url_template(self.url)
        out: dict[str, Location] = {name: "path" for name in template.placeholders if self.argument(name)}
        out.update({name: "query" for name in self.query})
        out.update({name: "body" for name in self.body})
        return out


def build_http_tool(declaration: HttpDeclaration, resources: DeclaredToolResources) -> Tool[Any]:
    """The tool, or a ValidationError naming `url` when this pod's list does not admit its host."""
    template = allowed_template(declaration, resources)
    places = declaration.places()
    lookup = resources.secrets or environment_secrets
    client = resources.http_client

    async def handle(arguments: ToolArguments, context: ToolContext) -> ToolResult:
        plan = plan_request(
            declaration.name, declaration.method, template, places, arguments, _identity(declaration, context)
        )
        headers, secrets = resolve(declaration.name, declaration.headers, lookup)
        document = await fetch_json(
            declaration.name,
            plan,
            headers,
            client=client,
            timeout_s=declaration.timeout_s,
            max_response_bytes=declaration.max_response_bytes,
            retries=declaration.retries,
        )
        return shape(declaration.name, document, declaration.returns, secrets)

    return Tool(
        name=declaration.name,
        description=declaration.description,
        arguments=compile_arguments(declaration.name, declaration.arguments),
        handler=handle,
        timeout_s=declaration.timeout_s + TIMEOUT_SLACK_S,
    )


def describe_http(
    declaration: HttpDeclaration,
    sample_arguments: Mapping[str, Any],
    context: ToolContext,
    resources: DeclaredToolResources,
    *,
    customer_key: str | None = None,
) -> dict[str, Any]:
    """The dry run: the exact request these sample arguments make (validated as a call's are, a
    `ValidationError` otherwise), secret values masked. The caller's key is `customer_key` when
    given (an operator's sample), else the call's verified one."""
    template = allowed_template(declaration, resources)
    model = compile_arguments(declaration.name, declaration.arguments)
    arguments = model.model_validate_json(json.dumps(dict(sample_arguments)))  # as the executor validates a call
    identity = _identity(declaration, context, customer_key)
    plan = plan_request(declaration.name, declaration.method, template, declaration.places(), arguments, identity)
    return {
        "operation": "http",
        **plan.describe(),
        "headers": with_defaults(masked(declaration.headers)),
        "timeout_s": declaration.timeout_s,
        "max_response_bytes": declaration.max_response_bytes,
        "retries": declaration.retries,
        "redirects": "not followed",
        "returns": list(declaration.returns),
    }


def allowed_template(declaration: HttpDeclaration, resources: DeclaredToolResources) -> UrlTemplate:
    """The declaration's URL template if this pod's host list admits it."""
    template = parse_url_template(declaration.url)
    hosts = resources.allowed_hosts or frozenset()
    if not allowed(template, hosts):
        where = template.host if template.port is None else f"{template.host}:{template.port}"
        listed = ", ".join(sorted(hosts)[:10]) or "none: set SWITCHBOARD_TOOL_HTTP_ALLOWED_HOSTS"
        message = f"host {where} is not on the allowed hosts ({listed})"
        raise refuse("HttpDeclaration", ("url",), message, declaration.url)
    return template


def _identity(
    declaration: HttpDeclaration, context: ToolContext, customer_key: str | None = None
) -> tuple[Location, str, str] | None:
    """Where the verified caller's key goes, with the key (ToolError until the caller is verified)."""
    if declaration.scope != "caller" or declaration.identity_param is None:
        return None
    key = customer_key if customer_key is not None else context.caller.verified_key()
    return declaration.identity_param.location, declaration.identity_param.name, key
