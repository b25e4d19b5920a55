"""One HTTP client for a speech service (the OpenAI audio API): reused connections, a deadline,
retries of what failed before any answer, and a hard bound on requests in flight.

A call pod talks to the speech service for every caller turn and every sentence it speaks, so a
slow or restarting service must cost each turn a bounded wait and nothing more: requests past
`max_in_flight` are refused at once (no queue builds up in the pod while the service is slow),
and a request that has no answer by the deadline is abandoned as `SpeechEngineUnavailable`.

Each client also keeps read-only figures of its recent requests (time to an answer, failures) for
the pod's admission: a service that answers slowly or not at all cannot take one more call;
`live()` lists the clients of the process.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from agents.engines.protocols import SpeechEngineUnavailable

log = logging.getLogger("switchboard.speech")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers that mean "not now" (overloaded, restarting, a proxy without a backend): retried."""
MAX_ERROR_BYTES = 2048
"""Bound on an error body read for the message."""
MAX_RECENT_REQUESTS = 256
"""Bound on recent requests remembered for `recent_health`."""
_LIVE: weakref.WeakSet[SpeechClient] = weakref.WeakSet()


class SpeechRequestRefused(Exception):
    """The service answered, and refused the request itself (4xx other than 429, or a 500)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class SpeechClient:
    """Requests to one speech service, shared by every call of the pod (and every voice)."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "speech",
        api_key: str | None = None,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 1.0,
        retries: int = 2,
        backoff_s: float = 0.2,
        max_in_flight: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout_s <= 0 or connect_timeout_s <= 0 or retries < 0 or max_in_flight < 1:
            raise ValueError("need timeout_s > 0, connect_timeout_s > 0, retries >= 0 and max_in_flight >= 1")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        """Bound on waiting for an answer to start (all retries included) and on any gap within it."""
        self.retries = retries
        """Further attempts after a failure before any answer (connection refused, 429, 502-504)."""
        self.backoff_s = backoff_s
        self.max_in_flight = max_in_flight
        """Bound on this client's requests open at once; past it a request is refused at once."""
        self._in_flight = 0
        self._options: dict[str, Any] = {
            "base_url": self.base_url,
            "headers": {"Authorization": f"Bearer {api_key}"} if api_key else {},
            "timeout": httpx.Timeout(timeout_s, connect=connect_timeout_s),
            "limits": httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
            "transport": transport,
        }
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recent: deque[tuple[float, float | None]] = deque(maxlen=MAX_RECENT_REQUESTS)
        """(when, seconds to an answer or None: no answer) of recent requests, monotonic."""
        _LIVE.add(self)

    @staticmethod
    def live() -> list[SpeechClient]:
        """The speech clients of this process not yet garbage collected."""
        return list(_LIVE)

    def recent_health(self, window_s: float) -> tuple[int, int, float | None]:
        """Over the last `window_s`: requests, those with no answer, and the median seconds to an
        answer (None without any)."""
        since = time.monotonic() - window_s
        recent = [seconds for at, seconds in list(self._recent) if at >= since]
        answered = [seconds for seconds in recent if seconds is not None]
        return len(recent), len(recent) - len(answered), statistics.median(answered) if answered else None

    def _client(self) -> httpx.AsyncClient:
        """The connection pool of the running event loop. A pod has one loop; a pool opened on
        another (start-up work run with `asyncio.run`) cannot be reused, so a fresh one is made."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http = httpx.AsyncClient(**self._options)
            self._loop = loop
        return self._http

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @asynccontextmanager
    async def request(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """An answered request, its body still to be read (streamed); closed on exit, which also
        closes the connection if the body was not read to the end (a barge-in)."""
        if self._in_flight >= self.max_in_flight:
            raise SpeechEngineUnavailable(
                f"{self.name}: {self._in_flight} requests in flight (max {self.max_in_flight})"
            )
        self._in_flight += 1
        try:
            response = await self._answered(method, path, kwargs)
            try:
                yield response
            except httpx.TransportError as exc:  # the body broke off: the service went away mid-answer
                raise SpeechEngineUnavailable(f"{self.name}: {type(exc).__name__} while reading: {exc}") from exc
            finally:
                await response.aclose()
        finally:
            self._in_flight -= 1

    async def _answered(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        """Send, retrying what failed before any answer, until the deadline."""
        started = time.monotonic()
        try:
            response = await self._send_with_retries(method, path, kwargs)
        except SpeechEngineUnavailable:
            self._recent.append((time.monotonic(), None))
            raise
        self._recent.append((time.monotonic(), time.monotonic() - started))
        return response

    async def _send_with_retries(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        attempt = 0
        last = "no attempt"
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    try:
                        http = self._client()
                        response = await http.send(http.build_request(method, path, **kwargs), stream=True)
                    except httpx.TransportError as exc:
                        last = f"{type(exc).__name__}: {exc}"
                    else:
                        if response.status_code < 400:
                            return response
                        message = await _error_text(response)
                        if response.status_code not in RETRY_STATUSES:
                            raise SpeechRequestRefused(response.status_code, message)
                        last = f"{response.status_code}: {message}"
                    if attempt >= self.retries:
                        break
                    attempt += 1
                    log.info(
                        "speech request retried", extra={"event": "speech_retry", "service": self.name, "error": last}
                    )
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        except TimeoutError:
            raise SpeechEngineUnavailable(f"{self.name}: no answer within {self.timeout_s:g} s ({last})") from None
        raise SpeechEngineUnavailable(f"{self.name}: {attempt + 1} attempts failed ({last})")

    async def get(self, path: str) -> httpx.Response:
        """A small GET (health), read whole; raises like `request`."""
        async with self.request("GET", path) as response:
            await response.aread()
            return response

    async def aclose(self) -> None:
        """Close the pool if it belongs to the running loop (another loop's died with it)."""
        http, self._http = self._http, None
        if http is not None and self._loop is asyncio.get_running_loop():
            await http.aclose()


async def _error_text(response: httpx.Response) -> str:
    """The service's error message (OpenAI shape `{"error": {"message"}}` or any text), bounded."""
    body = b""
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= MAX_ERROR_BYTES:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    text = body[:MAX_ERROR_BYTES].decode("utf-8", "replace")
    try:
        import json

        error = json.loads(text).get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except (ValueError, AttributeError):
        pass
    return text.strip() or response.reason_phrase
