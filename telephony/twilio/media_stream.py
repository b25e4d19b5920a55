"""`WS /twilio/media`: one Twilio Media Stream, from `connected` to `stop`.

Until its `start` is verified a connection is a stranger: it waits at the pod's `StreamDoor` (at
most `stream_pending_max` at once; the rest are refused at the handshake, HTTP 403, which costs the
pod about half of what accepting and closing them does: `benchmarks/stream_flood.py`), for at most
`stream_start_timeout_seconds`, with messages of at most `stream_prestart_max_message_bytes`
(uvicorn has already read a frame of up to `ws_max_frame_bytes` by then; the smaller bound stops a
stranger from parking big buffers in the pod). A second stream for a call already live on the pod
(a replayed token) is refused and leaves the live call's count alone.

The stream waits for `start`, verifies the call token Twilio hands back in `customParameters`
(close 1008 if missing, forged, expired or for another call), then runs the agent's session
against a `TwilioCallPort` while this handler reads Twilio's messages. A malformed, unknown or
oversized message is logged and dropped; only `stop`, a disconnect, or the session ending the
call ends it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketState

from agents.port import Agent, AudioIn, CallInfo, CallOutcome, DtmfIn, EndRequested, MarkHeard
from telephony.audio.mulaw import TWILIO_SAMPLE_RATE, mulaw_to_pcm16
from telephony.audio.resamplers import StreamResampler
from telephony.logs import call_sid_var
from telephony.twilio import call_token
from telephony.twilio.call_control import PortControl
from telephony.twilio.playout import Playout
from telephony.twilio.port import TwilioCallPort
from telephony.twilio.protocol import Connected, Dtmf, Mark, Media, ProtocolError, Start, Stop, parse_inbound
from telephony.twilio.stream_door import Waiting

if TYPE_CHECKING:
    from telephony.pod import Pod

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
MESSAGE_TOO_BIG = 1009
TOKEN_PARAMETER = "token"
TOO_MANY_PENDING = "too_many_pending"
START_TIMEOUT = "start_timeout"
PRESTART_TOO_LARGE = "prestart_message_too_large"
CALL_ALREADY_LIVE = "call_already_live"
SESSION_GRACE_SECONDS = 2.0
"""How long a session has to wind down after its stream ends before it is cancelled. Its record
does not depend on it: lines are written as the call goes, the end is only queued (never awaited),
and a record the session left open is ended by the stream (`DatabaseCallStore.stream_closed`)."""


class _Disconnected(Exception):
    pass


class _PrestartTooLarge(Exception):
    pass


async def media_stream(websocket: WebSocket) -> None:
    pod: Pod = websocket.app.state.pod
    waiting = pod.stream_door.enter()
    try:
        if waiting is None:
            await _turn_away(websocket, pod, TOO_MANY_PENDING, POLICY_VIOLATION, "too many streams waiting to start")
            return
        try:
            await websocket.accept()
        except Exception:  # the client left during the handshake: nothing to serve, nothing to log
            return
        await _serve(websocket, pod, waiting)
    except _Disconnected:
        pass
    except Exception:  # never let one call's failure escape into the server
        log.exception("media stream failed")
        await _close(websocket, INTERNAL_ERROR, "internal error")
    finally:
        if waiting is not None:
            waiting.leave()


async def _turn_away(websocket: WebSocket, pod: Pod, reason: str, code: int, message: str) -> None:
    """Close a stream before it became a call, counted by reason (logged sparingly: a flood of
    strangers must not flood the logs). Before `accept` this refuses the handshake (HTTP 403)."""
    pod.metrics.streams_turned_away.labels(reason).inc()
    pod.stream_door.turned_away += 1
    if pod.stream_door.turned_away <= 10 or pod.stream_door.turned_away % 100 == 0:
        log.warning("media stream turned away", extra={"reason": reason, "turned_away": pod.stream_door.turned_away})
    await _close(websocket, code, message)


class _Reader:
    """Reads one stream's messages; drops the unusable ones (logging the first few, then every
    hundredth, so a stream spewing garbage cannot flood the logs)."""

    def __init__(self, websocket: WebSocket, pod: Pod, waiting: Waiting | None = None) -> None:
        self.websocket = websocket
        self.pod = pod
        self.dropped = 0
        self.waiting = waiting
        """The stream's place at the door until its `start` is verified (small messages only)."""

    def admitted(self) -> None:
        """`start` is verified: the stream leaves the door and the normal message bound applies."""
        if self.waiting is not None:
            self.waiting.leave()
            self.waiting = None

    def drop(self, reason: str, size: int) -> None:
        self.dropped += 1
        self.pod.metrics.stream_messages_dropped.inc()
        if self.dropped <= 10 or self.dropped % 100 == 0:
            log.warning("dropped media-stream message", extra={"reason": reason, "size": size, "dropped": self.dropped})

    async def next(self) -> Connected | Start | Media | Dtmf | Mark | Stop | None:
        """The next usable message, None for one that was dropped; `_Disconnected` at the end."""
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise _Disconnected
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes") or b""
        if self.waiting is not None and len(raw) > self.pod.settings.stream_prestart_max_message_bytes:
            raise _PrestartTooLarge
        try:
            return parse_inbound(raw, self.pod.settings.ws_max_message_bytes)
        except ProtocolError as exc:
            self.drop(str(exc), len(raw))
            return None

    async def start(self) -> Start:
        """Wait for `start`, dropping anything else but `connected`."""
        async with asyncio.timeout(self.pod.settings.stream_start_timeout_seconds):
            while True:
                message = await self.next()
                if isinstance(message, Start):
                    return message
                if message is not None and not isinstance(message, Connected):
                    self.drop(f"{message.event} before start", 0)


async def _serve(websocket: WebSocket, pod: Pod, waiting: Waiting) -> None:
    settings = pod.settings
    reader = _Reader(websocket, pod, waiting)
    try:
        start = await reader.start()
    except TimeoutError:
        await _turn_away(websocket, pod, START_TIMEOUT, POLICY_VIOLATION, "no start message")
        return
    except _PrestartTooLarge:
        await _turn_away(websocket, pod, PRESTART_TOO_LARGE, MESSAGE_TOO_BIG, "message too large before start")
        return
    meta = start.start
    try:
        claims = call_token.verify(settings.call_token_key(), meta.custom_parameters.get(TOKEN_PARAMETER))
        if claims.call_sid != meta.call_sid:
            raise call_token.CallTokenError("call token is for another call")
        if settings.twilio_account_sid and meta.account_sid != settings.twilio_account_sid:
            raise call_token.CallTokenError("stream from another account")
    except call_token.CallTokenError as exc:
        pod.metrics.streams_refused.inc()
        log.warning("refused media stream", extra={"reason": str(exc), "call_sid_claimed": meta.call_sid})
        await _close(websocket, POLICY_VIOLATION, str(exc))
        return
    if pod.calls.is_live(meta.call_sid):
        await _turn_away(websocket, pod, CALL_ALREADY_LIVE, POLICY_VIOLATION, "a stream for this call is live")
        return
    reader.admitted()
    resolved = await pod.directory.resolve(agent_id=claims.agent_id)  # as the webhook did, maybe on another pod
    if resolved is None:
        log.error("call token names an unknown agent", extra={"agent_id": claims.agent_id})
        await _close(websocket, INTERNAL_ERROR, "unknown agent")
        return

    call_sid_var.set(meta.call_sid)
    info = CallInfo(
        call_sid=meta.call_sid,
        stream_sid=meta.stream_sid,
        agent_id=claims.agent_id,
        from_number=claims.from_number,
        to_number=claims.to_number,
        direction=claims.direction,
        sample_rate=settings.pipeline_sample_rate,
        variables=await _call_variables(pod, claims),
    )
    await _run_call(reader, resolved.agent, info)


async def _call_variables(pod: Pod, claims: call_token.CallClaims) -> dict[str, str]:
    """An outbound call's per-contact variables, stored with its record when it was placed."""
    if pod.database is None or not claims.direction.startswith("outbound"):
        return {}
    from db import CallRecords

    try:
        record = await CallRecords(pod.database).get(claims.call_sid)
    except Exception:
        log.exception("could not read the call's variables; the agent's prompt stays generic")
        return {}
    variables = (record or {}).get("variables") or {}
    return {str(k): str(v) for k, v in variables.items()}


async def _run_call(reader: _Reader, agent: Agent, info: CallInfo) -> None:
    websocket, pod = reader.websocket, reader.pod
    settings = pod.settings
    send_lock = asyncio.Lock()

    async def send(text: str) -> None:
        async with send_lock:
            await websocket.send_text(text)

    async def end_call(outcome: CallOutcome) -> None:
        pod.outcomes.put(info.call_sid, outcome)
        await _close(websocket, 1000, outcome.reason)

    recorder = pod.recorders.for_call(agent, info.call_sid) if pod.recorders is not None else None
    playout = Playout(
        send,
        info.stream_sid,
        lead_ms=settings.playout_lead_ms,
        max_frames=settings.playout_queue_frames,
        max_pending_marks=settings.pending_marks,
        tap=recorder,
    )
    port = TwilioCallPort(
        info,
        playout,
        end_call,
        max_queued_events=settings.inbound_queue_frames,
        outbound_resampler=settings.outbound_resampler,
        end_wait_seconds=settings.playout_queue_frames * 0.02,
    )
    inbound = StreamResampler(TWILIO_SAMPLE_RATE, settings.pipeline_sample_rate, settings.inbound_resampler)

    ending: list[asyncio.TimerHandle | asyncio.Task[None]] = []

    def end_requested(reason: str) -> None:
        """The pod sheds this call: the agent says its apology and hangs up; if it has not within
        `shed_goodbye_seconds`, the stream is closed anyway."""
        if ending:
            return
        port.push(EndRequested(reason))

        def close_anyway() -> None:
            log.warning("the agent did not end the call in time; closing its stream")
            ending.append(asyncio.create_task(_close(websocket, 1000, f"ended by the pod ({reason})")))

        ending.append(asyncio.get_running_loop().call_later(settings.shed_goodbye_seconds, close_anyway))

    control = PortControl(port, pod.call_store.operator_note if pod.call_store is not None else None)
    if not pod.calls.start(info.call_sid, end_requested, control):  # a twin stream started meanwhile: it keeps it
        await _turn_away(websocket, pod, CALL_ALREADY_LIVE, POLICY_VIOLATION, "a stream for this call is live")
        return
    pod.metrics.calls_started.inc()
    started = time.monotonic()
    log.info("call started", extra={"agent_id": info.agent_id, "stream_sid": info.stream_sid})
    playout_task = asyncio.create_task(playout.run(), name=f"playout-{info.call_sid}")
    session_task = asyncio.create_task(_run_session(agent, port), name=f"session-{info.call_sid}")
    ended_by = "caller"
    try:
        while True:
            try:
                message = await reader.next()
            except _Disconnected:
                ended_by = "session" if port.outcome is not None else "disconnect"
                break
            if isinstance(message, Media):
                if message.media.track in ("inbound", "inbound_track"):
                    decoded = mulaw_to_pcm16(message.media.payload)
                    if recorder is not None:  # both sides of these 20 ms, as the caller heard them
                        recorder.caller(decoded)
                    pcm = inbound.process(decoded)
                    if pcm:
                        port.push(AudioIn(pcm, message.media.timestamp))
            elif isinstance(message, Mark):
                if playout.mark_echoed(message.mark.name):
                    port.push(MarkHeard(message.mark.name, heard=True))
            elif isinstance(message, Dtmf):
                port.push(DtmfIn(message.dtmf.digit))
            elif isinstance(message, Stop):
                break
            elif isinstance(message, Start):
                reader.drop("second start message", 0)
    finally:
        for handle in ending:
            handle.cancel()
        port.close()
        playout.close()
        await _finish_session(session_task)
        if pod.call_store is not None:  # a session cancelled before it reported its end: the record ends here
            pod.call_store.stream_closed(info.call_sid)
        playout_task.cancel()
        await asyncio.gather(playout_task, return_exceptions=True)
        if recorder is not None and pod.recorders is not None:  # stored in the background, never awaited here
            pod.recorders.finish(recorder)
        pod.calls.release(info.call_sid)
        pod.metrics.calls_ended.inc()
        log.info(
            "call ended",
            extra={
                "ended_by": ended_by,
                "duration_s": round(time.monotonic() - started, 3),
                "frames_sent": playout.frames_sent,
                "dropped_audio_frames": port.dropped_audio_frames,
            },
        )
        await _close(websocket, 1000, "call ended")


async def _run_session(agent: Agent, port: TwilioCallPort) -> None:
    try:
        await agent.run(port)
        if not port.closed:  # the agent is done talking: end the call rather than leave silence
            await port.hang_up("agent finished")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("session failed; ending the call")
        await port.hang_up("session error")


async def _finish_session(task: asyncio.Task[None]) -> None:
    """Give the session a moment to notice the end of events, then cancel it."""
    done, _ = await asyncio.wait({task}, timeout=SESSION_GRACE_SECONDS)
    if not done:
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    try:
        await websocket.close(code, reason[:120])
    except Exception:  # already closing from the other side
        pass
