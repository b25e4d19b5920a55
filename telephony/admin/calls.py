"""`/api/calls`: call records (list, detail) and placing a single outbound call."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from db import AgentConfigs, CallRecords, Database, DoNotCall
from db.agent_configs import AGENT_ID_PATTERN
from db.calls import MAX_POST_CALL_FILTERS
from telephony.admin.common import (
    MAX_PAGE,
    Page,
    Problem,
    agent_exists,
    database_of,
    field_error,
    tenant_agent_ids,
    visible_call,
)
from telephony.admin.post_call import PostCallBrief, PostCallOut, PostCallStatus, field_filters
from telephony.admin.recordings import RecordingSummary, recording_summary
from telephony.campaigns.campaign import E164_PATTERN, Voicemail
from telephony.campaigns.contacts_upload import MAX_VARIABLES, check_variables
from telephony.twilio.outbound import CallRef, NotConfigured, place_call
from telephony.twilio.rest import TwilioApiError

router = APIRouter(tags=["calls"])
Db = Annotated[Database, Depends(database_of)]


class CallSummary(BaseModel):
    model_config = ConfigDict(extra="ignore")

    call_sid: str
    agent_id: str
    agent_version: int | None = None
    """The stored config version that handled the call (null: an agent from the agents file)."""
    from_number: str
    to_number: str
    direction: str
    campaign_id: str | None = None
    contact_id: str | None = None
    attempt: int | None = None
    status: str | None = None
    answered_by: str | None = None
    duration_s: int | None = None
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str | None = None
    post_call: PostCallBrief | None = None
    """The post-call status and declared fields (null: the agent declares none)."""


class CallDetail(CallSummary):
    transcript: list[dict[str, Any]] = []
    tool_audit: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    """Per-turn latency in milliseconds (see agents/call_record.py `TurnMetrics`)."""
    dropped: dict[str, int] = {}
    """Entries not stored because a per-call bound was reached."""
    variables: dict[str, str] = {}
    post_call: PostCallOut | None = None  # type: ignore[assignment]
    """The post-call summary and declared fields, with its status (null: the agent declares none)."""
    recording: RecordingSummary | None = None
    """The call's recording (`GET /api/calls/{call_sid}/recording`), null when it has none."""


class OutboundCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(pattern=E164_PATTERN)
    from_number: str = Field(pattern=E164_PATTERN)
    """Your Twilio number the call comes from."""
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)
    """Values for `{name}` placeholders in the agent's system prompt."""
    voicemail: Voicemail = Field(default_factory=Voicemail)

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, str]) -> dict[str, str]:
        return check_variables(value)


class OutboundCallOut(BaseModel):
    call_sid: str
    status: str
    agent_id: str
    agent_version: int | None


def _cursor(record: dict[str, Any]) -> str:
    raw = f"{record['started_at'].isoformat()}|{record['call_sid']}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _position(cursor: str) -> tuple[datetime, str]:
    try:
        at, _, sid = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
        return datetime.fromisoformat(at), sid
    except (binascii.Error, UnicodeDecodeError, ValueError):
        field_error(["query", "cursor"], "not a cursor this API returned")


@router.get("/calls", response_model=Page[CallSummary])
async def list_calls(
    db: Db,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    agent_id: Annotated[str | None, Query(pattern=AGENT_ID_PATTERN)] = None,
    campaign_id: Annotated[str | None, Query(max_length=64)] = None,
    number: Annotated[str | None, Query(pattern=r"^\+?[0-9]{2,20}$")] = None,
    outcome: Annotated[str | None, Query(pattern=r"^[a-z_-]{1,40}$")] = None,
    started_from: Annotated[datetime | None, Query(alias="from")] = None,
    started_until: Annotated[datetime | None, Query(alias="until")] = None,
    field: Annotated[list[str] | None, Query(max_length=MAX_POST_CALL_FILTERS)] = None,
    post_call: PostCallStatus | None = None,
    *,
    request: Request,
) -> Page[CallSummary]:
    """Newest first; pass `next` back as `cursor` for the following page. Search by a number (either end), agent,
    outcome and a start window (`from` inclusive, `until` exclusive, ISO 8601). A tenant's key sees its agents' calls.
    Post-call: `post_call=done` (its status), `field=resolved:yes` (a declared field's value; repeatable, all must
    match)."""
    before = _position(cursor) if cursor else None
    records = await CallRecords(db).page(
        before=before,
        limit=limit,
        agent_id=agent_id,
        campaign_id=campaign_id,
        agent_ids=await tenant_agent_ids(request, db),
        number=number,
        outcome=outcome,
        started_from=_aware(started_from),
        started_until=_aware(started_until),
        post_call_status=post_call,
        post_call_fields=field_filters(field),
    )
    items = [CallSummary.model_validate(r) for r in records]
    return Page(items=items, next=_cursor(records[-1]) if len(records) == limit else None)


@router.get("/calls/{call_sid}", response_model=CallDetail, responses={404: {"model": Problem}})
async def get_call(
    call_sid: Annotated[str, Path(pattern=r"^[A-Za-z0-9]{2,64}$")], db: Db, request: Request
) -> CallDetail:
    detail = CallDetail.model_validate(await visible_call(request, db, call_sid))
    detail.recording = await recording_summary(request, db, call_sid)
    return detail


def _aware(at: datetime | None) -> datetime | None:
    """A naive time from a query string is UTC, as every stored time is."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


@router.post(
    "/calls",
    status_code=201,
    response_model=OutboundCallOut,
    responses={
        409: {"model": Problem, "description": "`to` is on the do-not-call list"},
        502: {"model": Problem, "description": "Twilio refused the call"},
        503: {"model": Problem},
    },
)
async def place_outbound_call(body: OutboundCallIn, db: Db, request: Request) -> OutboundCallOut:
    """Dial `to` now with the agent's current version (Twilio `calls.create`, with answering-machine detection).
    A number on the do-not-call list is refused (409), as the campaign dialer skips it."""
    if not await agent_exists(request, db, body.agent_id):
        field_error(["body", "agent_id"], f"no agent {body.agent_id!r}")
    if await DoNotCall(db).contains(body.to):
        field_error(["body", "to"], f"{body.to} is on the do-not-call list (DELETE /api/do-not-call/{body.to})", 409)
    stored = await AgentConfigs(db).current(body.agent_id)
    ref = CallRef(agent=body.agent_id, v=stored.version if stored else None)
    max_call = float((stored.config if stored else {}).get("max_call_seconds", 900.0))
    try:
        created = await place_call(
            request.app.state.pod,
            to=body.to,
            from_=body.from_number,
            ref=ref,
            voicemail=body.voicemail,
            max_call_seconds=max_call,
            variables=body.variables,
        )
    except NotConfigured as exc:
        raise HTTPException(503, str(exc)) from None
    except TwilioApiError as exc:
        if 400 <= exc.status < 500 and exc.status != 429:
            field_error(["body", "to"], f"Twilio refused the call: {exc.message} (code {exc.code})")
        raise HTTPException(502, f"Twilio is unavailable: {exc.message}") from None
    return OutboundCallOut(call_sid=created.sid, status=created.status, agent_id=body.agent_id, agent_version=ref.v)
