"""The chat model in-process with llama.cpp, for machines without a GPU server (and for offline tests).

Generation runs on an `InferencePool` thread and hands events back to the event loop through a
channel that holds at most `max_buffered_events`, so a slow consumer pauses the model instead of
piling text up in memory. Cancelling the consumer (barge-in) raises a flag the thread checks at
every token, so the model stops within a token or two and the pool is free for the next turn.

A turn with tools goes through our own `ToolTurn` (see tool_turn.py for why not llama-cpp-python's
`chatml-function-calling` handler): the model chooses between speaking and one tool under a tiny
grammar, then speaks freely (streamed) or writes the arguments under the tool's grammar-safe JSON
grammar. Every grammar is checked with llama.cpp's own parser before it is used, because
llama-cpp-python goes on with a grammar llama.cpp rejected and the process segfaults. Tool
results are shown to the model as user turns that say which function returned them.

Weights (llama_weights.py): SmolLM2-135M by default, tiny and weak, for proving the plumbing
offline; Qwen2.5-Coder-1.5B-Instruct for a model that really uses the tools (the demo's).
`warm_up` evaluates the agent's system prompt and tool list ahead of the first caller, so the
first turn finds them in the prompt cache.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.engines.local.llama_weights import BUNDLED, BundledWeights, resolve_weights
from agents.engines.local.pool import InferencePool
from agents.engines.local.tool_turn import IM_END, Piece, PreparedTool, ToolTurn, prepare_tool, system_turn
from agents.engines.protocols import (
    ChatEvent,
    ChatModelUnavailable,
    Message,
    StreamEnd,
    TextDelta,
    ToolChoice,
)

INSTALL_HINT = "pip install 'switchboard[embedded]'"
MAX_PREPARED_TOOLS = 64
"""Bound on tool schemas kept prepared (prompt text and checked grammar), oldest dropped first."""

__all__ = ["BUNDLED", "INSTALL_HINT", "BundledWeights", "LlamaCppChatModel", "plain_messages", "resolve_weights"]


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


AFTER_RESULT = "(Answer the caller from this result now, unless you need a different function.)"
"""Follows each tool result: small models (Qwen2.5 1.5B on the demo) otherwise tend to call the
same function again with the same arguments until the tool-step limit."""


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
            out.append({"role": "user", "content": f"Result of functions.{name}:\n{content}\n{AFTER_RESULT}"})
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


# -- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any] | None
    """None: no tools (the model's own chat template); else what `ToolTurn.run` takes."""


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
        self._llama_cpp = llama_cpp
        self._llama = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False)
        self._prepared: OrderedDict[str, PreparedTool] = OrderedDict()  # bounded by MAX_PREPARED_TOOLS
        self._checked: OrderedDict[str, bool] = OrderedDict()  # grammars llama.cpp parsed; same bound
        self._pool = pool or InferencePool("llm", max_workers=1, max_pending=8)
        self._owns_pool = pool is None
        self._lock = threading.Lock()  # one Llama context: one generation at a time, whatever the pool size

    async def warm_up(self, system_prompt: str | None = None, tools: Sequence[dict[str, Any]] = ()) -> None:
        """Evaluate a prompt now. llama.cpp's first evaluation in a process costs seconds (the
        weights are paged in and laid out), and a long system prompt with its tool list costs
        seconds more on a bigger model: given the agent's system prompt and tool schemas, their
        system turn is evaluated here and stays in the prompt cache for the first caller's turn."""
        await self._pool.run(self._warm_up, system_prompt, list(tools))

    def _warm_up(self, system_prompt: str | None, tools: list[dict[str, Any]]) -> None:
        with self._lock:
            if system_prompt is None and not tools:
                self._llama.create_completion("Hello", max_tokens=1)
                return
            prepared = [self._prepare(tool) for tool in tools]
            self._llama.create_completion(system_turn(system_prompt or "", prepared), max_tokens=1)

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
        if not tools:
            return _Request(plain_messages(messages, with_tools=False), [], None)
        choice: Any = "auto" if tool_choice is None else tool_choice
        if not (choice in ("auto", "none", "required") or isinstance(choice, dict)):
            raise ChatModelUnavailable(f"unsupported tool_choice {choice!r}")
        return _Request(plain_messages(messages, with_tools=True), list(tools), choice)

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
        tools = [self._prepare(tool) for tool in request.tools]
        turn = ToolTurn(
            lambda prompt, **options: self._complete(channel, prompt, **options),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )
        for event in turn.run(request.messages, tools, request.tool_choice or "auto"):
            channel.put(event)

    def grammar_accepted(self, grammar: str) -> bool:
        """Whether llama.cpp accepts a GBNF grammar (a dry-run or a test can ask without generating)."""
        with self._lock:
            return self._compiles(grammar)

    def tool_grammar(self, tool: dict[str, Any]) -> str:
        """The GBNF grammar this model constrains `tool`'s arguments with (after making it safe)."""
        with self._lock:
            return self._prepare(tool).grammar

    def _prepare(self, tool: Any) -> PreparedTool:
        """A tool schema prepared once (prompt text, checked grammar) and kept, within a bound."""
        key = json.dumps(tool, sort_keys=True, default=str)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = prepare_tool(tool, self._compiles)
            while len(self._prepared) > MAX_PREPARED_TOOLS:
                self._prepared.popitem(last=False)
        self._prepared.move_to_end(key)
        return prepared

    def _compiles(self, grammar: str) -> bool:
        """Whether llama.cpp's own parser accepts `grammar` (llama-cpp-python would go on with a
        grammar it rejected, and crash the process at the first token)."""
        known = self._checked.get(grammar)
        if known is None:
            sampler = self._llama_cpp.llama_sampler_init_grammar(
                self._llama._model.vocab, grammar.encode("utf-8"), b"root"
            )
            known = self._checked[grammar] = bool(sampler)
            if sampler:
                self._llama_cpp.llama_sampler_free(sampler)
            while len(self._checked) > MAX_PREPARED_TOOLS:
                self._checked.popitem(last=False)
        return known

    def _complete(
        self,
        channel: _Channel,
        prompt: str,
        *,
        grammar: str | None,
        max_tokens: int,
        temperature: float,
        require_text: bool = False,
    ) -> Iterator[Piece]:
        """One streamed completion for `ToolTurn`, watched for a cancel at every token."""
        options: dict[str, Any] = {}
        if grammar is not None:
            if not self._compiles(grammar):
                raise ChatModelUnavailable("llama.cpp rejected a tool grammar")
            options["grammar"] = self._llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)
        if require_text:
            options["logits_processor"] = self._llama_cpp.LogitsProcessorList([_SaysSomething(self._llama)])
        chunks = self._llama.create_completion(
            prompt,
            max_tokens=min(max_tokens, self.max_tokens),
            temperature=temperature,
            stop=[IM_END],
            stream=True,
            **options,
        )
        for chunk in self._watched(chunks, channel):
            choice = chunk["choices"][0]
            yield Piece(choice.get("text") or "", choice.get("finish_reason"))

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
        finish_reason = None
        for chunk in chunks:
            choice = chunk["choices"][0]
            delta = choice.get("delta") or {}
            if delta.get("content"):
                channel.put(TextDelta(delta["content"]))
            finish_reason = choice.get("finish_reason") or finish_reason
        channel.put(StreamEnd(finish_reason))


class _SaysSomething:
    """A logits processor that bans the end of the turn until the reply holds a visible character:
    a spoken reply is never empty."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama
        ends = {int(llama.token_eos())}
        im_end = llama.tokenize(IM_END.encode("utf-8"), add_bos=False, special=True)
        if len(im_end) == 1:
            ends.add(int(im_end[0]))
        self._ends = sorted(ends)
        self._start: int | None = None
        self._said = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._said:
            return scores
        if self._start is None:
            self._start = len(input_ids)
        elif self._llama.detokenize(list(input_ids[self._start :])).decode("utf-8", "ignore").strip():
            self._said = True
            return scores
        scores[self._ends] = -np.inf
        return scores


def _carries_text(chunk: dict[str, Any]) -> bool:
    """Whether a completion or chat chunk from llama.cpp holds generated text (not just a role or an end)."""
    choice = chunk["choices"][0]
    delta = choice.get("delta") or {}
    return bool(choice.get("text") or delta.get("content") or delta.get("tool_calls"))


def _report_unstarted(job: asyncio.Future[None], channel: _Channel) -> None:
    """A job refused before it reached a thread (the pool is overloaded) still ends the stream."""
    if not job.cancelled() and job.exception() is not None:
        channel.finish(job.exception())
