"""`/api/calls/live` and a live call's events, end and transfer: the operator console's view of calls
in progress on every pod.

The database is the one view of all pods (each writes its calls' records as they go), so the list
and the event stream read it. Ending or transferring acts through the call's port when the call is
live on this pod (as the agent's own end_call / transfer_call do), and otherwise through Twilio's
REST API, which reaches the call whichever pod carries it. Registered before `calls.router`, whose
`/calls/{call_sid}` would otherwise take `/calls/live` for a call sid.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from agents.port import Transfer
from db import Database, DatabaseError
from db.live_calls import LiveCallRecords
from telephony.admin.call_events import (
    Position,
    SlotStream,
    StreamSlots,
    all_sent,
    call_events,
    ended,
    parse_position,
)
from telephony.admin.common import Problem, database_of, field_error, pod_of, tenant_agent_ids, visible_call
from telephony.twilio import twiml
from telephony.twilio.rest import TwilioApiError
from telephony.twilio.transfer_numbers import TransferNumbers

log = logging.getLogger("switchboard.api")
router = APIRouter(tags=["live calls"])
Db = Annotated[Database, Depends(database_of)]
CallSid = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{2,64}$")]

MAX_LIVE_CALLS = 200
"""Bound on the calls one `GET /api/calls/live` returns."""
LONGEST_CALL_SECONDS = 4 * 3600
"""The longest call any agent may have (`AgentConfig.max_call_seconds`' upper bound)."""
LIVE_SLACK_SECONDS = 300
"""Beyond the longest call, how long an unfinished record still counts as live: older ones are a dead
pod's calls, never ended, and drop out of the list."""
ACTION_TIMEOUT_SECONDS = 10.0
"""Bound on ending or transferring a call live on this pod (the port waits for queued audio)."""
_ACTIONS: set[asyncio.Task[None]] = set()
"""Operator actions in flight (at most one per live call: the port ignores a second end)."""
ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such call (or another tenant's)"},
    409: {"model": Problem, "description": "The call has ended"},
    502: {"model": Problem, "description": "Twilio is unavailable (a call on another pod)"},
    503: {"model": Problem, "description": "A call on another pod, and no Twilio REST client here"},
    504: {"model": Problem, "description": "Still ending: its queued audio is playing out"},
}
OPERATOR_END = "ended by an operator"
OPERATOR_TRANSFER = "transferred by an operator"


class LiveCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    call_sid: str
    agent_id: str
    agent_version: int | None = None
    from_number: str
    to_number: str
    direction: str
    campaign_id: str | None = None
    status: str | None = None
    started_at: datetime
    pod: str | None = None
    """The pod carrying the call, where its record names one."""
    transcript_lines: int = 0
    """Transcript lines stored so far."""


class LiveCalls(BaseModel):
    items: list[LiveCall]
    limit: int
    """The bound this answer was cut to (`MAX_LIVE_CALLS` at most): as many items means there may be more."""


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(max_length=256)
    """An E.164 number or SIP URI on the transfer allow-list (`SWITCHBOARD_TRANSFER_ALLOWED_NUMBERS`)."""


class CallAction(BaseModel):
    call_sid: str
    action: str
    """`end` or `transfer`."""
    via: str
    """`pod`: through the call's session on this pod; `twilio`: through Twilio's REST API."""
    to: str | None = None


def _stream_slots(request: Request) -> StreamSlots:
    """This pod's open event streams (one bound per admin app, made on first use)."""
    slots = getattr(request.app.state, "event_streams", None)
    if slots is None:
        slots = request.app.state.event_streams = StreamSlots(pod_of(request).settings.live_event_streams)
    return slots  # type: ignore[no-any-return]


@router.get("/calls/live", response_model=LiveCalls)
async def live_calls(
    request: Request, db: Db, limit: Annotated[int, Query(ge=1, le=MAX_LIVE_CALLS)] = 100
) -> LiveCalls:
    """Calls in progress on every pod, newest first: started, not ended, and younger than the longest
    call an agent may have (plus slack). A key restricted to a tenant sees only its agents' calls."""
    since = datetime.now(UTC) - timedelta(seconds=LONGEST_CALL_SECONDS + LIVE_SLACK_SECONDS)
    agent_ids = await tenant_agent_ids(request, db)
    records = await LiveCallRecords(db).active(since=since, limit=limit, agent_ids=agent_ids)
    items = [_live(record) for record in records]
    return LiveCalls(items=items, limit=limit)


def _live(record: dict[str, Any]) -> LiveCall:
    counts = record.get("counts") or {}
    return LiveCall.model_validate({**record, "transcript_lines": int(counts.get("transcript", 0))})


@router.get(
    "/calls/{call_sid}/events",
    status_code=200,
    response_class=SlotStream,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"},
        204: {"description": "Resumed at or after the `end`: nothing more will come"},
        404: {"model": Problem},
        503: {"model": Problem, "description": "This pod has as many event streams open as it allows"},
    },
)
async def call_events_stream(
    call_sid: CallSid,
    request: Request,
    db: Db,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    after: Annotated[str | None, Query(max_length=32, description="`Last-Event-ID`, for clients without it")] = None,
) -> Response:
    """The call's transcript lines (`transcript`), barge-ins (`barge_in`) and tool calls (`tool`) as
    they are stored, then `end` with its outcome, after which the stream closes. Each event's id is a
    position: send it back as `Last-Event-ID` (or `after`) to go on from there; resuming after the
    `end` answers 204 (which tells a browser's EventSource to stop reconnecting)."""
    record = await visible_call(request, db, call_sid)
    start = Position()
    resume = last_event_id or after
    if resume:
        try:
            start = parse_position(resume)
        except ValueError as exc:
            where: list[str | int] = ["header", "last-event-id"] if last_event_id else ["query", "after"]
            field_error(where, str(exc))
        if all_sent(record, start):  # a browser reconnecting after `end`: 204 tells it to stop
            return Response(status_code=204)
    slots = _stream_slots(request)
    if not slots.take():
        raise HTTPException(503, f"this pod has {slots.limit} event streams open already; try again later")
    records = LiveCallRecords(db)

    async def progress(transcript: int, tool_audit: int) -> dict[str, Any] | None:
        return await records.progress(call_sid, transcript_from=transcript, tool_audit_from=tool_audit)

    pod = pod_of(request)
    events = call_events(
        progress, start, max_seconds=pod.settings.live_event_stream_seconds, stop=lambda: pod.drain.draining
    )
    return SlotStream(events, slots)


@router.post(
    "/calls/{call_sid}/end",
    response_model=CallAction,
    responses=ACTION_ERRORS,
)
async def end_call(call_sid: CallSid, request: Request, db: Db) -> CallAction:
    """Hang up a call in progress (its session on this pod, else Twilio). 409 once it has ended."""
    record = await visible_call(request, db, call_sid)
    _still_live(record)
    control = pod_of(request).calls.control(call_sid)
    if control is not None:
        await _on_pod(control.end(OPERATOR_END))
    else:
        await _through_twilio(request, call_sid, status="completed")
    await _noted(db, call_sid, "end")
    return CallAction(call_sid=call_sid, action="end", via="pod" if control is not None else "twilio")


@router.post(
    "/calls/{call_sid}/transfer",
    response_model=CallAction,
    responses=ACTION_ERRORS,
)
async def transfer_call(call_sid: CallSid, body: TransferIn, request: Request, db: Db) -> CallAction:
    """Hand the caller to `to` (on the transfer allow-list, else 422): `<Dial>` once the stream ends."""
    pod = pod_of(request)
    refusal = TransferNumbers(pod.settings.transfer_allowed_numbers).refusal(body.to)
    if refusal is not None:
        field_error(["body", "to"], refusal)
    record = await visible_call(request, db, call_sid)
    _still_live(record)
    control = pod.calls.control(call_sid)
    if control is not None:
        await _on_pod(control.transfer(body.to, OPERATOR_TRANSFER))
    else:
        await _through_twilio(request, call_sid, twiml=twiml.after_stream(Transfer(body.to)))
    await _noted(db, call_sid, "transfer", body.to)
    via = "pod" if control is not None else "twilio"
    return CallAction(call_sid=call_sid, action="transfer", via=via, to=body.to)


def _still_live(record: dict[str, Any]) -> None:
    if ended(record):
        how = record.get("outcome") or record.get("status")
        raise HTTPException(409, f"call {record['call_sid']} has ended ({how})")


async def _on_pod(action: Coroutine[Any, Any, None]) -> None:
    """Run the port's action to its end even if this request gives up waiting (a half-done hang-up
    would leave the call up with its outcome set)."""
    task = asyncio.create_task(action)
    _ACTIONS.add(task)
    task.add_done_callback(_ACTIONS.discard)
    try:
        await asyncio.wait_for(asyncio.shield(task), ACTION_TIMEOUT_SECONDS)
    except TimeoutError:
        raise HTTPException(504, "the call is still being ended (its queued audio is playing out)") from None


async def _noted(db: Database, call_sid: str, action: str, to: str | None = None) -> None:
    """Mark the record (the action is done: a database blip here is logged, not an error)."""
    try:
        await LiveCallRecords(db).note_operator(call_sid, action, to=to)
    except DatabaseError:
        log.warning("could not note the operator's action on the record", extra={"call_sid": call_sid})


async def _through_twilio(request: Request, call_sid: str, **params: Any) -> None:
    twilio = pod_of(request).twilio
    if twilio is None:
        raise HTTPException(503, "the call is on another pod and this pod has no Twilio client (twilio_account_sid)")
    try:
        await twilio.update_call(call_sid, **params)
    except TwilioApiError as exc:
        if 400 <= exc.status < 500 and exc.status != 429:
            detail = f"Twilio refused: {exc.message} (code {exc.code}); the call may have ended"
            raise HTTPException(409, detail) from None
        raise HTTPException(502, f"Twilio is unavailable: {exc.message}") from None
