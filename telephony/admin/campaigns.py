"""`/api/campaigns` (create, contacts upload, start/pause/resume/cancel, live stats) and
`/api/do-not-call`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from db import Campaigns, Contacts, Database, DoNotCall, TransitionRefused
from telephony.admin.common import MAX_PAGE, Page, Problem, agent_exists, database_of, field_error, not_found, pod_of
from telephony.campaigns.campaign import E164_PATTERN, CampaignSpec
from telephony.campaigns.contacts_upload import UploadError, parse_upload

router = APIRouter()
Db = Annotated[Database, Depends(database_of)]
CampaignId = Annotated[str, Path(pattern=r"^cmp_[0-9a-f]{16}$")]
UPLOAD_BATCH = 1000
"""Contacts written to MongoDB per insert."""


class Stats(BaseModel):
    contacts: int
    pending: int
    leased: int
    dialing: int
    in_call: int
    done: int
    failed: int
    skipped: int
    cancelled: int
    attempts: int
    """Calls placed so far (all attempts)."""
    busy_slots: int
    """Calls in progress now (concurrency slots held)."""


class CampaignOut(BaseModel):
    id: str
    status: Literal["draft", "running", "paused", "cancelled", "completed"]
    spec: CampaignSpec
    created_at: datetime
    updated_at: datetime
    stats: Stats | None = None


class RowErrorOut(BaseModel):
    row: int
    field: str
    message: str


class UploadReport(BaseModel):
    received: int
    inserted: int
    rejected: int
    duplicates: int
    """Numbers already in the campaign (not stored twice)."""
    errors: list[RowErrorOut]
    """Per-row problems (the first 1000)."""


class NumbersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    numbers: list[Annotated[str, Field(pattern=E164_PATTERN)]] = Field(min_length=1, max_length=1000)
    reason: str = Field("", max_length=200)


class DoNotCallEntry(BaseModel):
    number: str
    reason: str = ""
    added_at: datetime | None = None


def _out(document: dict[str, Any], stats: Stats | None = None) -> CampaignOut:
    return CampaignOut(
        id=document["_id"],
        status=document["status"],
        spec=CampaignSpec.model_validate(document["spec"]),
        created_at=document["created_at"],
        updated_at=document["updated_at"],
        stats=stats,
    )


async def _stats(request: Request, db: Database, document: dict[str, Any]) -> Stats:
    counts = await Contacts(db).counts(document["_id"])
    busy = await Campaigns(db).busy_slots(document["_id"], now=pod_of(request).clock())
    return Stats(contacts=document.get("contacts", 0), busy_slots=busy, **counts)


@router.post("/campaigns", status_code=201, response_model=CampaignOut, tags=["campaigns"])
async def create_campaign(spec: CampaignSpec, db: Db, request: Request) -> CampaignOut:
    if not await agent_exists(request, db, spec.agent_id):
        field_error(["body", "agent_id"], f"no agent {spec.agent_id!r}")
    document = await Campaigns(db).create(spec.model_dump(mode="json"), max_concurrent_calls=spec.max_concurrent_calls)
    return _out(document)


@router.get("/campaigns", response_model=Page[CampaignOut], tags=["campaigns"])
async def list_campaigns(
    db: Db,
    after: Annotated[str | None, Query(pattern=r"^cmp_[0-9a-f]{16}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[CampaignOut]:
    documents = await Campaigns(db).page(after=after, limit=limit)
    return Page(items=[_out(d) for d in documents], next=documents[-1]["_id"] if len(documents) == limit else None)


@router.get(
    "/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"], responses={404: {"model": Problem}}
)
async def get_campaign(campaign_id: CampaignId, db: Db, request: Request) -> CampaignOut:
    """The campaign with live stats (contacts per state, calls placed, calls in progress)."""
    document = await Campaigns(db).get(campaign_id)
    if document is None:
        not_found(f"campaign {campaign_id}")
    return _out(document, await _stats(request, db, document))


@router.post(
    "/campaigns/{campaign_id}/contacts",
    response_model=UploadReport,
    tags=["campaigns"],
    responses={404: {"model": Problem}, 409: {"model": Problem}, 415: {"model": Problem}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "phone": {"type": "string"},
                                "timezone": {"type": "string"},
                                "variables": {"type": "object", "additionalProperties": {"type": "string"}},
                            },
                            "required": ["phone"],
                        },
                    }
                },
            },
        }
    },
)
async def upload_contacts(campaign_id: CampaignId, db: Db, request: Request) -> UploadReport:
    """Add contacts from CSV (`phone`, `timezone`, other columns are variables) or JSON; bad rows
    are reported by number and the rest are stored."""
    campaigns = Campaigns(db)
    document = await campaigns.get(campaign_id)
    if document is None:
        not_found(f"campaign {campaign_id}")
    if document["status"] in ("cancelled", "completed"):
        raise HTTPException(409, f"the campaign is {document['status']}")
    settings = pod_of(request).settings
    body = await request.body()
    try:
        # up to 8 MiB of CSV/JSON: parsed on a worker thread so the live calls on this loop do not stutter
        parsed = await asyncio.to_thread(
            parse_upload, body, request.headers.get("content-type", ""), max_rows=settings.campaign_upload_max_rows
        )
    except UploadError as exc:
        status = 415 if "send text/csv" in str(exc) else 422
        field_error(["body"], str(exc), status=status)
    contacts = Contacts(db)
    inserted = duplicates = 0
    now = pod_of(request).clock()
    for start in range(0, len(parsed.contacts), UPLOAD_BATCH):
        batch = parsed.contacts[start : start + UPLOAD_BATCH]
        report = await contacts.insert(campaign_id, batch, now=now)
        inserted += report.inserted
        duplicates += len(report.duplicates)
    await campaigns.add_contacts(campaign_id, inserted)
    return UploadReport(
        received=len(parsed.contacts) + parsed.rejected,
        inserted=inserted,
        rejected=parsed.rejected,
        duplicates=duplicates,
        errors=[RowErrorOut(row=e.row, field=e.field, message=e.message) for e in parsed.errors],
    )


def _transition(action: str) -> Any:
    async def take(campaign_id: CampaignId, db: Db, request: Request) -> CampaignOut:
        try:
            document = await Campaigns(db).transition(campaign_id, action)
        except TransitionRefused as exc:
            raise HTTPException(409, str(exc)) from None
        if document is None:
            not_found(f"campaign {campaign_id}")
        if action == "cancel":
            await Contacts(db).cancel_open(campaign_id)
        return _out(document, await _stats(request, db, document))

    take.__name__ = f"{action}_campaign"
    return take


for _action in ("start", "pause", "resume", "cancel"):
    router.add_api_route(
        f"/campaigns/{{campaign_id}}/{_action}",
        _transition(_action),
        methods=["POST"],
        response_model=CampaignOut,
        tags=["campaigns"],
        summary=f"{_action.capitalize()} the campaign",
        responses={404: {"model": Problem}, 409: {"model": Problem}},
    )


@router.get("/do-not-call", response_model=Page[DoNotCallEntry], tags=["do-not-call"])
async def list_do_not_call(
    db: Db,
    after: Annotated[str | None, Query(pattern=E164_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Page[DoNotCallEntry]:
    rows = await DoNotCall(db).page(after=after, limit=limit)
    items = [DoNotCallEntry(number=r["_id"], reason=r.get("reason", ""), added_at=r.get("added_at")) for r in rows]
    return Page(items=items, next=rows[-1]["_id"] if len(rows) == limit else None)


@router.post("/do-not-call", tags=["do-not-call"])
async def add_do_not_call(body: NumbersIn, db: Db) -> dict[str, int]:
    """No campaign dials these numbers from now on (checked before every attempt)."""
    return {"added": await DoNotCall(db).add(body.numbers, reason=body.reason)}


@router.delete("/do-not-call/{number}", status_code=204, tags=["do-not-call"], responses={404: {"model": Problem}})
async def remove_do_not_call(number: Annotated[str, Path(pattern=E164_PATTERN)], db: Db) -> Response:
    if not await DoNotCall(db).remove(number):
        not_found(f"number {number}")
    return Response(status_code=204)
