"""Making a declared http tool's request and reading its answer, within the declared bounds.

Redirects are never followed (any 3xx is refused, on the list or off it): the declared URL is the
final address, so a backend cannot send a request, its secret headers included, anywhere else.
The whole exchange, retries included, has the declaration's `timeout_s`. Only GET is retried (the
declaration refuses retries for writes): on 429, 502, 503, 504 or a failed connection, after a short
backoff. The answer is read as it streams and abandoned past `max_response_bytes` (a declared
`Content-Length` above it is refused before reading); it must be uncompressed JSON. What comes
back to the model is only the declared `returns` paths, and any secret a backend echoes in them is
masked. Errors say what happened in a line the model can act on, never a URL, a header or a body.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from tools.declared.http_request import RequestPlan, with_defaults
from tools.tool import ToolError, ToolResult

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_BACKOFF_S = 0.1
"""Wait before the first retry, doubled for the second."""
MAX_RESULT_ITEMS = 50
"""Most elements of a top-level JSON array handed to the model (the rest are counted)."""

_Scalar = (str, int, float, bool, type(None))


async def fetch_json(
    tool: str,
    plan: RequestPlan,
    headers: Mapping[str, str],
    *,
    client: httpx.AsyncClient | None,
    timeout_s: float,
    max_response_bytes: int,
    retries: int,
) -> Any:
    """The backend's JSON answer; ToolError for anything else."""
    timed_out = f"{tool}: the backend did not answer within {timeout_s:g} s; tell the caller you cannot check right now"
    try:
        async with asyncio.timeout(timeout_s):
            if client is not None:
                content = await _attempts(tool, plan, headers, client, timeout_s, max_response_bytes, retries)
            else:
                async with httpx.AsyncClient(trust_env=False, follow_redirects=False, verify=_tls()) as own:
                    content = await _attempts(tool, plan, headers, own, timeout_s, max_response_bytes, retries)
    except (TimeoutError, httpx.TimeoutException):
        raise ToolError(timed_out) from None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        raise ToolError(
            f"{tool}: the backend's answer is not JSON; tell the caller you cannot check right now"
        ) from None


async def _attempts(
    tool: str,
    plan: RequestPlan,
    headers: Mapping[str, str],
    client: httpx.AsyncClient,
    timeout_s: float,
    cap: int,
    retries: int,
) -> bytes:
    for attempt in range(retries + 1):
        last = attempt == retries
        try:
            content = await _once(tool, plan, headers, client, timeout_s, cap, retry=not last)
        except httpx.TimeoutException:
            raise
        except httpx.TransportError as exc:
            log.warning("tool %s: request failed (%s)", tool, type(exc).__name__, extra={"tool": tool})
            if last:
                raise ToolError(
                    f"{tool} could not reach its backend; tell the caller you cannot check right now"
                ) from None
        except httpx.HTTPError as exc:  # an invalid request: nothing to retry
            log.warning("tool %s: request refused (%s)", tool, type(exc).__name__, extra={"tool": tool})
            raise ToolError(f"{tool} failed; tell the caller you cannot check right now") from None
        else:
            if content is not None:
                return content
        await asyncio.sleep(RETRY_BACKOFF_S * 2**attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


async def _once(
    tool: str,
    plan: RequestPlan,
    headers: Mapping[str, str],
    client: httpx.AsyncClient,
    timeout_s: float,
    cap: int,
    *,
    retry: bool,
) -> bytes | None:
    """The answer's bytes, or None for a status worth retrying (when `retry`)."""
    async with client.stream(
        plan.method,
        plan.url,
        params=plan.query,
        json=plan.body,
        headers=with_defaults(headers),
        timeout=timeout_s,
        follow_redirects=False,
    ) as response:
        status = response.status_code
        if retry and status in RETRY_STATUSES:
            log.info("tool %s: HTTP %d, retrying", tool, status, extra={"tool": tool})
            return None
        if 300 <= status < 400:
            raise ToolError(f"{tool}: the backend redirected (HTTP {status}) and redirects are not followed")
        if status == 404:
            raise ToolError(f"{tool} found nothing (HTTP 404); check the details with the caller")
        if not 200 <= status < 300:
            raise ToolError(f"{tool}: the backend answered HTTP {status}; tell the caller you cannot check right now")
        if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            raise ToolError(f"{tool}: the backend sent a compressed answer, which is not accepted")
        too_large = f"{tool}: response larger than {cap} bytes"
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            raise ToolError(too_large)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > cap:
                raise ToolError(too_large)
            chunks.append(chunk)
        return b"".join(chunks)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for the per-call clients (making one costs ~45 ms of CPU; a client with it ~2 ms).
    No proxy or netrc from the environment (`trust_env=False`): a request goes where it was declared."""
    return httpx.create_ssl_context(trust_env=False)


def shape(tool: str, document: Any, returns: Sequence[str], secrets: Mapping[str, str]) -> ToolResult:
    """Only the `returns` paths of the answer (of each element, for a top-level array), secrets masked."""
    paths = [path.split(".") for path in returns]
    if isinstance(document, dict):
        return ToolResult(_masked(_project(document, paths), secrets))
    if isinstance(document, list):
        elements = [element for element in document if isinstance(element, dict)]
        items = [_masked(_project(element, paths), secrets) for element in elements[:MAX_RESULT_ITEMS]]
        return ToolResult({}, items, "items", more=max(0, len(elements) - MAX_RESULT_ITEMS))
    raise ToolError(f"{tool}: the backend's answer is not a JSON object; tell the caller you cannot check right now")


def _project(document: dict[str, Any], paths: Sequence[list[str]]) -> dict[str, Any]:
    """The declared paths that hold a plain value (a scalar, or a list of scalars), nested as found;
    an object at a path is left out (name its fields instead)."""
    out: dict[str, Any] = {}
    for path in paths:
        node: Any = document
        for key in path:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            if isinstance(node, _Scalar) or (isinstance(node, list) and all(isinstance(v, _Scalar) for v in node)):
                target = out
                for key in path[:-1]:
                    target = target.setdefault(key, {})
                target[path[-1]] = node
    return out


def _masked(value: Any, secrets: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for secret, name in secrets.items():
            value = value.replace(secret, f"<secret {name}>")
        return value
    if isinstance(value, dict):
        return {key: _masked(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item, secrets) for item in value]
    return value
