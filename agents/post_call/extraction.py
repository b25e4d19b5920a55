"""One post-call request: the stored transcript (bounded) to the chat model, one strict tool back.

The transcript comes from the call record, already redacted (card numbers, PINs and keypad entries
are placeholders there). It is never logged, and no error message here quotes it or the model's
arguments: a failure says where the arguments were wrong and why, not what they said.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agents.engines.protocols import ChatModel, ChatModelUnavailable, Message, ToolCallRequest
from agents.post_call.declaration import TOOL_NAME, PostCallConfig, arguments_model, tool_schema

MAX_TRANSCRIPT_CHARS = 24_000
"""Bound on the transcript text sent: past it the middle of the call is cut (its start says why the
caller called, its end how it ended)."""
MAX_ERROR_CHARS = 300
"""Bound on a failure's reason as stored on the record."""
MAX_ERRORS_LISTED = 3
"""Validation errors named in a failure's reason."""

_ROLES = {"caller": "Caller", "agent": "Agent"}
_MARK_ROOM = 60
"""Characters kept for the line that notes the cut."""
SYSTEM_PROMPT = (
    "You read the transcript of a finished phone call between a caller and an AI phone agent. "
    f"Call the {TOOL_NAME} tool exactly once with what the transcript shows. Use null for a field "
    "the call did not settle. Lines in square brackets are events, not speech."
)


@dataclass(frozen=True, slots=True)
class PostCallResult:
    """Checked against the declaration: `fields` has every declared name (None: not settled)."""

    summary: str | None
    fields: dict[str, Any]


class PostCallFailed(Exception):
    """No result can be stored; the message (bounded, free of call content) says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason[:MAX_ERROR_CHARS])
        self.reason = reason[:MAX_ERROR_CHARS]


def _line(turn: Mapping[str, Any]) -> str:
    role, text = str(turn.get("role", "")), str(turn.get("text", ""))
    return f"{_ROLES[role]}: {text}" if role in _ROLES else f"[{role}: {text}]"


def transcript_text(transcript: Sequence[Mapping[str, Any]], budget: int = MAX_TRANSCRIPT_CHARS) -> str:
    """The transcript as `Caller: ...` / `Agent: ...` lines within `budget` characters: whole lines
    from the start and from the end, the middle replaced by a note of how many lines were cut."""
    lines = [_line(turn) for turn in transcript]
    if sum(len(line) + 1 for line in lines) <= budget:
        return "\n".join(lines)
    half = (budget - _MARK_ROOM) // 2
    head: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > half:
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    used = 0
    for line in reversed(lines[len(head) :]):
        if used + len(line) + 1 > half:
            break
        tail.append(line)
        used += len(line) + 1
    tail.reverse()
    if not head and not tail:  # one line longer than the budget
        return lines[0][: budget - 40] + " [cut]"
    cut = len(lines) - len(head) - len(tail)
    return "\n".join([*head, f"[... {cut} lines of the call cut here ...]", *tail])


def request_messages(transcript: Sequence[Mapping[str, Any]], budget: int = MAX_TRANSCRIPT_CHARS) -> list[Message]:
    text = transcript_text(transcript, budget) or "[the call has no transcript]"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Transcript:\n{text}"},
    ]


def _reason(error: ValidationError) -> str:
    """Where and why the arguments were refused, never their values."""
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or 'arguments'}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    more = f" (+{len(problems) - MAX_ERRORS_LISTED} more)" if len(problems) > MAX_ERRORS_LISTED else ""
    return "the model's arguments do not match the declared fields: " + "; ".join(problems[:MAX_ERRORS_LISTED]) + more


def check_arguments(config: PostCallConfig, arguments: str) -> PostCallResult:
    """The model's raw argument text checked against the declaration, or `PostCallFailed`."""
    model = arguments_model(config)
    try:
        checked = model.model_validate_json(arguments)
    except ValidationError as exc:
        raise PostCallFailed(_reason(exc)) from None
    values = checked.model_dump(by_alias=True)
    fields = values.get("fields") or {}
    return PostCallResult(summary=values.get("summary"), fields={f.name: fields.get(f.name) for f in config.fields})


async def extract(chat: ChatModel, config: PostCallConfig, transcript: Sequence[Mapping[str, Any]]) -> PostCallResult:
    """Ask the model once, with the one tool required; `PostCallFailed` when no checked result comes."""
    calls: list[ToolCallRequest] = []
    try:
        events = chat.stream(request_messages(transcript), [tool_schema(config)], "required")
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if isinstance(event, ToolCallRequest):
                    calls.append(event)
    except ChatModelUnavailable as exc:
        raise PostCallFailed(f"model unavailable: {exc}") from None
    ours = [call for call in calls if call.name == TOOL_NAME]
    if not ours:
        raise PostCallFailed(f"the model did not call {TOOL_NAME}")
    return check_arguments(config, ours[0].arguments)
