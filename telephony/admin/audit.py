"""`/api/audit`: which API key changed what, and when.

`ApiKeyAuth` hands every write that reached a route (any method but GET/HEAD, whatever its status)
to `record`: the key's id (a digest prefix, never the key), method, path, resource and its id, the
names of the top-level fields sent (never their values: a tool declaration may carry secrets), the
status. Stored after the response has gone; a database that refuses it is logged and counted, and
never fails the write it describes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from db import AuditLog, Database, DatabaseError
from telephony.admin.common import MAX_PAGE, Page, database_of, field_error

if TYPE_CHECKING:
    from telephony.pod import Pod

log = logging.getLogger("switchboard.api.audit")
router = APIRouter(tags=["audit"])
Db = Annotated[Database, Depends(database_of)]
MAX_FIELDS_PARSED = 64 * 1024
"""Bodies larger than this are not parsed for field names (an upload: its size is recorded), so the
audit never parses a big body on the event loop (agent configs and tool declarations are far smaller)."""


@dataclass(frozen=True)
class Write:
    """One admin write as the auth middleware saw it."""

    key_id: str
    method: str
    path: str
    body: bytes
    status: int


class AuditEntry(BaseModel):
    id: str
    at: datetime
    key_id: str
    """The first 12 hex digits of the key's SHA-256: names the key without revealing it."""
    method: str
    path: str
    resource: str
    resource_id: str
    fields: list[str]
    """Top-level field names of the JSON body (never their values)."""
    status: int


def entry_of(write: Write) -> dict[str, Any]:
    segments = [s for s in write.path.split("/") if s]
    body = _json_object(write.body)
    resource_id = segments[1] if len(segments) > 1 else str(body.get("id") or body.get("name") or "")
    return {
        "key_id": write.key_id,
        "method": write.method,
        "path": write.path,
        "resource": segments[0] if segments else "",
        "resource_id": resource_id,
        "fields": sorted(body) if body else ([f"<{len(write.body)} bytes>"] if write.body else []),
        "status": write.status,
    }


def _json_object(body: bytes) -> dict[str, Any]:
    if not body or len(body) > MAX_FIELDS_PARSED:
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


async def record(pod: Pod, write: Write) -> None:
    """Store one write; a failure is logged (never the body) and does not reach the caller."""
    if pod.database is None:
        return
    try:
        await AuditLog(pod.database, pod.settings.audit_retention_days).add(entry_of(write))
    except (DatabaseError, ValueError) as exc:
        pod.metrics.audit_writes_failed.inc()
        log.error(
            "could not store the audit entry of an admin write",
            extra={"method": write.method, "path": write.path[:200], "key_id": write.key_id, "error": str(exc)[:200]},
        )


def _cursor(entry: dict[str, Any]) -> str:
    raw = f"{entry['at'].isoformat()}|{entry['id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _position(cursor: str) -> tuple[datetime, str]:
    try:
        at, _, last = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
        return datetime.fromisoformat(at), last
    except (binascii.Error, UnicodeDecodeError, ValueError):
        field_error(["query", "cursor"], "not a cursor this API returned")


@router.get("/audit", response_model=Page[AuditEntry])
async def list_audit(
    db: Db,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[AuditEntry]:
    """Admin writes, newest first (needs `audit:read`); pass `next` back as `cursor`."""
    before = _position(cursor) if cursor else None
    try:
        entries = await AuditLog(db).page(before=before, limit=limit)
    except ValueError:
        field_error(["query", "cursor"], "not a cursor this API returned")
    items = [AuditEntry.model_validate(e) for e in entries]
    return Page(items=items, next=_cursor(entries[-1]) if len(entries) == limit else None)
