"""Twilio request signatures, checked against the URL Twilio actually requested.

Twilio signs the full public URL (scheme, host, path, query) plus the POST parameters. Behind a
proxy or load balancer the URL the app sees differs, so it is rebuilt from `public_url` when
configured, else from the request, honouring `X-Forwarded-Proto`/`X-Forwarded-Host` only when
the operator says the proxy is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import HTTPConnection
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

from telephony.settings import Settings


def _first(header_value: str) -> str:
    return header_value.split(",")[0].strip()


def public_base_url(connection: HTTPConnection, settings: Settings) -> str:
    """Scheme and host (and any path prefix) under which Twilio reaches this service."""
    if settings.public_url is not None:
        return str(settings.public_url).rstrip("/")
    scheme = connection.url.scheme
    host = connection.headers.get("host", connection.url.netloc)
    if settings.trust_forwarded_headers:
        scheme = _first(connection.headers.get("x-forwarded-proto", scheme))
        host = _first(connection.headers.get("x-forwarded-host", host))
    if scheme in ("ws", "wss"):
        scheme = "https" if scheme == "wss" else "http"
    return f"{scheme}://{host}"


def public_request_url(connection: HTTPConnection, settings: Settings) -> str:
    """The URL Twilio requested, as Twilio wrote it when signing."""
    url = public_base_url(connection, settings) + connection.url.path
    if connection.url.query:
        url += "?" + connection.url.query
    return url


def websocket_url(base_url: str, path: str) -> str:
    """The ws(s):// URL for `path` under an http(s):// base."""
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :] + path
    return "ws://" + base_url.removeprefix("http://") + path


def signature_is_valid(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None, settings_header: str | None = None
) -> bool:
    """True if `signature` is Twilio's signature of `url` and `params` under `auth_token`."""
    if not signature:
        return False
    algorithm = get_signature_algorithm(settings_header)
    return RequestValidator(auth_token).validate(url, params, signature, algorithm=algorithm)


__all__ = [
    "SIGNATURE_SETTINGS_HEADER",
    "public_base_url",
    "public_request_url",
    "signature_is_valid",
    "websocket_url",
]
