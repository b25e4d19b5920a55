"""Twilio's REST API (Calls create and update) through the official `twilio` library's async client.

`TwilioRest` retries what Twilio refuses without having acted on it: 429 (too many requests: the
account's calls-per-second limit), 5xx, and connections that could not be opened, with exponential
backoff (`twilio_api_backoff_seconds`, doubled per retry up to `twilio_api_backoff_max_seconds`, at
most `twilio_api_max_retries` times). Other 4xx errors (an invalid number, say) are raised at once.

A create whose answer never came (a timeout, a connection reset once the request was sent) is
ambiguous: Twilio may have placed the call. Repeating it could ring the callee twice, and failing
it would count an attempt that may be live. So `create_call` asks Twilio's call list first
(`GET Calls.json?To=…&From=…`, newest first, matched on our From number and a creation time no
earlier than our request): a call found is the one we made; none found, the create is retried like
a refusal. If even the list cannot be read, `TwilioApiError.ambiguous` is set and the caller must
wait for the call's status callback rather than retry or fail. (The list is not filtered with
`StartTime>=`: a call still queued or ringing has no start time yet and would be missed.)

The HTTP hook is Twilio's own: `Client(http_client=...)` with an `AsyncTwilioHttpClient` subclass
that, when `twilio_api_base_url` is set, sends the requests there instead of `https://api.twilio.com`
(the fake in `telephony/simulator/twilio_rest.py` in tests and benchmarks).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

log = logging.getLogger("switchboard.twilio")

TWILIO_API = "https://api.twilio.com"
_T = TypeVar("_T")
RECONCILE_PAGE_SIZE = 20
"""Bound on calls to a number read back when a create's answer was lost (newest first)."""
CLOCK_SKEW_SECONDS = 5.0
"""How much earlier than our request Twilio's `date_created` may read and still be our call."""


class TwilioApiError(Exception):
    """Twilio refused a request (after any retries). `status` is the HTTP status (0: no response)."""

    def __init__(
        self, status: int, code: int | None, message: str, *, retryable: bool, ambiguous: bool = False
    ) -> None:
        super().__init__(f"Twilio API error {status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.ambiguous = ambiguous
        """The request may have been carried out (no answer came, and Twilio could not be asked)."""


class _Ambiguous(Exception):
    """A request was sent and no answer came back: Twilio may have acted on it."""


@dataclass(frozen=True, slots=True)
class CreatedCall:
    sid: str
    status: str


class _HttpClient(AsyncTwilioHttpClient):
    """Twilio's aiohttp client, with the API host replaced by `base_url` when one is given."""

    def __init__(self, base_url: str | None, timeout: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.base_url is not None and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        if kwargs.get("timeout") is None:  # Twilio's client passes None: the bound would be aiohttp's 5 min
            kwargs["timeout"] = self.timeout
        auth = kwargs.pop("auth", None)
        if auth is not None:  # as a header: aiohttp deprecates its BasicAuth argument
            headers = dict(kwargs.get("headers") or {})
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            kwargs["headers"] = headers
        return await super().request(method, url, *args, **kwargs)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, TwilioRestException):
        return exc.status == 429 or exc.status >= 500
    # never reached Twilio (no connection, or none within the connect timeout): safe to repeat
    return isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))


def _ambiguous(exc: BaseException) -> bool:
    """Sent, but no answer: a read timeout, a reset or a disconnect after the request went out."""
    return not _retryable(exc) and isinstance(exc, (TimeoutError, aiohttp.ClientConnectionError))


class TwilioRest:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        backoff_max: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._base_url = base_url
        self._timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._client: Client | None = None
        self._http: _HttpClient | None = None
        self.retries = 0
        """Requests repeated after a retryable refusal (for logs and tests)."""

    def _api(self) -> Client:
        if self._client is None:  # made inside the event loop: aiohttp's session belongs to it
            self._http = _HttpClient(self._base_url, self._timeout)
            self._client = Client(
                self.account_sid, self._auth_token, account_sid=self.account_sid, http_client=self._http
            )
        return self._client

    async def _with_retries(
        self,
        what: str,
        request: Callable[[], Awaitable[_T]],
        reconcile: Callable[[], Awaitable[_T | None]] | None = None,
    ) -> _T:
        """`request`, retried; with `reconcile`, an ambiguous failure is looked up first (its result,
        or None: not carried out, so safe to repeat)."""
        for attempt in range(self.max_retries + 1):
            try:
                return await request()
            except (TwilioRestException, aiohttp.ClientError, TimeoutError) as exc:
                retryable = _retryable(exc)
                if reconcile is not None and _ambiguous(exc):
                    found = await self._reconciled(what, exc, reconcile)
                    if found is not None:
                        return found
                    retryable = True  # Twilio has no such call: the request was not carried out
                if not retryable or attempt == self.max_retries:
                    raise _api_error(exc, retryable) from None
                delay = min(self.backoff_max, self.backoff * 2**attempt) * random.uniform(0.8, 1.2)
                self.retries += 1
                log.warning(
                    "Twilio refused a request; retrying",
                    extra={"request": what, "status": getattr(exc, "status", 0), "retry_in_s": round(delay, 3)},
                )
                await self._sleep(delay)
        raise AssertionError("unreachable")

    async def _reconciled(
        self, what: str, exc: BaseException, reconcile: Callable[[], Awaitable[_T | None]]
    ) -> _T | None:
        log.warning("no answer to a request Twilio may have carried out; asking Twilio", extra={"request": what})
        try:
            found = await reconcile()
        except (TwilioException, aiohttp.ClientError, TimeoutError) as lookup:  # a failed page is TwilioException
            error = _api_error(exc, False)
            raise TwilioApiError(
                error.status, error.code, f"{error.message}; lookup failed: {_api_error(lookup, False).message}",
                retryable=False, ambiguous=True,
            ) from None  # fmt: skip
        log.warning("ambiguous request reconciled", extra={"request": what, "carried_out": found is not None})
        return found

    async def create_call(self, **params: Any) -> CreatedCall:
        """`calls.create` with Twilio's parameter names (`to`, `from_`, `url`, `status_callback`...).
        A lost answer is reconciled with the call list (see the module's note)."""
        sent_at = time.time()

        async def reconcile() -> CreatedCall | None:
            return await self.find_call(to=str(params.get("to")), from_=str(params.get("from_")), since=sent_at)

        call = await self._with_retries("calls.create", lambda: self._api().calls.create_async(**params), reconcile)
        if isinstance(call, CreatedCall):
            return call
        return CreatedCall(sid=str(call.sid), status=str(call.status))

    async def find_call(self, *, to: str, from_: str, since: float) -> CreatedCall | None:
        """The newest call from `from_` to `to` that Twilio created at `since` (epoch seconds) or
        later, less `CLOCK_SKEW_SECONDS`; None if there is none. Raises what the request raises."""
        earliest = datetime.fromtimestamp(since - CLOCK_SKEW_SECONDS, UTC)
        calls = await self._api().calls.list_async(to=to, from_=from_, limit=RECONCILE_PAGE_SIZE)
        for call in calls:  # newest first
            created = call.date_created
            if getattr(call, "_from", None) != from_ or created is None:  # the library names it `_from`
                continue
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            if created >= earliest.replace(microsecond=0):
                return CreatedCall(sid=str(call.sid), status=str(call.status))
        return None

    async def update_call(self, call_sid: str, **params: Any) -> str:
        """`calls(sid).update`: e.g. `status="completed"` to hang up, or `twiml=` to play a message."""
        call = await self._with_retries("calls.update", lambda: self._api().calls(call_sid).update_async(**params))
        return str(call.status)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None


def _api_error(exc: BaseException, retryable: bool) -> TwilioApiError:
    if isinstance(exc, TwilioRestException):
        return TwilioApiError(exc.status, exc.code, str(exc.msg)[:300], retryable=retryable)
    return TwilioApiError(
        0, None, f"{type(exc).__name__}: {exc}"[:300], retryable=retryable, ambiguous=_ambiguous(exc) and not retryable
    )
