"""Twilio's HTTP webhooks: the inbound call (`/twilio/voice`) and the end of a stream
(`/twilio/connect-action`).

Both are signed by Twilio; an unsigned or forged request gets 403 before its form is even
validated. The voice webhook routes the called number to an agent, asks admission, and answers
with `<Connect><Stream>` carrying a short-lived call token.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from telephony.logs import call_sid_var
from telephony.outage import DatabaseUnavailable
from telephony.routing import Resolved
from telephony.twilio import call_token, twiml
from telephony.twilio.media_stream import TOKEN_PARAMETER
from telephony.twilio.signature import (
    SIGNATURE_SETTINGS_HEADER,
    public_base_url,
    public_request_url,
    signature_is_valid,
    websocket_url,
)
from telephony.twilio.transfer_numbers import checked_outcome

if TYPE_CHECKING:
    from telephony.pod import Pod

log = logging.getLogger(__name__)

VOICE_PATH = "/twilio/voice"
CONNECT_ACTION_PATH = "/twilio/connect-action"
MEDIA_PATH = "/twilio/media"

_SID = r"^[A-Za-z0-9]{2,64}$"


class _BodyTooLarge(Exception):
    pass


_Form = TypeVar("_Form", bound=BaseModel)


class VoiceWebhook(BaseModel):
    """The fields of Twilio's voice request we rely on (the rest are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    CallSid: str = Field(pattern=_SID)
    AccountSid: str = Field(pattern=_SID)
    From: str = Field(default="", max_length=64)
    To: str = Field(min_length=1, max_length=64)
    CallStatus: str = Field(default="ringing", max_length=32)
    Direction: str = Field(default="inbound", max_length=32)


class ConnectActionWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    CallSid: str = Field(pattern=_SID)
    AccountSid: str = Field(pattern=_SID)


def xml(body: str) -> Response:
    return Response(body, media_type="application/xml")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise _BodyTooLarge
    return bytes(body)


async def _signed_form(request: Request, pod: Pod) -> ImmutableMultiDict[str, str] | Response:
    """The request's form if Twilio signed it, else the error response to send."""
    try:
        body = await _read_body(request, pod.settings.webhook_max_body_bytes)
    except _BodyTooLarge:
        return PlainTextResponse("request body too large", status_code=413)
    except ClientDisconnect:
        return PlainTextResponse("client disconnected", status_code=400)
    params = ImmutableMultiDict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    url = public_request_url(request, pod.settings)
    valid = signature_is_valid(
        pod.settings.twilio_auth_token.get_secret_value(),
        url,
        params,
        request.headers.get("x-twilio-signature"),
        request.headers.get(SIGNATURE_SETTINGS_HEADER),
    )
    if not valid:
        pod.metrics.webhooks_forbidden.inc()
        log.warning("rejected webhook with a missing or invalid signature", extra={"url": url})
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    return params


async def _signed_model(request: Request, pod: Pod, model: type[_Form]) -> _Form | Response:
    """The request's form as `model` if Twilio signed it and it is complete, else the error."""
    form = await _signed_form(request, pod)
    if isinstance(form, Response):
        return form
    try:
        return model.model_validate(dict(form))
    except ValidationError as exc:
        fields = ", ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        return PlainTextResponse(f"invalid webhook parameters: {fields}", status_code=400)


async def voice(request: Request) -> Response:
    pod: Pod = request.app.state.pod
    settings = pod.settings
    call = await _signed_model(request, pod, VoiceWebhook)
    if isinstance(call, Response):
        return call
    call_sid_var.set(call.CallSid)
    if settings.twilio_account_sid and call.AccountSid != settings.twilio_account_sid:
        return PlainTextResponse("webhook from another account", status_code=403)
    if replayed(pod, call.CallSid):
        return xml(twiml.say_and_hang_up(settings.busy_message))

    resolved = await _route(pod, call.To)
    if isinstance(resolved, Response):
        return resolved
    if resolved is None:
        pod.metrics.calls_unknown_number.inc()
        log.info("call to a number with no agent", extra={"to": call.To})
        return xml(twiml.say_and_hang_up(settings.unknown_number_message))

    decision = pod.admission.admit(call.CallSid)
    if not decision.admitted:
        pod.metrics.call_refused(decision.reason)
        log.info("call refused", extra={"reason": decision.reason})
        if settings.busy_response == "reject":
            return xml(twiml.reject_busy())
        return xml(twiml.say_and_hang_up(settings.busy_message))

    pod.metrics.call_admitted()
    return stream_to_agent(request, pod, call, resolved.agent_id, call.Direction)


async def _route(pod: Pod, number: str) -> Resolved | Response | None:
    """The agent for the called number; during a database outage with no last good route for it,
    the fallback agent (`outage_agent`) or the polite outage message, never a 500."""
    try:
        return await pod.directory.resolve(number=number)
    except DatabaseUnavailable as exc:
        fallback = pod.settings.outage_agent
        resolved = await pod.directory.resolve(agent_id=fallback) if fallback is not None else None
        answer = "fallback_agent" if resolved is not None else "message"
        pod.metrics.calls_unrouted_in_outage.labels(answer).inc()
        log.warning("database down and no last good route", extra={"to": number, "answer": answer, "error": str(exc)})
        return resolved if resolved is not None else xml(twiml.say_and_hang_up(pod.settings.outage_message))


def replayed(pod: Pod, call_sid: str) -> bool:
    """True (counted, logged) when this pod already answered `call_sid` with a call token: the
    webhook is a replay and gets no token. Asked before routing and admission, so a replay costs no
    lookup and holds no place."""
    if call_sid not in pod.seen_calls:
        return False
    pod.metrics.webhooks_replayed.inc()
    log.warning("replayed webhook for a call already answered; no new call token")
    return True


def stream_to_agent(request: Request, pod: Pod, call: VoiceWebhook, agent_id: str, direction: str) -> Response:
    """`<Connect><Stream>` for an admitted call, with the call token its media stream must bring
    back (inbound webhook and the answer of an outbound call alike). One token per CallSid: a twin
    request that raced past `replayed` is hung up here."""
    settings = pod.settings
    if not pod.seen_calls.add(call.CallSid):
        pod.metrics.webhooks_replayed.inc()
        log.warning("replayed webhook for a call already answered; no new call token")
        return xml(twiml.hang_up())
    token = call_token.issue(
        settings.call_token_key(),
        call_sid=call.CallSid,
        agent_id=agent_id,
        from_number=call.From,
        to_number=call.To,
        direction=direction,
        ttl_seconds=settings.call_token_ttl_seconds,
    )
    base = public_base_url(request, settings)
    return xml(
        twiml.connect_stream(websocket_url(base, MEDIA_PATH), {TOKEN_PARAMETER: token}, base + CONNECT_ACTION_PATH)
    )


async def connect_action(request: Request) -> Response:
    pod: Pod = request.app.state.pod
    action = await _signed_model(request, pod, ConnectActionWebhook)
    if isinstance(action, Response):
        return action
    call_sid_var.set(action.CallSid)
    outcome = checked_outcome(pod.outcomes.take(action.CallSid), pod.settings.transfer_allowed_numbers)
    log.info("stream ended; telling Twilio what next", extra={"outcome": repr(outcome)})
    return xml(twiml.after_stream(outcome))
