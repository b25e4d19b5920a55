"""The chat model behind an OpenAI-compatible API (vLLM in production), streamed, with tool calls.

A phone caller notices a silent second, so the request is held to three clocks: the first token
must come within `first_token_timeout_s`, no gap between chunks may exceed `idle_timeout_s`, and
the whole answer gets `request_timeout_s` of waiting. A request that fails before anything was
handed to the caller is tried once more (the caller heard nothing, so nothing is repeated); once
text has been yielded a failure is final, since a retry would speak the start of the reply twice.

Tool calls arrive as `tool_calls` deltas keyed by `index` (id and name first, the arguments in
pieces, parallel calls interleaved); `ToolCallAssembler` puts them back together and the complete
calls are yielded when the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from agents.engines.protocols import (
    ChatEvent,
    ChatModelUnavailable,
    Message,
    StreamEnd,
    TextDelta,
    ToolCallRequest,
    ToolChoice,
)


class ToolCallOverflow(Exception):
    """The model streamed more tool calls, or longer arguments, than the bounds allow."""


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    cut: bool = False
    """Some of this call's argument text was dropped (over the reply's budget)."""


CUT_MARK = " (cut: over the reply's argument budget)"
"""Ends the arguments of a call that was cut short: never valid JSON, so the tools layer refuses it.
Without it a call whose text was all dropped would arrive as "" and run as a call with no arguments."""


class ToolCallAssembler:
    """Rebuilds complete tool calls from streamed `tool_calls` deltas, keyed by their `index`."""

    def __init__(self, max_calls: int = 16, max_argument_chars: int = 65_536) -> None:
        self.max_calls = max_calls
        """Bound on tool calls in one reply."""
        self.max_argument_chars = max_argument_chars
        """Bound on the argument text kept from one reply (all calls together). Text past it is
        dropped, not an error: the call is handed on cut short, and the tools layer refuses it with
        a message the model can act on, so a runaway argument costs the model a retry, not the call."""
        self._calls: dict[int, _PartialCall] = {}
        self._chars = 0
        self._last_index = 0

    def add(self, index: int | None, id: str | None, name: str | None, arguments: str | None) -> None:
        """Take one delta. A missing `index` (some servers omit it for a single call) means the last one."""
        index = self._last_index if index is None else index
        self._last_index = index
        call = self._calls.get(index)
        if call is None:
            if len(self._calls) >= self.max_calls:
                raise ToolCallOverflow(f"more than {self.max_calls} tool calls in one reply")
            call = self._calls[index] = _PartialCall()
        if id:
            call.id = id
        if name:
            call.name = name
        if arguments:
            room = self.max_argument_chars - self._chars
            kept = arguments[: max(room, 0)]
            if kept:
                self._chars += len(kept)
                call.arguments.append(kept)
            call.cut = call.cut or len(kept) < len(arguments)

    def calls(self) -> list[ToolCallRequest]:
        """The complete calls in index order; a call the server sent no id for gets `call_<index>`."""
        return [
            ToolCallRequest(
                id=call.id or f"call_{index}",
                name=call.name,
                arguments="".join(call.arguments) + (CUT_MARK if call.cut else ""),
            )
            for index, call in sorted(self._calls.items())
        ]


class _AttemptFailed(Exception):
    def __init__(self, reason: str, retryable: bool = True) -> None:
        super().__init__(reason)
        self.retryable = retryable


def _describe(exc: BaseException) -> _AttemptFailed:
    """Why a request failed, and whether the same request may succeed if sent again."""
    if isinstance(exc, openai.APIStatusError):
        retryable = exc.status_code >= 500 or exc.status_code in (408, 409, 429)
        return _AttemptFailed(f"HTTP {exc.status_code}: {exc.message}", retryable)
    if isinstance(exc, openai.APITimeoutError):
        return _AttemptFailed("HTTP timeout")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return _AttemptFailed(f"connection failed: {type(cause).__name__}: {cause}".rstrip(": "))
    if isinstance(exc, ToolCallOverflow):
        return _AttemptFailed(str(exc), retryable=False)
    return _AttemptFailed(f"{type(exc).__name__}: {exc}")


_FAILURES = (openai.OpenAIError, httpx.HTTPError, ValueError, TypeError, AttributeError, ToolCallOverflow)
"""What a broken server or connection can raise while we read it (JSON errors are ValueErrors; a
malformed chunk surfaces as a Type- or AttributeError when read)."""


class OpenAIChatModel:
    """`ChatModel` over the OpenAI chat completions API with `stream=True` (aimed at vLLM)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        *,
        temperature: float | None = None,
        max_tokens: int | None = 400,
        first_token_timeout_s: float = 4.0,
        idle_timeout_s: float = 5.0,
        request_timeout_s: float = 30.0,
        retries: int = 1,
        max_tool_calls: int = 16,
        max_argument_chars: int = 65_536,
        parallel_tool_calls: bool | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        """Bound on the reply's length in tokens (None leaves it to the server)."""
        self.first_token_timeout_s = first_token_timeout_s
        """Bound on the wait from sending the request to the first chunk that says something."""
        self.idle_timeout_s = idle_timeout_s
        """Bound on the gap between two chunks once the reply has started."""
        self.request_timeout_s = request_timeout_s
        """Bound on the total time spent waiting for the server in one request (the consumer's
        own time between items is not counted, so a slow listener never cuts a reply short)."""
        self.retries = retries
        """Bound on extra attempts, made only while nothing has been yielded yet."""
        self.max_tool_calls = max_tool_calls
        """Bound on tool calls in one reply."""
        self.max_argument_chars = max_argument_chars
        """Bound on the tool-call argument text in one reply."""
        self.parallel_tool_calls = parallel_tool_calls
        self.extra_body = dict(extra_body or {})
        """Passed through to the server as-is (vLLM: `structured_outputs`, `top_k`, ...; note that
        vLLM ignores the removed `guided_json`)."""
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=request_timeout_s, max_retries=0)

    async def aclose(self) -> None:
        await self._client.close()

    def _request(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]], tool_choice: ToolChoice | None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": list(messages), "stream": True}
        if tools:
            request["tools"] = list(tools)  # passed unchanged: `"strict": true` must reach the server
            if tool_choice is not None:
                request["tool_choice"] = tool_choice
            if self.parallel_tool_calls is not None:
                request["parallel_tool_calls"] = self.parallel_tool_calls
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if self.max_tokens is not None:
            request["max_tokens"] = self.max_tokens
        if self.extra_body:
            request["extra_body"] = self.extra_body
        return request

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] = (),
        tool_choice: ToolChoice | None = None,
    ) -> AsyncIterator[ChatEvent]:
        request = self._request(messages, tools, tool_choice)
        reasons: list[str] = []
        for _ in range(1 + self.retries):
            yielded = False
            try:
                async with contextlib.aclosing(self._attempt(request)) as events:
                    async for event in events:
                        yielded = True
                        yield event
                return
            except _AttemptFailed as failure:
                if yielded:
                    raise ChatModelUnavailable(f"{self._where()}: failed mid-reply: {failure}") from failure
                reasons.append(str(failure))
                if not failure.retryable:
                    break
        attempts = len(reasons)
        raise ChatModelUnavailable(f"{self._where()}: no answer after {attempts} attempt(s): {'; '.join(reasons)}")

    def _where(self) -> str:
        return f"chat model {self.model!r} at {self.base_url}"

    async def _attempt(self, request: dict[str, Any]) -> AsyncGenerator[ChatEvent, None]:
        """One request: yields its events, or raises `_AttemptFailed`."""
        clock = _WaitClock(self.first_token_timeout_s, self.idle_timeout_s, self.request_timeout_s)
        try:
            async with clock.wait():
                stream = await self._client.chat.completions.create(**request)
        except TimeoutError:
            raise _AttemptFailed(clock.expired()) from None
        except _FAILURES as exc:
            raise _describe(exc) from exc
        try:
            assembler = ToolCallAssembler(self.max_tool_calls, self.max_argument_chars)
            finish_reason: str | None = None
            while True:
                try:
                    async with clock.wait():
                        chunk = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise _AttemptFailed(clock.expired()) from None
                except _FAILURES as exc:
                    raise _describe(exc) from exc
                try:
                    text, finished, said_something = _read_chunk(chunk, assembler)
                except _FAILURES as exc:
                    raise _describe(exc) from exc
                clock.started = clock.started or said_something
                finish_reason = finished or finish_reason
                if text:
                    yield TextDelta(text)
            for call in assembler.calls():
                yield call
            yield StreamEnd(finish_reason)
        finally:
            await _close(stream)


async def _close(stream: Any) -> None:
    """Close the HTTP response at once (barge-in: the server should stop generating), and the SDK's
    SSE generator with it, rather than leave that to a garbage-collection task later."""
    with contextlib.suppress(*_FAILURES):
        await stream.close()
    iterator = getattr(stream, "_iterator", None)
    if iterator is not None and hasattr(iterator, "aclose"):
        with contextlib.suppress(*_FAILURES):
            await iterator.aclose()


def _read_chunk(chunk: Any, assembler: ToolCallAssembler) -> tuple[str, str | None, bool]:
    """Feed a chunk's tool-call deltas to `assembler`; return its text, its finish reason, and
    whether it said anything at all (a bare role chunk is not the first token)."""
    if not chunk.choices:
        return "", None, False
    choice = chunk.choices[0]
    delta = choice.delta
    said = False
    if delta is not None and delta.tool_calls:
        for d in delta.tool_calls:
            fn = d.function
            assembler.add(d.index, d.id, fn.name if fn else None, fn.arguments if fn else None)
        said = True
    text = (delta.content if delta is not None else None) or ""
    return text, choice.finish_reason, said or bool(text) or bool(choice.finish_reason)


class _WaitClock:
    """Which bound applies to the next wait for the server, and how long the waits have taken."""

    def __init__(self, first_token_s: float, idle_s: float, total_s: float) -> None:
        self.first_token_s = first_token_s
        self.idle_s = idle_s
        self.total_s = total_s
        self.started = False
        """Set once a chunk with content, a tool call or a finish reason has arrived."""
        self.waited = 0.0
        self._kind = ""

    @contextlib.asynccontextmanager
    async def wait(self) -> AsyncIterator[None]:
        left = self.total_s - self.waited
        step = self.idle_s if self.started else self.first_token_s - self.waited
        self._kind = "total" if left <= step else ("idle" if self.started else "first")
        began = time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, min(left, step))):
                yield
        finally:
            self.waited += time.monotonic() - began

    def expired(self) -> str:
        if self._kind == "first":
            return f"no first token within {self.first_token_s:g} s"
        if self._kind == "idle":
            return f"no chunk for {self.idle_s:g} s mid-reply"
        return f"reply not finished within {self.total_s:g} s"
