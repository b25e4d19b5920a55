"""The embedded model using tools on this machine: warm-up, then tool-calling turns, timed.

    python benchmarks/embedded_tool_turn.py [--model bundled:qwen2.5-coder-1.5b] [--threads 2]

The agent's system prompt and the built-in tool schemas are pre-filled at warm-up, as the pod does;
each caller line is then one turn with `tool_choice="auto"`. When the model calls a tool, a canned
result for that call goes back as the tool message and the model answers from it (the session's
loop, without the session). Prints, per turn: time to the first event (text or tool call), the
whole turn, what the model did, and the share of spoken replies that were real text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from agents.engines.local.llama import LlamaCppChatModel
from agents.engines.local.llama_weights import demo_model
from agents.engines.protocols import TextDelta, ToolCallRequest
from db import BusinessData, SafeQuery, in_memory
from tools import BUILTIN, builtin_tools
from tools.schema import tool_schema

SYSTEM = (
    "You are the phone agent of Switchboard Shop. The caller is verified. Use the tools to look up their "
    "orders and appointments; never guess. Answer in one or two short sentences."
)
CALLER_LINES = (
    "Hi, what is the status of my order 50004?",
    "Hello, who am I speaking with?",
    "Can you list my recent orders?",
    "Thanks, that is all. Goodbye.",
)
CANNED_RESULTS: dict[str, dict[str, Any]] = {
    "get_order_status": {"order_id": "O-50004", "status": "shipped", "carrier": "UPS", "eta": "2026-12-03"},
    "list_recent_orders": {"orders": [{"order_id": "O-50004", "status": "shipped"}]},
    "find_customer": {"customer_id": "C-1001", "name": "Ada Lovelace"},
}


async def turn(model: LlamaCppChatModel, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    first: float | None = None
    text, calls = "", []
    async for event in model.stream(messages, tools, "auto"):
        if first is None:
            first = time.perf_counter() - started
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, ToolCallRequest):
            calls.append(event)
    return {"ttft_s": first or 0.0, "total_s": time.perf_counter() - started, "text": text, "calls": calls}


async def main(model_name: str, threads: int) -> None:
    tools = [tool_schema(tool) for tool in builtin_tools(BusinessData(SafeQuery(in_memory())), list(BUILTIN))]
    started = time.perf_counter()
    model = LlamaCppChatModel(model_name, n_threads=threads, temperature=0.0, max_tokens=80, n_ctx=4096)
    print(f"{model_name}: loaded in {time.perf_counter() - started:.1f} s ({threads} threads)")
    started = time.perf_counter()
    await model.warm_up(SYSTEM, tools)
    print(f"warm-up (system prompt + {len(tools)} tool schemas) {time.perf_counter() - started:.1f} s")
    ttfts, spoken, said = [], 0, 0
    try:
        for line in CALLER_LINES:
            messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": line}]
            result = await turn(model, messages, tools)
            ttfts.append(result["ttft_s"])
            step = f"  caller: {line}\n    TTFT {result['ttft_s']:.2f} s, turn {result['total_s']:.2f} s: "
            if not result["calls"]:
                spoken += 1
                said += bool(result["text"].strip())
                print(step + f"says {result['text']!r}")
                continue
            call = result["calls"][0]
            print(step + f"calls {call.name}({call.arguments})")
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                    ],
                }
            )
            canned = CANNED_RESULTS.get(call.name, {"error": "not available in this benchmark"})
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(canned)})
            answer = await turn(model, messages, tools)
            spoken += not answer["calls"]
            said += bool(answer["text"].strip()) and not answer["calls"]
            what = f"calls {answer['calls'][0].name}" if answer["calls"] else f"says {answer['text']!r}"
            print(f"    after the result: TTFT {answer['ttft_s']:.2f} s, turn {answer['total_s']:.2f} s: {what}")
    finally:
        model.close()
    print(f"median first-step TTFT {statistics.median(ttfts):.2f} s; spoken replies with text: {said}/{spoken}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="bundled name or .gguf path (default: the demo's model)")
    parser.add_argument("--threads", type=int, default=2)
    options = parser.parse_args()
    asyncio.run(main(options.model or demo_model(), options.threads))
