"""One turn of an in-process model that may call tools: it speaks, or it calls one tool.

Why not llama-cpp-python's `chatml-function-calling` handler: under `tool_choice="auto"` it
generates the spoken reply under the grammar meant for function names (empty replies, or the text
`functions.<name>:`), and it hands every schema to llama.cpp as it is (a pattern llama.cpp rejects
leaves a missing grammar, and the process segfaults). Here a turn takes two steps:
1. the model chooses, under a grammar that allows only `message:` or `functions.<name>:`;
2. a message is free text, streamed, and may not end before it says something; a call's arguments
   are generated under the tool's grammar-safe JSON grammar (see `grammar_schema`).
The prompt is ChatML with the function list in the system turn, in the format that handler used,
so the tests' behaviour carries over. One call per turn: the session runs the next step itself.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agents.engines.local.grammar_schema import prompt_schema, tool_grammar, with_nulls
from agents.engines.protocols import ChatEvent, ChatModelUnavailable, StreamEnd, TextDelta, ToolCallRequest

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
MAX_CHOICE_TOKENS = 32
"""Bound on the tokens of the choice step (`functions.` plus a name of at most 64 characters)."""
_PROMPT_DROPPED = frozenset({"additionalProperties", "title", "strict"})
_INSTRUCTIONS = (
    "\n\nYou can respond to users messages with either a single message or one function call."
    "\n\nTo respond with a message begin the message with 'message:', use the following format:"
    "\n\nmessage:\n<message>"
    "\n\nTo respond with a function call begin the message with 'functions.<function_name>:',"
    " use the following format:"
    '\n\nfunctions.<function_name>:\n{ "arg1": "value1", "arg2": "value2" }'
)


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of generated text; the last one of a completion carries why it ended."""

    text: str
    finish_reason: str | None = None


class Complete(Protocol):
    """One streamed completion of `prompt`, optionally under a GBNF grammar. `require_text`: the
    completion may not end before it holds a visible character."""

    def __call__(
        self, prompt: str, *, grammar: str | None, max_tokens: int, temperature: float, require_text: bool = False
    ) -> Iterator[Piece]: ...


@dataclass(frozen=True, slots=True)
class PreparedTool:
    """A tool as the prompt shows it and as the grammar constrains its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    """The schema the caller sent (strict: nullable fields listed as required), for `with_nulls`."""
    shown: str
    """The parameters as the prompt shows them: nullable fields optional, no closing noise."""
    grammar: str


def prepare_tool(tool: Any, compiles: Callable[[str], bool]) -> PreparedTool:
    """An OpenAI `tools` entry made ready for the prompt and the grammar; a malformed one is a clear error."""
    fn = tool.get("function") if isinstance(tool, dict) else None
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ChatModelUnavailable(f"a tool needs a function name of letters, digits, '_' or '-': {tool!r:.200}")
    parameters = fn.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise ChatModelUnavailable(f"tool {name!r}: parameters must be a JSON schema object")
    shown = _without(prompt_schema(parameters), _PROMPT_DROPPED)
    return PreparedTool(
        name=name,
        description=str(fn.get("description") or ""),
        parameters=parameters,
        shown=json.dumps(shown, separators=(", ", ": ")),
        grammar=tool_grammar(parameters, compiles),
    )


def _without(node: Any, keys: frozenset[str]) -> Any:
    """`node` without `keys` at any depth (property names are names, never dropped)."""
    if isinstance(node, dict):
        out = {k: _without(v, keys) for k, v in node.items() if k not in keys and k != "properties"}
        if isinstance(node.get("properties"), dict):
            out["properties"] = {name: _without(prop, keys) for name, prop in node["properties"].items()}
        return out
    if isinstance(node, list):
        return [_without(item, keys) for item in node]
    return node


# -- the prompt -----------------------------------------------------------------------------------


def _turn(role: str, text: str) -> str:
    return f"{IM_START}{role}\n{text}{IM_END}\n"


def system_turn(system: str, tools: Sequence[PreparedTool]) -> str:
    """The system turn with the function list: every prompt of an agent starts with it, which is
    what warm-up evaluates ahead of the first caller."""
    if not tools:
        return _turn("system", system)
    listing = "".join(
        f"\nfunctions.{t.name}:\n" + (f"// {t.description}\n" if t.description else "") + t.shown + "\n" for t in tools
    )
    return _turn("system", f"{system}\n\nYou have access to the following functions:\n{listing}{_INSTRUCTIONS}")


def render_prompt(messages: Sequence[dict[str, Any]], tools: Sequence[PreparedTool]) -> str:
    """The whole prompt, up to the open assistant turn. `messages` come from `plain_messages`
    (system first; tool results already turned into user turns)."""
    parts: list[str] = []
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "system":
            parts.append(system_turn(content, tools))
        elif role == "user":
            parts.append(_turn("user", content))
        elif role == "assistant":
            said = [f"message:\n{content}"] if content else []
            calls = [
                f"functions.{c['function']['name']}:\n{c['function']['arguments']}"
                for c in message.get("tool_calls") or []
            ]
            parts.append(_turn("assistant", "\n".join(said + calls)))
    return "".join(parts) + f"{IM_START}assistant\n"


def choice_grammar(tools: Sequence[PreparedTool], allow_message: bool) -> str:
    """GBNF for the choice step: a message, or the name of one of `tools`."""
    options = (['"message:"'] if allow_message else []) + [json.dumps(f"functions.{t.name}:") for t in tools]
    return "root ::= " + " | ".join(options) + "\n"


# -- the turn -------------------------------------------------------------------------------------


class ToolTurn:
    """Runs one turn with tools through `complete` and yields the session's chat events."""

    def __init__(self, complete: Complete, *, max_tokens: int, temperature: float) -> None:
        self._complete = complete
        self._max_tokens = max_tokens
        self._temperature = temperature

    def run(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[PreparedTool], choice: str | dict[str, Any]
    ) -> Iterator[ChatEvent]:
        """`choice`: "auto", "none", "required" or `{"type": "function", "function": {"name": ...}}`."""
        prompt = render_prompt(messages, tools)
        if choice == "none":
            yield from self._speak(prompt)
            return
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            tool = next((t for t in tools if t.name == name), None)
            if tool is None:
                raise ChatModelUnavailable(f"tool_choice names {name!r}, which is not among the tools")
            yield from self._call(prompt, tool)
            return
        if choice not in ("auto", "required"):
            raise ChatModelUnavailable(f"unsupported tool_choice {choice!r}")
        tool = self._choose(prompt, tools, allow_message=choice == "auto")
        yield from (self._speak(prompt) if tool is None else self._call(prompt, tool))

    def _choose(self, prompt: str, tools: Sequence[PreparedTool], *, allow_message: bool) -> PreparedTool | None:
        grammar = choice_grammar(tools, allow_message)
        pieces = self._complete(prompt, grammar=grammar, max_tokens=MAX_CHOICE_TOKENS, temperature=0.0)
        text = "".join(piece.text for piece in pieces).strip()
        name = text.removeprefix("functions.").removesuffix(":") if text.startswith("functions.") else None
        tool = next((t for t in tools if t.name == name), None)
        if tool is None and not allow_message:
            return tools[0]  # cut short before a name was complete: "required" still calls a tool
        return tool

    def _speak(self, prompt: str) -> Iterator[ChatEvent]:
        finish = None
        pieces = self._complete(
            prompt + "message:\n",
            grammar=None,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            require_text=True,
        )
        for piece in pieces:
            if piece.text:
                yield TextDelta(piece.text)
            finish = piece.finish_reason or finish
        yield StreamEnd(finish or "stop")

    def _call(self, prompt: str, tool: PreparedTool) -> Iterator[ChatEvent]:
        pieces = self._complete(
            prompt + f"functions.{tool.name}:\n",
            grammar=tool.grammar,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
        )
        arguments = "".join(piece.text for piece in pieces).strip()
        try:
            arguments = json.dumps(with_nulls(tool.parameters, json.loads(arguments)))
        except ValueError:
            pass  # cut short at max_tokens: the executor reports the invalid arguments to the model
        yield ToolCallRequest(f"call_{secrets.token_hex(6)}", tool.name, arguments)
        yield StreamEnd("tool_calls")
