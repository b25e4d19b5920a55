"""AWS Signature Version 4 for S3 requests, header-signed, as AWS's "Create a signed AWS API request" lays out.

Why our own: the S3 recording store needs five requests (PUT, GET, HEAD, DELETE, list) and httpx is
already here; an SDK would be a large dependency for them. The steps, exactly per AWS:

1. Canonical request: method, canonical URI (each byte but unreserved ones and `/` percent-encoded,
   once: S3 does not double-encode), canonical query string (pairs encoded, `/` too, sorted), canonical
   headers (lowercase names, values trimmed with inner spaces collapsed, sorted, each line ending in
   a newline), signed header names (`;`-joined), the payload's hex SHA-256; joined by newlines.
2. String to sign: `AWS4-HMAC-SHA256`, the timestamp, the scope (`date/region/service/aws4_request`),
   the canonical request's hex SHA-256.
3. Signing key: HMAC-SHA256 chained over `AWS4`+secret, date, region, service, `aws4_request`.
4. `Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<scope>, SignedHeaders=..., Signature=...`.

tests/telephony/recording/test_s3_store.py checks the header equals botocore's for the same request.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    region: str
    service: str = "s3"

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials({self.access_key_id!r}, region={self.region!r}, service={self.service!r})"


def uri_encode(text: str, *, keep_slash: bool) -> str:
    """AWS's UriEncode: every byte but A-Z a-z 0-9 - _ . ~ (and `/` in a path) as %XX, uppercase."""
    return quote(text, safe="/~" if keep_slash else "~")


def canonical_query(query: str) -> str:
    """The query's pairs, decoded then encoded AWS's way, sorted by name then value (`name=` if no value)."""
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        pairs.append((uri_encode(unquote(name), keep_slash=False), uri_encode(unquote(value), keep_slash=False)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_request(method: str, url: str, headers: Mapping[str, str], payload_sha256: str) -> tuple[str, str]:
    """(canonical request, signed header names) of a request whose `headers` are all signed."""
    parts = urlsplit(url)
    path = uri_encode(unquote(parts.path or "/"), keep_slash=True)
    lines = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    names = sorted(lines)
    canonical_headers = "".join(f"{name}:{lines[name]}\n" for name in names)
    signed = ";".join(names)
    request = "\n".join([method.upper(), path, canonical_query(parts.query), canonical_headers, signed, payload_sha256])
    return request, signed


def signing_key(credentials: Credentials, date: str) -> bytes:
    key = ("AWS4" + credentials.secret_access_key).encode()
    for part in (date, credentials.region, credentials.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    payload_sha256: str,
    credentials: Credentials,
    now: datetime,
) -> dict[str, str]:
    """`headers` plus Host, X-Amz-Date, X-Amz-Content-SHA256 and Authorization, every one of them signed.
    `now` is in UTC; `url` is as it will be sent (path and query already percent-encoded)."""
    timestamp = now.strftime("%Y%m%dT%H%M%SZ")
    date = timestamp[:8]
    signed_headers = {
        "Host": urlsplit(url).netloc,
        **headers,
        "X-Amz-Date": timestamp,
        "X-Amz-Content-SHA256": payload_sha256,
    }
    request, names = canonical_request(method, url, signed_headers, payload_sha256)
    scope = f"{date}/{credentials.region}/{credentials.service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, timestamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    signature = hmac.new(signing_key(credentials, date), string_to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, SignedHeaders={names}, Signature={signature}"
    )
    return {**signed_headers, "Authorization": authorization}
