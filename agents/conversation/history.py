"""The conversation as the model sees it: bounded, and true to what the caller actually heard.

A reply is stored as the parts that were played, each tied to a mark. When the caller barges in,
the carrier reports which marks were heard; the assistant message then holds only those parts, so
the model never believes it said something the caller never heard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from agents.engines.protocols import Message, ToolCallRequest


@dataclass
class SpokenPart:
    text: str
    mark: str
    heard: bool | None = None
    """None until the carrier reports the mark."""


@dataclass
class AssistantReply:
    """One model step: what it said (as played parts) and the tools it called."""

    parts: list[SpokenPart] = field(default_factory=list)
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    interrupted: bool = False
    """Set on barge-in: parts whose mark was not reported heard are then taken as unheard."""

    def heard_text(self) -> str:
        def heard(part: SpokenPart) -> bool:
            return part.heard is True or (part.heard is None and not self.interrupted)

        return " ".join(part.text for part in self.parts if heard(part)).strip()

    def spoken_text(self) -> str:
        return " ".join(part.text for part in self.parts).strip()


@dataclass
class _ToolResult:
    call_id: str
    content: str


_Entry = str | AssistantReply | _ToolResult
"""A user utterance, an assistant step, or a tool's result."""


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """Where the history stood: the newest turn then (None: empty) and how many entries it had."""

    turn: list[_Entry] | None
    entries: int


class ConversationHistory:
    """The messages of one call, kept under `budget_chars` by dropping the oldest caller turns."""

    def __init__(self, budget_chars: int) -> None:
        self.budget_chars = budget_chars
        """Bound on the characters of all messages sent (system prompt excluded)."""
        self._turns: list[list[_Entry]] = []

    def add_user(self, text: str) -> None:
        self._turns.append([text])

    def last_user_text(self) -> str | None:
        """The caller's newest words kept (None: none yet, or dropped for the budget)."""
        for turn in reversed(self._turns):
            if turn and isinstance(turn[0], str):
                return turn[0]
        return None

    def add_reply(self, reply: AssistantReply) -> None:
        self._current().append(reply)

    def add_tool_result(self, call_id: str, content: str) -> None:
        self._current().append(_ToolResult(call_id, content))

    def checkpoint(self) -> Checkpoint:
        """Mark where the history stands now, so a speculative reply can be undone (`rollback`)."""
        turn = self._turns[-1] if self._turns else None
        return Checkpoint(turn, len(turn) if turn is not None else 0)

    def rollback(self, checkpoint: Checkpoint) -> None:
        """Forget everything added since `checkpoint`: a reply started before the caller had
        finished, dropped because they went on (their words come back whole in the next turn).

        Found by identity, not position: `messages` may have dropped old turns meanwhile. If the
        checkpoint's turn itself was dropped, every turn left is newer than it."""
        index = next((i for i, turn in enumerate(self._turns) if turn is checkpoint.turn), -1)
        del self._turns[index + 1 :]
        if index >= 0:
            del self._turns[index][checkpoint.entries :]

    def close_unanswered_tool_calls(self, reason: str) -> None:
        """Give every tool call without a result one, so the history stays valid for the API."""
        answered = {e.call_id for turn in self._turns for e in turn if isinstance(e, _ToolResult)}
        for turn in self._turns:
            for entry in list(turn):
                if isinstance(entry, AssistantReply):
                    for call in entry.tool_calls:
                        if call.id not in answered:
                            turn.append(_ToolResult(call.id, json.dumps({"error": reason})))
                            answered.add(call.id)

    def messages(self, system_prompt: str) -> list[Message]:
        """The system prompt and the newest turns that fit the budget (the newest always fits)."""
        rendered = [self._render(turn) for turn in self._turns]
        kept: list[list[Message]] = []
        total = 0
        for turn_messages in reversed(rendered):
            size = sum(_size(m) for m in turn_messages)
            if kept and total + size > self.budget_chars:
                break
            kept.append(turn_messages)
            total += size
        self._turns = self._turns[len(self._turns) - len(kept) :]
        out: list[Message] = [{"role": "system", "content": system_prompt}]
        for turn_messages in reversed(kept):
            out.extend(turn_messages)
        return out

    def _current(self) -> list[_Entry]:
        if not self._turns:  # the greeting, or a reply before the caller said anything
            self._turns.append([])
        return self._turns[-1]

    @staticmethod
    def _render(turn: list[_Entry]) -> list[Message]:
        messages: list[Message] = []
        for entry in turn:
            if isinstance(entry, str):
                messages.append({"role": "user", "content": entry})
            elif isinstance(entry, _ToolResult):
                messages.append({"role": "tool", "tool_call_id": entry.call_id, "content": entry.content})
            else:
                text = entry.heard_text()
                if not text and not entry.tool_calls:
                    continue  # nothing was heard and nothing was done: the model said nothing
                message: Message = {"role": "assistant", "content": text or None}
                if entry.tool_calls:
                    message["tool_calls"] = [
                        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                        for c in entry.tool_calls
                    ]
                messages.append(message)
        return messages


def _size(message: Message) -> int:
    size = len(message.get("content") or "")
    for call in message.get("tool_calls", ()):
        size += len(call["function"]["name"]) + len(call["function"]["arguments"])
    return size
