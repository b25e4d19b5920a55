"""`RecordingStore` on an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...), over its REST API with httpx.

Layout, GridFS's in objects: one object per chunk, `<prefix><call_sid>/chunk-<n:06d>`, with GridFS's
chunk size and numbering (chunk 0, holding the WAV header, is written last), and a manifest,
`<prefix><call_sid>/recording.json`, with the files document's fields (written after chunk 0: a
recording is visible once its manifest is). `read` maps a byte range to chunk objects and GETs them
one at a time, so a recording is never whole in memory; a chunk the writer dropped (404) reads as
silence, as in GridFS. URLs are path-style (`{endpoint}/{bucket}/{key}`), which every S3-compatible
server accepts; requests are signed with SigV4 (sigv4.py), each bounded by `timeout_s`.

Failures raise `S3Error`, a `DatabaseError` (as GridFsRecordings raises), so the writer counts a
failed chunk as dropped and the API answers as for a database outage.

Retention: S3 has no per-object TTL. Every object is tagged `switchboard-retention-days=<n>` (the
call record's retention, from `expires_at`), and the operator sets one bucket lifecycle rule per
value in use (`SWITCHBOARD_CALL_RETENTION_DAYS` and each agent's `retention_days`), e.g. for 90:

    {"Rules": [{"ID": "switchboard-recordings-90d", "Status": "Enabled",
                "Filter": {"And": {"Prefix": "recordings/",
                                   "Tags": [{"Key": "switchboard-retention-days", "Value": "90"}]}},
                "Expiration": {"Days": 90}}]}

(`aws s3api put-bucket-lifecycle-configuration --bucket B --lifecycle-configuration file://rules.json`,
or `mc ilm rule add --tags "switchboard-retention-days=90" --expire-days 90 alias/B/recordings/`).
Without a rule for a value, those recordings are kept until deleted (`delete`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from db.errors import DatabaseError
from db.recordings import (
    CHUNK_BYTES,
    MAX_RECORDING_BYTES,
    RecordingInfo,
    check_chunk,
    chunk_spans,
    files_document,
    recording_info,
)
from telephony.recording.sigv4 import EMPTY_SHA256, Credentials, sign
from telephony.settings.data import RecordingStoreSettings

RETENTION_TAG = "switchboard-retention-days"
"""The object tag a bucket lifecycle rule matches to expire recordings (see the module docstring)."""
MANIFEST_NAME = "recording.json"
MAX_MANIFEST_BYTES = 64 * 1024
"""Bound on a manifest read back (ours are a few hundred bytes)."""
MAX_LIST_BYTES = 4 * 1024 * 1024
"""Bound on one list response (1000 keys of ours are about 300 KB)."""
LIST_PAGE_KEYS = 1000
"""Keys asked for per list request (S3's maximum)."""
MAX_LIST_PAGES = math.ceil((MAX_RECORDING_BYTES // CHUNK_BYTES + 2) / LIST_PAGE_KEYS) + 1
"""Bound on list requests of one `delete`: a longest recording's chunks and manifest, plus one."""
DELETE_CONCURRENCY = 8
"""Object deletes of one `delete` in flight at once."""


class S3Error(DatabaseError):
    """The bucket failed: unreachable, timed out, refused (status and S3's error code in the message)."""


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where recordings go and how to reach it."""

    endpoint: str
    """`https://s3.us-east-1.amazonaws.com`, `http://minio:9000`..."""
    bucket: str
    credentials: Credentials
    prefix: str = "recordings/"
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: RecordingStoreSettings) -> S3Location:
        """The bucket `SWITCHBOARD_S3_*` name; ValueError naming the variables that are unset."""
        missing = settings.s3_missing()
        if missing or not (settings.s3_endpoint and settings.s3_bucket and settings.s3_access_key_id):
            raise ValueError(f"SWITCHBOARD_RECORDING_STORE=s3 needs {', '.join(missing)} set")
        secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else ""
        return cls(
            endpoint=settings.s3_endpoint,
            bucket=settings.s3_bucket,
            credentials=Credentials(settings.s3_access_key_id, secret, settings.s3_region),
            prefix=settings.s3_prefix,
            timeout_s=settings.s3_timeout_seconds,
        )


def _retention_days(expires_at: datetime) -> int:
    """Whole days from now to `expires_at` (rounded up, at least 1): the call's retention."""
    seconds = (expires_at - datetime.now(UTC)).total_seconds()
    return max(1, math.ceil(seconds / 86400))


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class S3Recordings:
    """`RecordingStore` on an S3-compatible bucket; `aclose` closes its HTTP client (unless given one)."""

    def __init__(self, location: S3Location, client: httpx.AsyncClient | None = None) -> None:
        self._location = location
        self._base = f"{location.endpoint.rstrip('/')}/{quote(location.bucket, safe='')}"
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=location.timeout_s)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- keys and requests --------------------------------------------------------------------

    def _key(self, call_sid: str, name: str) -> str:
        return f"{self._location.prefix}{call_sid}/{name}"

    def _chunk_key(self, call_sid: str, n: int) -> str:
        return self._key(call_sid, f"chunk-{n:06d}")

    async def _send(
        self,
        method: str,
        key: str | None,
        *,
        query: str = "",
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        limit: int = CHUNK_BYTES,
    ) -> tuple[int, bytes]:
        """(status, body of at most `limit` bytes) of one signed request; 2xx, 404 and 416 are
        returned, other statuses raise `S3Error`. The whole exchange is bounded by `timeout_s`."""
        url = self._base + ("/" + quote(key, safe="/~") if key is not None else "") + (f"?{query}" if query else "")
        payload_sha256 = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = sign(method, url, headers or {}, payload_sha256, self._location.credentials, datetime.now(UTC))
        try:
            async with asyncio.timeout(self._location.timeout_s):
                request = self._client.build_request(method, url, headers=signed, content=body or None)
                response = await self._client.send(request, stream=True)
                try:
                    data = bytearray()
                    async for piece in response.aiter_bytes():
                        data += piece
                        if len(data) > limit:
                            raise S3Error(f"{method} {key}: response over {limit} bytes")
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise S3Error(f"{method} {key}: no answer within {self._location.timeout_s}s") from exc
        except httpx.HTTPError as exc:
            raise S3Error(f"{method} {key}: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (404, 416) or 200 <= response.status_code < 300:
            return response.status_code, bytes(data)
        raise S3Error(f"{method} {key}: HTTP {response.status_code} {_error_code(bytes(data))}".rstrip())

    async def _put(self, key: str, data: bytes, content_type: str, expires_at: datetime) -> None:
        tagging = f"{RETENTION_TAG}={_retention_days(expires_at)}"
        headers = {"Content-Type": content_type, "x-amz-tagging": tagging}
        status, _ = await self._send("PUT", key, body=bytes(data), headers=headers, limit=MAX_MANIFEST_BYTES)
        if status == 404:
            raise S3Error(f"PUT {key}: HTTP 404 (no bucket {self._location.bucket!r}?)")

    # -- RecordingStore -------------------------------------------------------------------------

    async def put_chunk(self, call_sid: str, n: int, data: bytes, *, expires_at: datetime) -> None:
        check_chunk(n, data)
        await self._put(self._chunk_key(call_sid, n), data, "application/octet-stream", expires_at)

    async def finish(
        self,
        call_sid: str,
        first_chunk: bytes,
        *,
        length: int,
        chunk_size: int,
        expires_at: datetime,
        metadata: Mapping[str, Any],
    ) -> None:
        manifest = files_document(
            call_sid, length=length, chunk_size=chunk_size, expires_at=expires_at, metadata=metadata
        )
        await self.put_chunk(call_sid, 0, first_chunk, expires_at=expires_at)
        body = json.dumps(manifest, separators=(",", ":"), default=datetime.isoformat).encode()
        await self._put(self._key(call_sid, MANIFEST_NAME), body, "application/json", expires_at)

    async def info(self, call_sid: str) -> RecordingInfo | None:
        status, body = await self._send("GET", self._key(call_sid, MANIFEST_NAME), limit=MAX_MANIFEST_BYTES)
        if status == 404:
            return None
        try:
            return recording_info(call_sid, json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise S3Error(f"the manifest of {call_sid} is not one of ours: {exc}") from exc

    async def read(self, info: RecordingInfo, start: int, end: int) -> AsyncIterator[bytes]:
        """One chunk object's range in memory at a time; a chunk the writer dropped reads as zeros (silence)."""
        for n, low, high in chunk_spans(info, start, end):
            key = self._chunk_key(info.call_sid, n)
            status, data = await self._send("GET", key, headers={"Range": f"bytes={low}-{high - 1}"})
            if status == 200:  # a server that ignores Range sends the whole chunk
                data = data[low:high]
            elif status != 206:  # 404 (dropped) or 416 (stored short): silence
                data = b""
            yield data[: high - low].ljust(high - low, b"\0")

    async def chunk(self, call_sid: str, n: int) -> bytes | None:
        """Chunk `n` of a recording as stored, or None (never stored, or lost)."""
        status, body = await self._send("GET", self._chunk_key(call_sid, n))
        return None if status == 404 else body

    async def delete(self, call_sid: str) -> bool:
        keys = await self._keys(self._key(call_sid, ""))
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def remove(key: str) -> None:
            async with limit:
                await self._send("DELETE", key)

        await asyncio.gather(*(remove(key) for key in keys))
        return bool(keys)

    async def _keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (ListObjectsV2, at most `MAX_LIST_PAGES` pages)."""
        keys: list[str] = []
        token: str | None = None
        for _ in range(MAX_LIST_PAGES):
            query = f"list-type=2&max-keys={LIST_PAGE_KEYS}&prefix={quote(prefix, safe='~')}"
            if token is not None:
                query += f"&continuation-token={quote(token, safe='~')}"
            status, body = await self._send("GET", None, query=query, limit=MAX_LIST_BYTES)
            if status == 404:
                raise S3Error(f"list {prefix}: HTTP 404 (no bucket {self._location.bucket!r}?)")
            try:
                root = ElementTree.fromstring(body)
            except ElementTree.ParseError as exc:
                raise S3Error(f"list {prefix}: not a ListBucketResult: {exc}") from exc
            fields = {_local_name(child.tag): child for child in root}
            keys += [
                key.text
                for contents in root
                if _local_name(contents.tag) == "Contents"
                for key in contents
                if _local_name(key.tag) == "Key" and key.text
            ]
            truncated = fields.get("IsTruncated")
            next_token = fields.get("NextContinuationToken")
            if truncated is None or truncated.text != "true" or next_token is None or not next_token.text:
                return keys
            token = next_token.text
        raise S3Error(f"list {prefix}: more than {MAX_LIST_PAGES} pages of keys")


def _error_code(body: bytes) -> str:
    """S3's `<Error><Code>` of an error response, if it has one."""
    try:
        root = ElementTree.fromstring(body[:MAX_MANIFEST_BYTES])
    except ElementTree.ParseError:
        return ""
    code = next((child.text for child in root if _local_name(child.tag) == "Code"), None)
    return code or ""
