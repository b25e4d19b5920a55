"""`GET /api/calls/{call_sid}/recording`: a call's recording as WAV, streamed, with HTTP Range.

The path's first segment is `calls`, so it needs `calls:read`; the call must be visible to the key
(`visible_call`: another tenant's call is a 404 like a missing one). The file is read one storage
chunk at a time, never whole, and byte ranges let an `<audio>` element seek.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from db import Database
from db.recordings import RECORDING_ID_PATTERN, GridFsRecordings, RecordingStore
from telephony.admin.common import Problem, database_of, not_found, pod_of, visible_call

router = APIRouter(tags=["calls"])
Db = Annotated[Database, Depends(database_of)]

MAX_RANGE_HEADER_CHARS = 200
"""A longer `Range` header is refused (416) before it is parsed."""
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


def recording_store(request: Request, database: Database) -> RecordingStore:
    """The pod's recording store (where its calls are recorded), else the database's GridFS bucket."""
    recorders = pod_of(request).recorders
    return recorders.store if recorders is not None else GridFsRecordings(database)


class RecordingSummary(BaseModel):
    """What the call detail says of a recording, so a console can show a player."""

    url: str
    """Relative to the API root: `/calls/{call_sid}/recording`."""
    duration_s: float
    bytes: int
    complete: bool
    """False when storage lost part of it (those stretches play as silence)."""
    content_type: str


async def recording_summary(request: Request, database: Database, call_sid: str) -> RecordingSummary | None:
    """The call's recording in brief, or None (call the route's `visible_call` first)."""
    info = await recording_store(request, database).info(call_sid)
    if info is None:
        return None
    return RecordingSummary(
        url=f"/calls/{call_sid}/recording",
        duration_s=info.duration_s,
        bytes=info.length,
        complete=info.complete,
        content_type=info.content_type,
    )


def byte_range(header: str | None, length: int) -> tuple[int, int] | None:
    """(first, last + 1) of a single `bytes=` range within `length`; None: no range (the whole file).
    HTTPException 416 for a malformed, multiple or unsatisfiable range."""
    if header is None or not header.strip().lower().startswith("bytes="):
        return None  # no range, or a unit we do not serve: the whole file (RFC 9110 lets us ignore it)
    match = _RANGE.match(header.strip().lower()) if len(header) <= MAX_RANGE_HEADER_CHARS else None
    first, last = (match.group(1), match.group(2)) if match else ("", "")
    if match is None or (not first and not last):
        raise _unsatisfiable(length)
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0:
            raise _unsatisfiable(length)
        return max(0, length - suffix), length
    start = int(first)
    end = length if not last else min(int(last) + 1, length)
    if start >= length or (last and int(last) < start):
        raise _unsatisfiable(length)
    return start, end


def _unsatisfiable(length: int) -> HTTPException:
    return HTTPException(416, "range not satisfiable", headers={"Content-Range": f"bytes */{length}"})


@router.get(
    "/calls/{call_sid}/recording",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "The whole recording (8 kHz stereo PCM16: caller left)"},
        206: {"content": {"audio/wav": {}}, "description": "The requested byte range"},
        404: {"model": Problem, "description": "No such call, or it has no recording"},
        416: {"model": Problem, "description": "The range is malformed or outside the file"},
    },
)
async def get_recording(
    request: Request,
    call_sid: Annotated[str, Path(pattern=RECORDING_ID_PATTERN)],
    db: Db,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> StreamingResponse:
    """The call's recording, as the caller heard it (caller left, agent right)."""
    await visible_call(request, db, call_sid)
    store = recording_store(request, db)
    info = await store.info(call_sid)
    if info is None:
        not_found(f"recording of call {call_sid}")
    span = byte_range(range_header, info.length)
    start, end = span if span is not None else (0, info.length)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        "Content-Disposition": f'inline; filename="{call_sid}.wav"',
        "Cache-Control": "private, no-store",
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.length}"
    return StreamingResponse(
        store.read(info, start, end), status_code=206 if span else 200, headers=headers, media_type=info.content_type
    )
