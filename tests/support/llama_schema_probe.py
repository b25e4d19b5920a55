"""Hands tool schemas to the embedded model's grammar path, in a process of its own.

Run by tests/agents/engines/local/test_tool_grammars.py as
`python -m tests.support.llama_schema_probe TOOLS.json REPORT.json`: a schema that crashed
llama.cpp would end this process (exit 139), not the test run, and the test reports the exit code.
For every tool it records whether llama.cpp would have rejected the schema as it was sent (the
grammar llama-cpp-python's own converter makes of it), the grammar used instead, and the
arguments the model wrote under it when made to call that tool; then the spoken replies under
`tool_choice="auto"` and `"none"` with every tool offered.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from agents.engines.local.llama import LlamaCppChatModel
from agents.engines.protocols import ChatEvent, TextDelta, ToolCallRequest

SYSTEM = "You are the phone agent of a small shop and a clinic. Answer in one short sentence."
ASK = "My email is grace@example.com."
SPOKEN_TURNS = ("Hello!", "What time do you open tomorrow?", "Thank you, that is all.", "Can you hear me?")


async def _collect(events: AsyncIterator[ChatEvent]) -> list[ChatEvent]:
    return [event async for event in events]


def _raw_grammar_accepted(model: LlamaCppChatModel, parameters: dict[str, Any]) -> bool | None:
    """Whether llama.cpp accepts the grammar made from the schema as sent (None: no grammar at all)."""
    try:
        grammar = json_schema_to_gbnf(json.dumps(parameters))
    except Exception:
        return None
    return model.grammar_accepted(grammar)


async def probe(tools: list[dict[str, Any]]) -> dict[str, Any]:
    model = LlamaCppChatModel(temperature=0.0, max_tokens=96)
    report: dict[str, Any] = {"tools": [], "spoken": []}
    try:
        await model.warm_up(SYSTEM, tools)
        conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK}]
        for tool in tools:
            name = tool["function"]["name"]
            grammar = model.tool_grammar(tool)
            choice = {"type": "function", "function": {"name": name}}
            events = await _collect(model.stream(conversation, tools, choice))  # one prompt: cached
            calls = [e for e in events if isinstance(e, ToolCallRequest)]
            report["tools"].append(
                {
                    "name": name,
                    "raw_grammar_accepted": _raw_grammar_accepted(model, tool["function"]["parameters"]),
                    "grammar": "any JSON" if grammar == JSON_GBNF else "schema",
                    "arguments": calls[0].arguments if calls else None,
                }
            )
        broken = 'root ::= "\\"" [^@\\s]+ "\\""'  # the email pattern's escape, as llama.cpp saw it
        report["broken_grammar_accepted"] = model.grammar_accepted(broken)
        model.max_tokens = 32  # a spoken reply needs only a few words to show it is real text
        for choice_name in ("auto", "none"):
            for line in SPOKEN_TURNS:
                messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": line}]
                events = await _collect(model.stream(messages, tools, choice_name))
                report["spoken"].append(
                    {
                        "tool_choice": choice_name,
                        "user": line,
                        "text": "".join(e.text for e in events if isinstance(e, TextDelta)),
                        "tool_calls": [e.name for e in events if isinstance(e, ToolCallRequest)],
                    }
                )
    finally:
        model.close()
    return report


def main(argv: list[str]) -> int:
    tools_path, report_path = (Path(arg) for arg in argv)
    report = asyncio.run(probe(json.loads(tools_path.read_text(encoding="utf-8"))))
    report_path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
