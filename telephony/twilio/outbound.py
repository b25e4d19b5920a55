"""Outbound calls: placing one through Twilio's REST API, and the signed callbacks that follow it.

`place_call` asks Twilio (`calls.create`) to dial with three URLs on this service, each carrying
the call's reference (agent, version, campaign, contact, attempt) in its query:

- `Url` -> `POST /twilio/outbound`: when the callee answers, Twilio fetches the TwiML here. It is
  the stream TwiML of an inbound call (`<Connect><Stream>` with a call token), minted here because
  the token binds the call sid, which exists only once Twilio has created the call. The answer goes
  through the pod's admission like an inbound call, and the media stream counts against
  `max_concurrent_calls` the same way.
- `StatusCallback` -> `POST /twilio/call-status`: the final status (completed, busy, no-answer,
  failed, canceled) updates the call record and settles the campaign contact's attempt.
- `AsyncAmdStatusCallback` -> `POST /twilio/amd-status`: asynchronous answering-machine detection
  (`DetectMessageEnd`); on a machine the call follows its voicemail policy: hang up, or leave
  the message after the beep.

All three are signed by Twilio and checked like the inbound webhooks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from db import CallRecords, Campaigns, Contacts
from db.agent_configs import AGENT_ID_PATTERN
from telephony.campaigns.campaign import CampaignSpec, Voicemail
from telephony.logs import call_sid_var
from telephony.twilio import twiml
from telephony.twilio.rest import CreatedCall, TwilioApiError
from telephony.twilio.webhooks import VoiceWebhook, _signed_model, replayed, stream_to_agent, xml

if TYPE_CHECKING:
    from telephony.pod import Pod

log = logging.getLogger("switchboard.outbound")

OUTBOUND_ANSWER_PATH = "/twilio/outbound"
CALL_STATUS_PATH = "/twilio/call-status"
AMD_STATUS_PATH = "/twilio/amd-status"
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
MACHINE = frozenset({"machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})
_SID = r"^[A-Za-z0-9]{2,64}$"


class NotConfigured(Exception):
    """Outbound calls need `twilio_account_sid` and `public_url` (the message says which is missing)."""


class CallRef(BaseModel):
    """What a callback URL's query says about the call it reports on."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    agent: str = Field(pattern=AGENT_ID_PATTERN)
    v: int | None = Field(None, ge=1)
    campaign: str | None = Field(None, pattern=r"^cmp_[0-9a-f]{16}$")
    contact: str | None = Field(None, pattern=r"^[0-9a-f]{24}$")
    attempt: int | None = Field(None, ge=1, le=100)

    def query(self) -> str:
        return urlencode({k: v for k, v in self.model_dump().items() if v is not None})


class StatusWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    CallSid: str = Field(pattern=_SID)
    AccountSid: str = Field(pattern=_SID)
    CallStatus: str = Field(max_length=32)
    CallDuration: int | None = Field(None, ge=0)


class AmdWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    CallSid: str = Field(pattern=_SID)
    AccountSid: str = Field(pattern=_SID)
    AnsweredBy: str = Field(max_length=32)


def _base_url(pod: Pod) -> str:
    if pod.settings.public_url is None:
        raise NotConfigured("outbound calls need SWITCHBOARD_PUBLIC_URL (where Twilio reaches this service)")
    return str(pod.settings.public_url).rstrip("/")


async def place_call(
    pod: Pod,
    *,
    to: str,
    from_: str,
    ref: CallRef,
    voicemail: Voicemail,
    max_call_seconds: float,
    variables: Mapping[str, Any] | None = None,
) -> CreatedCall:
    """Ask Twilio to dial `to`; the call record (agent, version, variables, voicemail policy) is
    stored as soon as Twilio has accepted it. Raises `TwilioApiError` or `NotConfigured`."""
    if pod.twilio is None:
        raise NotConfigured("outbound calls need SWITCHBOARD_TWILIO_ACCOUNT_SID")
    base, query = _base_url(pod), ref.query()
    settings = pod.settings
    created = await pod.twilio.create_call(
        to=to,
        from_=from_,
        url=f"{base}{OUTBOUND_ANSWER_PATH}?{query}",
        method="POST",
        status_callback=f"{base}{CALL_STATUS_PATH}?{query}",
        status_callback_event=["completed"],
        status_callback_method="POST",
        machine_detection="DetectMessageEnd",
        async_amd="true",
        async_amd_status_callback=f"{base}{AMD_STATUS_PATH}?{query}",
        async_amd_status_callback_method="POST",
        timeout=settings.outbound_ring_timeout_seconds,
        time_limit=int(max_call_seconds) + 60,
    )
    pod.metrics.outbound_calls.labels("placed").inc()
    if pod.database is not None:
        await CallRecords(pod.database).start(
            created.sid,
            agent_id=ref.agent,
            agent_version=ref.v,
            from_number=from_,
            to_number=to,
            direction="outbound-api",
            campaign_id=ref.campaign,
            contact_id=ref.contact,
            attempt=ref.attempt,
            status=created.status,
            variables=variables,
            voicemail=voicemail.model_dump(),
        )
    log.info("outbound call placed", extra={"call_sid": created.sid, "agent_id": ref.agent, "campaign": ref.campaign})
    return created


def _ref(request: Request) -> CallRef | Response:
    try:
        return CallRef.model_validate(dict(request.query_params))
    except ValidationError:
        return PlainTextResponse("invalid call reference", status_code=400)


async def outbound_answer(request: Request) -> Response:
    """The callee answered: stream the call to its agent (or hang up if this pod cannot take it)."""
    pod: Pod = request.app.state.pod
    call = await _signed_model(request, pod, VoiceWebhook)
    if isinstance(call, Response):
        return call
    ref = _ref(request)
    if isinstance(ref, Response):
        return ref
    call_sid_var.set(call.CallSid)
    if replayed(pod, call.CallSid):
        return xml(twiml.hang_up())
    if await pod.directory.resolve(agent_id=ref.agent) is None:
        pod.metrics.outbound_calls.labels("unknown_agent").inc()
        log.error("outbound call for an agent this pod does not serve", extra={"agent_id": ref.agent})
        return xml(twiml.hang_up())
    decision = pod.admission.admit(call.CallSid)
    if not decision.admitted:
        pod.metrics.outbound_refused.labels(decision.reason).inc()
        log.warning("outbound call answered but refused", extra={"reason": decision.reason})
        return xml(twiml.hang_up())
    pod.metrics.outbound_calls.labels("answered").inc()
    return stream_to_agent(request, pod, call, ref.agent, "outbound-api")


async def call_status(request: Request) -> Response:
    """Twilio's status callback: record the status; a final one settles the campaign attempt."""
    pod: Pod = request.app.state.pod
    status = await _signed_model(request, pod, StatusWebhook)
    if isinstance(status, Response):
        return status
    ref = _ref(request)
    if isinstance(ref, Response):
        return ref
    call_sid_var.set(status.CallSid)
    if pod.database is None:
        return Response(status_code=204)
    await CallRecords(pod.database).set_status(status.CallSid, status.CallStatus, duration_s=status.CallDuration)
    if status.CallStatus in FINAL_STATUSES and ref.campaign and ref.contact and ref.attempt:
        await settle_attempt(pod, ref, status.CallStatus, status.CallSid)
    return Response(status_code=204)


async def settle_attempt(pod: Pod, ref: CallRef, status: str, call_sid: str | None) -> None:
    """Apply a campaign call's final status to its contact and free its concurrency slot."""
    assert pod.database is not None and ref.campaign and ref.contact and ref.attempt
    campaigns = Campaigns(pod.database)
    campaign = await campaigns.get(ref.campaign)
    if campaign is None:
        return
    spec = CampaignSpec.model_validate(campaign["spec"])
    before = await Contacts(pod.database).finish_attempt(
        ref.contact,
        ref.attempt,
        status=status,
        call_sid=call_sid,
        now=pod.clock(),
        max_attempts=spec.max_attempts,
        retry_delay=spec.retry_delay_seconds,
    )
    if before is not None and before.get("slot"):
        await campaigns.release_slot(before["slot"], f"{ref.contact}:{ref.attempt}")
    pod.metrics.campaign_calls.labels(status).inc()


async def amd_status(request: Request) -> Response:
    """Answering-machine detection: on a machine, hang up or leave the voicemail message."""
    pod: Pod = request.app.state.pod
    amd = await _signed_model(request, pod, AmdWebhook)
    if isinstance(amd, Response):
        return amd
    call_sid_var.set(amd.CallSid)
    record = None
    if pod.database is not None:
        calls = CallRecords(pod.database)
        await calls.set_status(amd.CallSid, "in-progress", answered_by=amd.AnsweredBy)
        record = await calls.get(amd.CallSid)
    if amd.AnsweredBy not in MACHINE or pod.twilio is None:
        return Response(status_code=204)
    if (record or {}).get("status") in FINAL_STATUSES:  # a late result: the call has already ended
        log.info("answering-machine result after the call ended", extra={"answered_by": amd.AnsweredBy})
        return Response(status_code=204)
    voicemail = Voicemail.model_validate((record or {}).get("voicemail") or {})
    try:
        if voicemail.policy == "leave_message" and voicemail.message and amd.AnsweredBy != "fax":
            await pod.twilio.update_call(amd.CallSid, twiml=twiml.say_and_hang_up(voicemail.message))
            pod.metrics.outbound_calls.labels("voicemail_left").inc()
        else:
            await pod.twilio.update_call(amd.CallSid, status="completed")
            pod.metrics.outbound_calls.labels("machine_hung_up").inc()
    except TwilioApiError as exc:
        log.warning("could not act on answering-machine detection", extra={"error": str(exc)})
    return Response(status_code=204)
