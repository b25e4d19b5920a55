"""A FAKE S3 server for tests: a Starlette app holding objects in memory, served on a loopback port.

Not S3: it answers the few requests the recording store makes (path-style PUT, GET with one
`Range`, HEAD, DELETE, ListObjectsV2 by prefix) and checks only that each request carries a
well-formed SigV4 `Authorization` header for its access key and that a body matches its
`x-amz-content-sha256` (the signature itself is checked against botocore in the tests). `fail`
makes every request a 503, `delay_s` slows every answer, `requests` logs (method, key).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agents.loopback import LoopbackServer

AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/[a-z0-9-]+/s3/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=[0-9a-f]{64}$"
)


@dataclass
class StoredObject:
    data: bytes
    content_type: str
    tags: str


@dataclass
class FakeS3:
    bucket: str = "recordings-test"
    access_key_id: str = "AKIDFAKE"
    objects: dict[str, StoredObject] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail: bool = False
    delay_s: float = 0.0
    list_page_keys: int = 1000
    """Keys per list page (small in a test, to exercise continuation)."""

    def app(self) -> Starlette:
        methods = ["GET", "PUT", "HEAD", "DELETE"]
        routes = [
            Route("/{bucket}", self._handle, methods=["GET"]),
            Route("/{bucket}/{key:path}", self._handle, methods=methods),
        ]
        return Starlette(routes=routes)

    def server(self) -> LoopbackServer:
        return LoopbackServer(self.app())

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))

    async def _handle(self, request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params.get("key", "")
        self.requests.append((request.method, key))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            return _error(503, "SlowDown")
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if bucket != self.bucket:
            return _error(404, "NoSuchBucket")
        if not key:
            return self._list(request) if request.method == "GET" else _error(405, "MethodNotAllowed")
        if request.method == "PUT":
            body = await request.body()
            if hashlib.sha256(body).hexdigest() != request.headers.get("x-amz-content-sha256"):
                return _error(400, "XAmzContentSHA256Mismatch")
            tags = request.headers.get("x-amz-tagging", "")
            self.objects[key] = StoredObject(body, request.headers.get("content-type", ""), tags)
            return Response(status_code=200)
        stored = self.objects.get(key)
        if request.method == "DELETE":
            self.objects.pop(key, None)
            return Response(status_code=204)
        if stored is None:
            return _error(404, "NoSuchKey")
        if request.method == "HEAD":
            return Response(headers={"Content-Length": str(len(stored.data))}, media_type=stored.content_type)
        return _ranged(stored, request.headers.get("range"))

    def _refusal(self, request: Request) -> Response | None:
        match = AUTHORIZATION.match(request.headers.get("authorization", ""))
        if match is None:
            return _error(403, "AccessDenied")
        if match["key"] != self.access_key_id:
            return _error(403, "InvalidAccessKeyId")
        signed = match["signed"].split(";")
        if not {"host", "x-amz-date", "x-amz-content-sha256"} <= set(signed) or signed != sorted(signed):
            return _error(403, "AccessDenied")
        return None

    def _list(self, request: Request) -> Response:
        if request.query_params.get("list-type") != "2":
            return _error(400, "InvalidArgument")
        keys = self.keys(request.query_params.get("prefix", ""))
        after = request.query_params.get("continuation-token")
        if after is not None:
            keys = [key for key in keys if key > after]
        page_size = min(int(request.query_params.get("max-keys", "1000")), self.list_page_keys)
        page, truncated = keys[:page_size], len(keys) > page_size
        contents = "".join(
            f"<Contents><Key>{escape(key)}</Key><Size>{len(self.objects[key].data)}</Size></Contents>" for key in page
        )
        token = f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>" if truncated else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{self.bucket}</Name><KeyCount>{len(page)}</KeyCount>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{token}{contents}</ListBucketResult>"
        )
        return Response(body, media_type="application/xml")


def _ranged(stored: StoredObject, header: str | None) -> Response:
    data = stored.data
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", header or "")
    if match is None:
        return Response(data, media_type=stored.content_type)
    start = int(match[1])
    end = min(int(match[2]) + 1, len(data)) if match[2] else len(data)
    if start >= len(data) or end <= start:
        return _error(416, "InvalidRange")
    headers = {"Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}
    return Response(data[start:end], status_code=206, headers=headers, media_type=stored.content_type)


def _error(status: int, code: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>fake</Message></Error>'
    return Response(body, status_code=status, media_type="application/xml")
