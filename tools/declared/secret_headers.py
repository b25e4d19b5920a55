"""Request headers of declared http tools: fixed plain values, or secrets looked up by name at call time.

A declaration stores only a secret's name (`{"secret": "ORDERS_API_KEY"}`); the value is read when a
request is made, by default from the environment variable `SWITCHBOARD_TOOL_SECRET_<NAME>` (how a
Kubernetes Secret reaches a pod). Values never go into a declaration, the dry-run description, a
log line, an error message or a tool result: the description shows `<secret NAME>`, and a value a
backend echoes back is masked the same way. Headers that look like credentials (names with auth,
key, token, secret, cookie, password, session) must come from a secret, so none sits in the
declarations collection. A value that could not be sent (a line break in it) is refused naming the
secret, not quoting it: the HTTP library's own error would quote it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tools.tool import ToolError

SecretLookup = Callable[[str], str | None]

SECRET_ENV_PREFIX = "SWITCHBOARD_TOOL_SECRET_"
MAX_HEADERS = 16
"""Most headers one declaration sets."""
MAX_HEADER_VALUE_CHARS = 4096
"""Longest header value, plain or secret."""

SECRET_NAME = r"^[A-Z][A-Z0-9_]{0,63}$"
HEADER_NAME = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "accept-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "proxy-authorization",
        "proxy-connection",
    }
)
"""Set by the tool itself (or hop-by-hop): a declaration may not set them."""
_CREDENTIAL_NAME = re.compile(r"auth|key|token|secret|cookie|passw|session", re.IGNORECASE)
_VALUE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")

_NEXT = "tell the caller you cannot check right now"

PlainValue = Annotated[str, StringConstraints(max_length=MAX_HEADER_VALUE_CHARS, pattern=_VALUE.pattern)]


class SecretHeader(BaseModel):
    """A header whose value is the named secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str = Field(pattern=SECRET_NAME)


HeaderValue = SecretHeader | PlainValue


def check_headers(headers: Mapping[str, HeaderValue]) -> Mapping[str, HeaderValue]:
    """The declared headers, or ValueError: a reserved or duplicate name, a credential in plain text."""
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    for name, value in headers.items():
        if not re.match(HEADER_NAME, name):
            raise ValueError(f"{name[:64]!r} is not a header name (letters, digits and '-')")
        lower = name.lower()
        if lower in RESERVED_HEADERS:
            raise ValueError(f"{name} is set by the tool itself")
        if lower in seen:
            raise ValueError(f"{name} is declared twice")
        seen.add(lower)
        if isinstance(value, str) and _CREDENTIAL_NAME.search(name):
            raise ValueError(f"{name} looks like a credential: give it as {{'secret': NAME}}, not a plain value")
    return headers


def environment_secrets(name: str) -> str | None:
    """The default lookup: `SWITCHBOARD_TOOL_SECRET_<NAME>` from the environment."""
    return os.environ.get(SECRET_ENV_PREFIX + name)


def masked(headers: Mapping[str, HeaderValue]) -> dict[str, str]:
    """The headers as a dry run shows them: secrets as `<secret NAME>`."""
    return {
        name: f"<secret {value.secret}>" if isinstance(value, SecretHeader) else value
        for name, value in headers.items()
    }


def resolve(
    tool: str, headers: Mapping[str, HeaderValue], lookup: SecretLookup
) -> tuple[dict[str, str], dict[str, str]]:
    """(header -> value to send, secret value -> its name for masking). ToolError when a secret is
    missing or cannot be sent; the message names the secret, never its value."""
    resolved: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(value, SecretHeader):
            resolved[name] = value
            continue
        secret = lookup(value.secret)
        if not secret:
            raise ToolError(f"{tool} is not configured (secret {value.secret} is not set); {_NEXT}")
        if len(secret) > MAX_HEADER_VALUE_CHARS or not _VALUE.match(secret):
            raise ToolError(f"{tool} is misconfigured (secret {value.secret} is not a valid header value); {_NEXT}")
        resolved[name] = secret
        secrets[secret] = value.secret
    return resolved, secrets
