"""A fake of Twilio's REST API for calls, served on a loopback port: our Twilio stand-in's other half.

It speaks the part of the Calls API Switchboard uses (`POST .../Calls.json` to create,
`GET .../Calls.json?To=&From=&StartTime>=` to list, newest first, `POST .../Calls/{Sid}.json` to
update, `GET` to fetch) with Twilio's documented JSON shapes and error bodies (`{"code", "message",
"more_info", "status"}`), checks HTTP basic auth, and keeps a log of every request with its arrival
time. Tests inject refusals (429, 500, 503) for the next creates or for every n-th one; an injected
refusal creates nothing, as with Twilio. They can also lose the answer to the next creates
(`lost_answers`): `created` makes the call and then holds the answer back (`lost_answer_seconds`)
so the client times out not knowing it was placed; `not_created` holds it back and makes nothing.

Each accepted call is then played out the way Twilio does it: it rings, ends busy / no-answer /
failed, or is answered (optionally requesting the answer `Url`, signed, and keeping the TwiML),
reports asynchronous answering-machine detection to `AsyncAmdStatusCallback`, lasts
`call_seconds`, and ends with a signed `StatusCallback` (`CallStatus`, `CallDuration`). An update
with `Status=completed` or new `Twiml` ends it early. Start and end times of every call are kept,
so tests measure pacing and concurrency from what "Twilio" saw.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from telephony.simulator.signing import signed_headers

MAX_LOG = 1_000_000
"""Bound on requests and calls the fake remembers."""
MAX_PAGE_SIZE = 1000
"""Twilio's largest list page."""
LOST_ANSWER_MODES = ("created", "not_created")

ERRORS = {
    400: (21201, "No 'To' number is specified"),
    401: (20003, "Authenticate"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


def _error(status: int, code: int | None = None, message: str | None = None) -> JSONResponse:
    default_code, default_message = ERRORS.get(status, (20000 + status, "Error"))
    code = code or default_code
    body = {
        "code": code,
        "message": message or default_message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status)


@dataclass
class LoggedRequest:
    at: float
    """Arrival time (the fake's monotonic clock)."""
    method: str
    path: str
    params: dict[str, str]
    status: int
    call_sid: str | None = None


@dataclass
class FakeCall:
    sid: str
    to: str
    from_: str
    params: dict[str, str]
    created_at: float
    status: str = "queued"
    created_wall: float = field(default_factory=time.time)
    """Wall-clock creation time (`date_created`)."""
    ended_at: float | None = None
    answered_by: str | None = None
    answer_twiml: str | None = None
    """What the answer `Url` returned (when the fake requests it)."""
    updates: list[dict[str, str]] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


def outcome_always(status: str) -> Callable[[str], str]:
    return lambda to: status


class FakeTwilioRest:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        outcome: Callable[[str], str] | None = None,
        answered_by: Callable[[str], str] = lambda to: "human",
        ring_seconds: float = 0.05,
        call_seconds: float = 0.2,
        amd_seconds: float = 0.05,
        fetch_answer_url: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`outcome(to)` is how a call to `to` ends: completed, busy, no-answer or failed."""
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.outcome = outcome or outcome_always("completed")
        self.answered_by = answered_by
        self.ring_seconds = ring_seconds
        self.call_seconds = call_seconds
        self.amd_seconds = amd_seconds
        self.fetch_answer_url = fetch_answer_url
        self.clock = clock
        self.requests: deque[LoggedRequest] = deque(maxlen=MAX_LOG)
        self.calls: dict[str, FakeCall] = {}
        self.callbacks: deque[tuple[float, str, dict[str, str], int]] = deque(maxlen=MAX_LOG)
        """(time, url, params, response status) of every callback posted."""
        self.pending_faults: deque[int] = deque()
        """Statuses to answer the next creates with, in order (then normal service)."""
        self.fault_every: tuple[int, int] | None = None
        """(n, status): every n-th create request is refused with `status`."""
        self.lost_answers: deque[str] = deque()
        """How the answers to the next creates are lost, in order (`LOST_ANSWER_MODES`)."""
        self.lost_answer_seconds = 30.0
        """How long a lost answer is held back (longer than the client waits)."""
        self.list_faults: deque[int] = deque()
        """Statuses to answer the next call-list requests with, in order."""
        self._creates_seen = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._auth_token = auth_token
        base = f"/2010-04-01/Accounts/{account_sid}"
        self.app = Starlette(
            routes=[
                Route(base + "/Calls.json", self._create, methods=["POST"]),
                Route(base + "/Calls.json", self._list, methods=["GET"]),
                Route(base + "/Calls/{sid}.json", self._update, methods=["POST"]),
                Route(base + "/Calls/{sid}.json", self._fetch, methods=["GET"]),
            ]
        )

    # -- the API -----------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return hmac.compare_digest(request.headers.get("authorization", ""), expected)

    async def _form(self, request: Request) -> dict[str, str]:
        body = await request.body()  # Twilio's client posts application/x-www-form-urlencoded
        return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))

    def _log(self, request: Request, params: dict[str, str], status: int, sid: str | None = None) -> None:
        self.requests.append(LoggedRequest(self.clock(), request.method, request.url.path, params, status, sid))

    async def _create(self, request: Request) -> JSONResponse:
        params = await self._form(request)
        if not self._authorized(request):
            self._log(request, params, 401)
            return _error(401)
        self._creates_seen += 1
        fault = self.pending_faults.popleft() if self.pending_faults else None
        if fault is None and self.fault_every and self._creates_seen % self.fault_every[0] == 0:
            fault = self.fault_every[1]
        if fault is not None:
            self._log(request, params, fault)
            return _error(fault)
        lost = self.lost_answers.popleft() if self.lost_answers else None
        if lost == "not_created":
            self._log(request, params, 0)
            await asyncio.sleep(self.lost_answer_seconds)
            return _error(503)
        if not params.get("To"):
            self._log(request, params, 400)
            return _error(400)
        if not params.get("From") or not (params.get("Url") or params.get("Twiml")):
            self._log(request, params, 400)
            return _error(400, 21205, "Url parameter is required.")
        sid = "CA" + secrets.token_hex(16)
        call = FakeCall(sid, params["To"], params["From"], params, self.clock())
        self.calls[sid] = call
        self._log(request, params, 201, sid)
        self._spawn(self._play(call))
        if lost == "created":  # placed, but the client never hears so
            await asyncio.sleep(self.lost_answer_seconds)
        return JSONResponse(self._resource(call), status_code=201)

    async def _list(self, request: Request) -> JSONResponse:
        """Calls, newest first, filtered by `To`, `From` and `StartTime>=` (a UTC date, applied to
        the creation date here), one page of `PageSize`."""
        query = dict(request.query_params)
        if not self._authorized(request):
            self._log(request, query, 401)
            return _error(401)
        if self.list_faults:
            fault = self.list_faults.popleft()
            self._log(request, query, fault)
            return _error(fault)
        try:
            size = max(1, min(MAX_PAGE_SIZE, int(query.get("PageSize", "50"))))
        except ValueError:
            self._log(request, query, 400)
            return _error(400, 20001, "Invalid PageSize")
        since = query.get("StartTime>", query.get("StartTime>=", ""))[:10]
        calls = [
            call
            for call in sorted(self.calls.values(), key=lambda c: c.created_wall, reverse=True)
            if query.get("To", call.to) == call.to
            and query.get("From", call.from_) == call.from_
            and datetime.fromtimestamp(call.created_wall, UTC).strftime("%Y-%m-%d") >= since
        ][:size]
        self._log(request, query, 200)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls.json"
        page = {"first_page_uri": uri, "next_page_uri": None, "previous_page_uri": None, "page": 0}
        body = page | {"page_size": size, "start": 0, "end": max(0, len(calls) - 1), "uri": uri}
        return JSONResponse(body | {"calls": [self._resource(call) for call in calls]})

    async def _update(self, request: Request) -> JSONResponse:
        params = await self._form(request)
        sid = request.path_params["sid"]
        if not self._authorized(request):
            self._log(request, params, 401, sid)
            return _error(401)
        call = self.calls.get(sid)
        if call is None:
            self._log(request, params, 404, sid)
            return _error(404)
        call.updates.append(params)
        self._log(request, params, 200, sid)
        if params.get("Status") in ("completed", "canceled") or params.get("Twiml") or params.get("Url"):
            call.ended.set()
        return JSONResponse(self._resource(call))

    async def _fetch(self, request: Request) -> JSONResponse:
        sid = request.path_params["sid"]
        call = self.calls.get(sid)
        if not self._authorized(request) or call is None:
            status = 401 if call is not None else 404
            self._log(request, {}, status, sid)
            return _error(status)
        self._log(request, {}, 200, sid)
        return JSONResponse(self._resource(call))

    def _resource(self, call: FakeCall) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        created = format_datetime(datetime.fromtimestamp(call.created_wall, UTC), usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}.json"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": call.answered_by,
            "api_version": "2010-04-01",
            "caller_name": None,
            "date_created": created,
            "date_updated": now,
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": call.from_,
            "from_formatted": call.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "sid": call.sid,
            "start_time": None,
            "status": call.status,
            "subresource_uris": {"recordings": uri.replace(".json", "/Recordings.json")},
            "to": call.to,
            "to_formatted": call.to,
            "trunk_sid": None,
            "uri": uri,
            "queue_time": "0",
        }

    # -- playing a call --------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _play(self, call: FakeCall) -> None:
        outcome = self.outcome(call.to)
        call.status = "ringing"
        await asyncio.sleep(self.ring_seconds)
        duration = 0
        if outcome == "completed":
            call.status = "in-progress"
            answered = self.clock()
            if self.fetch_answer_url and call.params.get("Url"):
                call.answer_twiml = await self._answer(call)
            if call.params.get("AsyncAmd") == "true" and call.params.get("AsyncAmdStatusCallback"):
                self._spawn(self._amd(call))
            try:
                await asyncio.wait_for(call.ended.wait(), self.call_seconds)
            except TimeoutError:
                pass
            duration = max(1, round(self.clock() - answered))
        call.status = outcome
        call.ended_at = self.clock()
        call.ended.set()
        url = call.params.get("StatusCallback")
        if url:
            await self._callback(call, url, {"CallStatus": outcome, "CallDuration": str(duration)})

    async def _answer(self, call: FakeCall) -> str:
        params = self._base_params(call) | {"CallStatus": "in-progress"}
        status, text = await self._post(call.params["Url"], params)
        return text if status == 200 else f"HTTP {status}"

    async def _amd(self, call: FakeCall) -> None:
        await asyncio.sleep(self.amd_seconds)
        if call.ended.is_set():
            return
        call.answered_by = self.answered_by(call.to)
        params = self._base_params(call) | {"AnsweredBy": call.answered_by, "MachineDetectionDuration": "1200"}
        await self._callback(call, call.params["AsyncAmdStatusCallback"], params)

    def _base_params(self, call: FakeCall) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
        }

    async def _callback(self, call: FakeCall, url: str, extra: dict[str, str]) -> None:
        params = self._base_params(call) | {"CallbackSource": "call-progress-events"} | extra
        status, _ = await self._post(url, params)
        self.callbacks.append((self.clock(), url, params, status))

    async def _post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        headers = signed_headers(self._auth_token, url, params)
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.post(url, data=params, headers=headers)
            return response.status_code, response.text
        except httpx.HTTPError as exc:
            return 0, str(exc)

    # -- what tests read -------------------------------------------------------------------

    def creates(self) -> list[LoggedRequest]:
        """Accepted create requests, in arrival order."""
        return [
            r for r in list(self.requests) if r.method == "POST" and r.path.endswith("/Calls.json") and r.status == 201
        ]

    def refused_creates(self) -> list[LoggedRequest]:
        return [
            r for r in list(self.requests) if r.method == "POST" and r.path.endswith("/Calls.json") and r.status != 201
        ]

    def max_concurrency(self) -> int:
        """Most calls in progress at once (created and not yet ended), from the calls' own times."""
        events: list[tuple[float, int]] = []
        for call in list(self.calls.values()):
            events.append((call.created_at, 1))
            events.append((call.ended_at if call.ended_at is not None else float("inf"), -1))
        events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
        peak = current = 0
        for _, delta in events:
            current += delta
            peak = max(peak, current)
        return peak

    def in_progress(self) -> int:
        return sum(1 for call in list(self.calls.values()) if call.ended_at is None)
