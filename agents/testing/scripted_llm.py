"""A FAKE OpenAI-compatible chat server whose replies a test writes in advance.

This is a fake for tests, benchmarks and the demo: real HTTP on a loopback port (Starlette under
uvicorn), real server-sent events in the exact `chat.completion.chunk` shape vLLM streams, but the
"model" only plays back a script. Each request takes the next step of the script (or asks a rule
function for one): a `Reply` (text and/or tool calls, streamed in small chunks with optional
delays), a `Fail` (an HTTP error), a `Hang` (no answer at all) or a `DropMidStream` (the connection
is cut after some chunks). Every request body is recorded, with how its response ended, so a test
can assert what the client sent and whether it hung up.

A step belongs to a turn, not a request: a pod replying speculatively asks during the caller's
pause and, if the caller goes on, again with the fuller words (same history, as many trailing
caller messages). That request gets the same step (`text_from` recomputed), so a script lists one
step per answer. A retry, a turn after a failed one (one more caller message) and anything after
a `push` take the next step.

    async with ScriptedLlmServer([Reply(text="Hello there.")]) as server:
        model = OpenAIChatModel(server.base_url, model="scripted")

`with ScriptedLlmServer(...) as server:` runs the same server on a thread of its own for sync callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agents.loopback import LoopbackServer

# -- the script ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    """One tool call the fake model makes; `arguments` is the JSON text, sent as-is (even if invalid)."""

    name: str
    arguments: str = "{}"
    id: str | None = None
    """The call id; `call_<n>` when not given."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer: `text`, then `tool_calls`, each split into pieces of `chunk_chars`."""

    text: str = ""
    tool_calls: tuple[ScriptedToolCall, ...] | list[ScriptedToolCall] = ()
    chunk_chars: int = 8
    delay_first_s: float = 0.0
    """Wait between the role chunk (sent at once, as vLLM does) and the first content (a slow first token)."""
    delay_between_s: float = 0.0
    """Wait between chunks."""
    interleave: bool = False
    """Send the argument pieces of parallel tool calls round-robin instead of one call after another."""
    finish_reason: str | None = None
    """Defaults to `tool_calls` when there are tool calls, else `stop`."""
    text_from: Callable[[dict[str, Any]], str] | None = None
    """Computes `text` from the request body when the step is taken (a model that reads back what
    a tool returned: `text_from=lambda body: body["messages"][-1]["content"]`)."""

    def __post_init__(self) -> None:
        if self.chunk_chars < 1:
            raise ValueError("chunk_chars must be >= 1")
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))


@dataclass(frozen=True, slots=True)
class Fail:
    """Answer with an HTTP error status and an OpenAI-style error body."""

    status: int = 500
    message: str = "scripted failure"


@dataclass(frozen=True, slots=True)
class Hang:
    """Say nothing (not even headers) for `seconds`, then answer 504. Server shutdown ends it early."""

    seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class DropMidStream:
    """Stream `reply` but cut the connection after `after_chunks` SSE events (the role chunk counts).

    A non-streaming request has no middle to cut: it gets a 502.
    """

    after_chunks: int = 1
    reply: Reply = Reply(text="This answer is cut off before it ends.", chunk_chars=6)


Step = Reply | Fail | Hang | DropMidStream
Rule = Callable[[dict[str, Any]], Step]
"""Produces the step for a request from its JSON body (a demo's canned "model")."""


@dataclass(slots=True)
class RecordedRequest:
    """A request the fake received, and how its response ended."""

    body: dict[str, Any]
    outcome: str | None = None
    """None while in progress, then `completed`, `disconnected` (the client went away mid-stream),
    `dropped`, `failed` or `hung`."""
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def end(self, outcome: str) -> None:
        """Record how the response ended (the first outcome wins)."""
        if self.outcome is None:
            self.outcome = outcome
        self.ended.set()

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        return self.body.get("tools")

    @property
    def tool_choice(self) -> Any:
        return self.body.get("tool_choice")


# -- turning a reply into chunks ------------------------------------------------------------------


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _call_id(call: ScriptedToolCall, index: int) -> str:
    return call.id or f"call_{index}"


def _conversation_place(messages: list[Any]) -> tuple[str, str]:
    """(the history before the trailing caller messages, those messages), as comparable strings."""
    cut = len(messages)
    while cut > 0 and isinstance(messages[cut - 1], dict) and messages[cut - 1].get("role") == "user":
        cut -= 1
    return json.dumps(messages[:cut], sort_keys=True), json.dumps(messages[cut:], sort_keys=True)


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _tool_call_deltas(reply: Reply) -> list[dict[str, Any]]:
    """The `tool_calls` delta entries: each call's id and name first, then its arguments in pieces."""
    heads = [
        {"index": i, "id": _call_id(call, i), "type": "function", "function": {"name": call.name, "arguments": ""}}
        for i, call in enumerate(reply.tool_calls)
    ]
    pieces = [
        [{"index": i, "function": {"arguments": piece}} for piece in _pieces(call.arguments, reply.chunk_chars)]
        for i, call in enumerate(reply.tool_calls)
    ]
    if reply.interleave:
        tails = [d for group in itertools.zip_longest(*pieces) for d in group if d is not None]
        return heads + tails
    return [d for head, rest in zip(heads, pieces, strict=True) for d in (head, *rest)]


def chunk_deltas(reply: Reply) -> list[tuple[dict[str, Any], str | None]]:
    """The `(delta, finish_reason)` of each streamed chunk, in order, as vLLM sends them."""
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
    deltas += [({"content": piece}, None) for piece in _pieces(reply.text, reply.chunk_chars)]
    deltas += [({"tool_calls": [d]}, None) for d in _tool_call_deltas(reply)]
    deltas.append(({}, _finish_reason(reply)))
    return deltas


def completion_body(reply: Reply, model: str, completion_id: str) -> dict[str, Any]:
    """The whole `chat.completion` object for a non-streaming request."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": _call_id(call, i), "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for i, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(reply), "logprobs": None}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "scripted_error", "code": status}}, status_code=status)


class _ScriptedDrop(Exception):
    """Raised inside the response body to make uvicorn cut the connection mid-stream."""


def _not_a_scripted_drop(record: logging.LogRecord) -> bool:
    """uvicorn logs the exception that cut the connection; for a scripted drop that is the point."""
    return not (record.exc_info and isinstance(record.exc_info[1], _ScriptedDrop))


class _EventStream(StreamingResponse):
    """A streaming response that records `disconnected` when the client leaves before the end."""

    def __init__(self, body: AsyncIterator[bytes], record: RecordedRequest) -> None:
        super().__init__(body, media_type="text/event-stream", headers={"cache-control": "no-cache"})
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.record.end("disconnected")  # a no-op when the body already recorded its end


# -- the server -----------------------------------------------------------------------------------


class ScriptedLlmServer:
    """A FAKE OpenAI-compatible server (`/v1/chat/completions`, `/v1/models`) that plays a script.

    `script` is a sequence of steps taken one per request (more can be `push`ed later), or a rule
    function that makes the step for each request. When a queue runs dry the request gets a 500
    saying so, which makes a test that under-scripted its model fail loudly.
    """

    def __init__(
        self,
        script: Iterable[Step] | Rule = (),
        *,
        model: str = "scripted",
        host: str = "127.0.0.1",
        max_recorded: int = 256,
        max_script_steps: int = 1024,
        max_body_bytes: int = 1 << 20,
    ) -> None:
        self.model = model
        self.host = host
        self.max_recorded = max_recorded  # bound on recorded requests; the oldest are forgotten first
        self.max_script_steps = max_script_steps  # bound on queued steps
        self.max_body_bytes = max_body_bytes  # bound on a request body; larger bodies get 413
        self.requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._rule: Rule | None = script if callable(script) else None
        self._steps: deque[Step] = deque()
        if not callable(script):
            self.push(*script)
        self._ids = itertools.count(1)
        self._last: tuple[str, str, Step] | None = None  # (history, trailing caller messages, its step)
        self._server: LoopbackServer | None = None
        self._closing: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop: asyncio.Event | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ending in `/v1`."""
        return f"http://{self.host}:{self.port}/v1"

    def follow(self, rule: Rule | None) -> None:
        """From now on make each request's step with `rule` (None: take the queued script again)."""
        self._rule = rule

    def push(self, *steps: Step) -> None:
        """Queue more steps (safe from any thread)."""
        if len(self._steps) + len(steps) > self.max_script_steps:
            raise ValueError(f"script longer than max_script_steps={self.max_script_steps}")
        for step in steps:
            if not isinstance(step, Reply | Fail | Hang | DropMidStream):
                raise TypeError(f"not a script step: {step!r}")
        self._steps.extend(steps)
        self._last = None  # new steps: a new conversation (or a new call), never a repeat of the last

    @property
    def steps_left(self) -> int:
        return len(self._steps)

    def discard_steps(self) -> int:
        """Drop the steps no request took (a failed test must not hand them on); how many there were."""
        left = len(self._steps)
        self._steps.clear()
        return left

    async def settled(self, timeout: float = 5.0) -> list[RecordedRequest]:
        """The requests, once each has an outcome (a client's hang-up is seen a moment late); any loop."""
        loop = self._thread_loop
        if loop is not None and loop is not asyncio.get_running_loop():
            future = asyncio.run_coroutine_threadsafe(self._settled(timeout), loop)
            return await asyncio.wrap_future(future)
        return await self._settled(timeout)

    async def _settled(self, timeout: float) -> list[RecordedRequest]:
        requests = list(self.requests)
        async with asyncio.timeout(timeout):
            for request in requests:
                await request.ended.wait()
        return requests

    # -- HTTP -------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "scripted-fake"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat_completions(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > self.max_body_bytes:
            return _error(413, f"request body over {self.max_body_bytes} bytes")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return _error(400, f"request body is not JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "request body must be a JSON object with a 'messages' list")
        record = RecordedRequest(body=body)
        self.requests.append(record)
        try:
            step = self._next_step(body)
        except Exception as exc:  # a rule function's bug must surface as a clear 500, not kill the server
            record.end("failed")
            return _error(500, f"script error: {exc!r}")
        completion_id = f"chatcmpl-scripted-{next(self._ids)}"
        model = str(body.get("model") or self.model)
        streaming = bool(body.get("stream"))
        if isinstance(step, Fail):
            record.end("failed")
            return _error(step.status, step.message)
        if isinstance(step, Hang):
            if await self._client_left_within(request, step.seconds):
                record.end("disconnected")
            record.end("hung")
            return _error(504, "scripted hang ended")
        if isinstance(step, DropMidStream) and not streaming:
            record.end("dropped")
            return _error(502, "scripted drop (non-streaming request)")
        if not streaming:
            assert isinstance(step, Reply)
            record.end("completed")
            return JSONResponse(completion_body(step, model, completion_id))
        drop_after = step.after_chunks if isinstance(step, DropMidStream) else None
        reply = step.reply if isinstance(step, DropMidStream) else step
        return _EventStream(self._events(reply, model, completion_id, record, drop_after), record)

    def _next_step(self, body: dict[str, Any]) -> Step:
        if self._rule is not None:
            step = self._rule(body)
            if not isinstance(step, Reply | Fail | Hang | DropMidStream):
                raise TypeError(f"rule returned {step!r}, not a script step")
        else:
            step = self._queued_step(body)
        if isinstance(step, Reply) and step.text_from is not None:
            step = dataclasses.replace(step, text=step.text_from(body), text_from=None)
        return step

    def _queued_step(self, body: dict[str, Any]) -> Step:
        """The next step, or the last one again for the same turn re-heard (see the module docstring)."""
        history, words = _conversation_place(body["messages"])
        if self._last is not None:
            last_history, last_words, last_step = self._last
            same_turn = history == last_history and len(json.loads(words)) == len(json.loads(last_words))
            if same_turn and words != last_words and isinstance(last_step, Reply):  # re-heard: same step
                self._last = (history, words, last_step)
                return last_step
        try:
            step = self._steps.popleft()
        except IndexError:
            raise LookupError("the script has no steps left for this request") from None
        self._last = (history, words, step)
        return step

    async def _events(
        self, reply: Reply, model: str, completion_id: str, record: RecordedRequest, drop_after: int | None
    ) -> AsyncIterator[bytes]:
        created = int(time.time())
        for sent, (delta, finish_reason) in enumerate(chunk_deltas(reply)):
            if drop_after is not None and sent >= drop_after:
                record.end("dropped")
                raise _ScriptedDrop(f"scripted drop after {drop_after} chunks")
            if sent:
                await self._pause(reply.delay_first_s if sent == 1 else reply.delay_between_s)
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"
        record.end("completed")

    async def _client_left_within(self, request: Request, seconds: float) -> bool:
        """Wait `seconds` (less if the server shuts down); True as soon as the client goes away."""

        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.ensure_future(disconnected())
        pause = asyncio.ensure_future(self._pause(seconds))
        try:
            await asyncio.wait([watcher, pause], return_when=asyncio.FIRST_COMPLETED)
            return watcher.done() and not watcher.cancelled()
        finally:
            watcher.cancel()
            pause.cancel()
            await asyncio.wait([watcher, pause])

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server is shutting down."""
        if seconds > 0 and self._closing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    # -- running on the current loop --------------------------------------------------------------

    async def start(self) -> None:
        self._closing = asyncio.Event()
        logging.getLogger("uvicorn.error").addFilter(_not_a_scripted_drop)
        server = LoopbackServer(self.app(), host=self.host, lifespan="off", timeout_graceful_shutdown=2)
        await server.__aenter__()
        self._server, self.port = server, server.port

    async def stop(self) -> None:
        if self._server is None:
            return
        assert self._closing is not None
        self._closing.set()
        await self._server.__aexit__(None, None, None)
        self._server = None

    async def __aenter__(self) -> ScriptedLlmServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- running on a thread of its own (for sync callers) ----------------------------------------

    def __enter__(self) -> ScriptedLlmServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._thread_loop = asyncio.get_running_loop()
            self._thread_stop = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
            ready.set()
            if not failure:
                await self._thread_stop.wait()
                await self.stop()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="scripted-llm", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise RuntimeError("scripted LLM server failed to start") from failure[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is None or self._thread_loop is None or self._thread_stop is None:
            return
        self._thread_loop.call_soon_threadsafe(self._thread_stop.set)
        self._thread.join(timeout=10)
        self._thread = self._thread_loop = self._thread_stop = None
