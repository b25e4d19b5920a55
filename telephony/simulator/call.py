"""A simulated inbound call, placed the way Twilio places one.

1. POST the voice webhook, signed with the auth token exactly as Twilio signs it.
2. Follow the TwiML: `<Say>`, `<Reject>`, `<Hangup>`, `<Dial>` end the call; `<Connect><Stream>`
   opens the WebSocket with the `<Parameter>`s, sends `connected` and `start`, and streams the
   caller's audio in real-time 20 ms frames (silence between utterances, as Twilio does).
3. Play the server's audio through a `PlaybackBuffer` one frame per tick, echo marks when
   reached, honour `clear`, and record both sides.
4. When the server closes the stream, request the `<Connect action>` URL and follow its TwiML;
   when the caller's script is done, send `stop` and hang up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import httpx
import websockets

from telephony.simulator.line_echo import EchoPath, LineEcho
from telephony.simulator.player import PlaybackBuffer
from telephony.simulator.report import CallReport
from telephony.simulator.script import SILENCE_FRAME, TICK_S, CallerTrack, Listen, Step, WaitForAgent, lay_out
from telephony.simulator.signing import signed_headers
from telephony.twilio.protocol import Clear, OutboundMark, OutboundMedia, ProtocolError, parse_outbound
from telephony.twilio.signature import websocket_url

MAX_SERVER_MESSAGE_BYTES = 1024 * 1024


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class SimulatedCall:
    def __init__(
        self,
        server_url: str,
        auth_token: str,
        *,
        to: str,
        from_: str = "+15005550006",
        script: Sequence[Step] = (),
        account_sid: str | None = None,
        call_sid: str | None = None,
        public_url: str | None = None,
        lead_in_s: float = 1.0,
        tail_s: float = 2.0,
        max_seconds: float = 300.0,
        webhook_timeout_s: float = 15.0,
        answer_path: str = "/twilio/voice",
        direction: str = "inbound",
        echo: EchoPath | None = None,
    ) -> None:
        """`server_url` is where the server listens; `public_url` (default: the same) is the URL
        Twilio would use and sign, for servers configured with `SWITCHBOARD_PUBLIC_URL`.
        `webhook_timeout_s` is how long a webhook may take to answer (Twilio's own: 15 s).
        An outbound call the pod placed, answered by this caller: `answer_path` is the answer URL
        it gave Twilio (e.g. `/twilio/outbound?agent=sales`), `direction` "outbound-api", `from_`
        the pod's number and `to` this callee's. `echo`: the agent's audio comes back on the
        caller's track along this path (a speakerphone, line echo), mixed with what the caller says."""
        self.server_url = server_url.rstrip("/")
        self.public_url = (public_url or server_url).rstrip("/")
        self.webhook_timeout_s = webhook_timeout_s
        self.answer_path = answer_path
        self.direction = direction
        self.auth_token = auth_token
        self.to = to
        self.from_ = from_
        self.account_sid = account_sid or new_sid("AC")
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = new_sid("MZ")
        self.track = lay_out(list(script), lead_in_s, tail_s)
        self.max_ticks = int(max_seconds / TICK_S)
        self.report = CallReport(self.call_sid)
        self._t0 = 0.0
        self._cleared_since_audio = False
        self.echo = echo

    # -- helpers ----------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _params(self, status: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": status,
            "Called": self.to,
            "CalledCountry": "US",
            "Caller": self.from_,
            "CallerCountry": "US",
            "Direction": self.direction,
            "From": self.from_,
            "FromCountry": "US",
            "To": self.to,
            "ToCountry": "US",
        }

    def _reachable(self, url: str) -> str:
        """Map a public URL from TwiML onto the address the server really listens on."""
        public_ws, real_ws = websocket_url(self.public_url, ""), websocket_url(self.server_url, "")
        for public, real in ((self.public_url, self.server_url), (public_ws, real_ws)):
            if url.startswith(public):
                return real + url[len(public) :]
        return url

    async def _post(self, client: httpx.AsyncClient, url: str, status: str) -> ET.Element | None:
        params = self._params(status)
        headers = signed_headers(self.auth_token, url, params)
        response = await client.post(self._reachable(url), data=params, headers=headers)
        self.report.webhook_status = response.status_code
        if response.status_code != 200:
            self.report.add(self._now(), "twiml", f"HTTP {response.status_code} from {url}: {response.text[:120]}")
            self.report.outcome = f"webhook failed with HTTP {response.status_code}"
            return None
        self.report.twiml.append(response.text)
        try:
            return ET.fromstring(response.text)
        except ET.ParseError as exc:
            self.report.outcome = f"invalid TwiML: {exc}"
            return None

    # -- the call ---------------------------------------------------------------------------

    async def run(self) -> CallReport:
        self._t0 = time.monotonic()
        async with httpx.AsyncClient(timeout=self.webhook_timeout_s) as client:
            first_status = "ringing" if self.direction == "inbound" else "in-progress"
            document = await self._post(client, self.public_url + self.answer_path, first_status)
            hops = 0
            while document is not None and hops < 5:  # follow at most a few action redirects
                hops += 1
                document = await self._execute(client, document)
        return self.report

    async def _execute(self, client: httpx.AsyncClient, response: ET.Element) -> ET.Element | None:
        """Run one TwiML document; return the next one (from a `<Connect action>`) if any."""
        for verb in response:
            if verb.tag == "Say":
                self.report.add(self._now(), "twiml", f"<Say> {verb.text!r}")
                self.report.outcome = f"said: {verb.text}"
            elif verb.tag == "Reject":
                self.report.add(self._now(), "twiml", f"<Reject reason={verb.get('reason')!r}>")
                self.report.outcome = f"rejected ({verb.get('reason', 'rejected')})"
                return None
            elif verb.tag == "Hangup":
                self.report.add(self._now(), "twiml", "<Hangup>")
                if self.report.outcome.startswith("stream ended by server"):
                    self.report.outcome = "agent hung up" + self.report.outcome[len("stream ended by server") :]
                elif not self.report.outcome:
                    self.report.outcome = "hung up"
                return None
            elif verb.tag == "Dial":
                target = "".join(child.text or "" for child in verb) or (verb.text or "")
                self.report.add(self._now(), "twiml", f"<Dial> {target}")
                self.report.outcome = f"transferred to {target}"
                return None
            elif verb.tag == "Connect":
                stream = verb.find("Stream")
                if stream is None:
                    self.report.outcome = "unsupported <Connect> (no <Stream>)"
                    return None
                parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
                self.report.add(self._now(), "twiml", f"<Connect><Stream url={stream.get('url')!r}>")
                server_ended = await self._stream(stream.get("url", ""), parameters)
                action = verb.get("action")
                if not server_ended:
                    return None  # the caller hung up: nothing more to execute
                if action:
                    return await self._post(client, action, "in-progress")
            else:
                self.report.add(self._now(), "twiml", f"ignored <{verb.tag}>")
        return None

    async def _stream(self, url: str, parameters: dict[str, str]) -> bool:
        """Run the media stream; True if the server ended it (so Twilio moves on)."""
        sequence = 0
        send_lock = asyncio.Lock()
        player = PlaybackBuffer()
        closed = asyncio.Event()

        async def send(ws: websockets.ClientConnection, message: dict[str, object]) -> None:
            nonlocal sequence
            if message["event"] != "connected":
                sequence += 1
                message["sequenceNumber"] = str(sequence)
                message["streamSid"] = self.stream_sid
            async with send_lock:
                try:
                    await ws.send(json.dumps(message))
                except websockets.ConnectionClosed:
                    closed.set()  # the server hung up between our last read and this send

        async def receive(ws: websockets.ClientConnection) -> None:
            try:
                async for raw in ws:
                    try:
                        message = parse_outbound(raw, MAX_SERVER_MESSAGE_BYTES)
                    except ProtocolError as exc:
                        self.report.add(self._now(), "stream", f"server sent an invalid message: {exc}")
                        continue
                    if isinstance(message, OutboundMedia):
                        self._cleared_since_audio = False
                        player.add_audio(message.media.payload)
                    elif isinstance(message, OutboundMark):
                        player.add_mark(message.mark.name)
                    elif isinstance(message, Clear):
                        dropped_ms, marks = player.clear()
                        self._cleared_since_audio = True
                        at = self._now()
                        self.report.clears.append(at)
                        self.report.add(at, "clear", f"dropped {dropped_ms:.0f} ms of queued audio")
                        for name in marks:
                            await send(ws, {"event": "mark", "mark": {"name": name}})
                            self.report.add(at, "mark", f"{name} (echoed on clear, not played)")
            except websockets.ConnectionClosed:
                pass
            finally:
                closed.set()

        ws_url = self._reachable(url)
        try:
            ws = await websockets.connect(ws_url, max_size=MAX_SERVER_MESSAGE_BYTES, open_timeout=10)
        except (OSError, websockets.InvalidHandshake) as exc:
            self.report.outcome = f"stream connection failed: {exc}"
            return False
        async with ws:
            self.report.stream_started_at = self._now()
            await send(ws, {"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await send(
                ws,
                {
                    "event": "start",
                    "start": {
                        "accountSid": self.account_sid,
                        "streamSid": self.stream_sid,
                        "callSid": self.call_sid,
                        "tracks": ["inbound"],
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                        "customParameters": parameters,
                    },
                },
            )
            self.report.add(self._now(), "stream", f"connected; start sent (stream {self.stream_sid})")
            receiver = asyncio.create_task(receive(ws))
            try:
                server_ended = await self._tick(ws, send, player, closed)
            finally:
                if not closed.is_set():
                    await send(
                        ws, {"event": "stop", "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}}
                    )
                    await ws.close()
                await asyncio.wait_for(receiver, timeout=5)
        self.report.close_code = ws.close_code
        self.report.close_reason = ws.close_reason or ""
        self.report.max_buffered_ms = player.max_buffered_ms
        if server_ended:
            self.report.add(self._now(), "stream", f"closed by server ({ws.close_code} {ws.close_reason!r})")
            self.report.outcome = f"stream ended by server ({ws.close_reason or ws.close_code})"
        else:
            self.report.add(self._now(), "caller", "hangs up (stop sent)")
            self.report.outcome = "caller hung up"
        return server_ended

    async def _tick(self, ws, send, player: PlaybackBuffer, closed: asyncio.Event) -> bool:  # type: ignore[no-untyped-def]
        """Every 20 ms: send the caller's next frame and play one frame of agent audio."""
        track: CallerTrack = self.track
        utterance_ends = {end: label for _, end, label in track.utterances}
        utterance_starts = {start: label for start, _, label in track.utterances}
        start = time.monotonic()
        speaking_since: float | None = None
        utterance_since = 0.0
        marks_due: list[str] = []
        tick = 0
        """Wall-clock ticks since the stream started."""
        position = 0
        """The caller's place in its track: it stands still while the caller listens."""
        listening: tuple[Listen | WaitForAgent, float] | None = None
        """The `Listen` being held, and when it began."""
        spoke_since_listen = False
        quiet_since: float | None = None
        ended_at = -1
        echo = LineEcho(self.echo) if self.echo is not None else None
        while position < track.ticks and tick < self.max_ticks:
            delay = start + tick * TICK_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if closed.is_set():
                break
            now = self._now()
            for name in marks_due:  # the audio before these marks finished playing last tick
                await send(ws, {"event": "mark", "mark": {"name": name}})
                self.report.marks_echoed.append(name)
                self.report.add(now, "mark", name)
            if position in utterance_ends and position != ended_at:  # before any hold: the caller has stopped
                ended_at = position
                self.report.utterances.append((utterance_since, now, utterance_ends[position]))
                self.report.add(now, "caller", "stops speaking")
            if listening is None and position in track.listens:
                listening, spoke_since_listen, quiet_since = (track.listens.pop(position), now), False, None
            held = listening is not None
            if listening is not None:
                step, since = listening
                if isinstance(step, WaitForAgent):  # the agent is far enough into its audio
                    answered = speaking_since is not None and now - speaking_since >= step.after_seconds
                else:
                    answered = (
                        spoke_since_listen and quiet_since is not None and now - quiet_since >= step.quiet_seconds
                    )
                if answered or now - since >= step.max_seconds:
                    listening, held = None, False
            if not held:
                if position in utterance_starts:
                    utterance_since = now
                    self.report.add(now, "caller", f"starts speaking: {utterance_starts[position]}")
                if position in track.digits:
                    digit = track.digits[position]
                    await send(ws, {"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}})
                    self.report.add(now, "dtmf", f"pressed {digit}")
            frame = SILENCE_FRAME if held else track.frames[position]
            if echo is not None:
                frame = echo.mix(frame)
            payload = base64.b64encode(frame).decode("ascii")
            media = {"track": "inbound", "chunk": str(tick + 1), "timestamp": str(tick * 20), "payload": payload}
            await send(ws, {"event": "media", "media": media})
            self.report.caller_mulaw.extend(frame)

            played, marks_due = player.play_frame()
            if echo is not None:
                echo.played(played)
            if played and self._cleared_since_audio:
                self.report.frames_played_after_clear += 1
            self.report.agent_mulaw.extend(played.ljust(len(frame), b"\xff"))
            if played and speaking_since is None:
                speaking_since = now
                self.report.add(now, "agent", "starts speaking")
            elif not played and speaking_since is not None:
                self.report.agent_spans.append((speaking_since, now))
                self.report.add(now, "agent", f"stops speaking ({now - speaking_since:.2f} s)")
                speaking_since = None
            if played:
                spoke_since_listen, quiet_since = True, None
            elif quiet_since is None:
                quiet_since = now
            tick += 1
            position += 0 if held else 1
        if speaking_since is not None:
            now = self._now()
            self.report.agent_spans.append((speaking_since, now))
            self.report.add(now, "agent", f"stops speaking ({now - speaking_since:.2f} s): stream ended")
        return closed.is_set()
