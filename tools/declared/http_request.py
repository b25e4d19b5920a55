"""The request a declared http tool makes, planned from validated arguments only.

Path placeholders take their values percent-encoded with nothing kept safe (`/`, `?`, `#`, `%` all
escaped), and a value that is empty or holds a `.` or `..` segment (even percent-encoded) is
refused: URL normalisation, ours or a proxy's, turns `/orders/../admin` into `/admin`. The planned URL is then
parsed back and must keep the template's scheme, host, port and exact path, so no argument can move
a request off its host or out of its path. Query values are sent as text; body values as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import quote, unquote

import httpx

from tools.declared.hosts import UrlTemplate
from tools.tool import ToolArguments, ToolError

Location = Literal["path", "query", "body"]

DEFAULT_HEADERS = {"Accept": "application/json", "Accept-Encoding": "identity", "User-Agent": "switchboard-tool/1"}
"""Sent with every request (`identity`: an answer is capped as it arrives, so no compression)."""

_SEPARATORS = re.compile(r"[/\\]")


def with_defaults(headers: Mapping[str, str]) -> dict[str, str]:
    """The declared headers over the defaults, names compared without case."""
    declared = {name.lower() for name in headers}
    return {**{name: value for name, value in DEFAULT_HEADERS.items() if name.lower() not in declared}, **headers}


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """Everything about one request but its headers' values."""

    method: str
    url: str
    """Origin and percent-encoded path, no query."""
    query: tuple[tuple[str, str], ...]
    body: dict[str, Any] | None
    """The JSON object sent, or None for no body."""

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "query": dict(self.query), "body": self.body}


def plan_request(
    tool: str,
    method: str,
    template: UrlTemplate,
    places: dict[str, Location],
    arguments: ToolArguments,
    identity: tuple[Location, str, str] | None,
) -> RequestPlan:
    """The request for these arguments. `places` maps each argument to where it goes; `identity` is
    (where, name, the verified customer key) for caller-scoped tools."""
    values: dict[str, tuple[Location, Any]] = {
        name: (place, getattr(arguments, name))
        for name, place in places.items()
        if getattr(arguments, name) is not None
    }
    if identity is not None:
        where, name, key = identity
        values[name] = (where, key)
    path = template.path
    for name in template.placeholders:
        path = path.replace("{" + name + "}", _path_value(name, values[name][1]), 1)
    url = template.origin + path
    _check_stays(tool, template, url, path)
    query = tuple((name, _text(value)) for name, (where, value) in values.items() if where == "query")
    body = {name: _json(value) for name, (where, value) in values.items() if where == "body"}
    return RequestPlan(method, url, query, body if _has_body(places, identity) else None)


def _has_body(places: dict[str, Location], identity: tuple[Location, str, str] | None) -> bool:
    """A tool with body fields sends a JSON object even when every optional one is absent."""
    return "body" in places.values() or (identity is not None and identity[0] == "body")


def _path_value(name: str, value: Any) -> str:
    """The value as one path segment. Refused if it holds a `.` or `..` segment as written or decoded
    once or twice (split at `/` and `\\`): a proxy that decodes `%2F` and then normalises would
    otherwise walk `..%2Fadmin` out of the path."""
    text = _text(value)
    forms = (text, unquote(text), unquote(unquote(text)))
    if not text or any(segment in (".", "..") for form in forms for segment in _SEPARATORS.split(form)):
        raise ToolError(f"{name} cannot be empty or hold '.' or '..' path segments; ask the caller for the right value")
    return quote(text, safe="")


def _check_stays(tool: str, template: UrlTemplate, url: str, path: str) -> None:
    """The URL as the HTTP library will send it: same host, port and path, or refused."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ToolError(f"{tool}: the arguments do not make a valid address; check them with the caller") from None
    if parsed.host != template.host or parsed.port != template.port or parsed.raw_path != path.encode("ascii"):
        raise ToolError(f"{tool}: the arguments would change the address; check them with the caller")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value
