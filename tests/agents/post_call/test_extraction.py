"""One post-call request against the scripted OpenAI-compatible server (a FAKE model over real HTTP)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from agents.engines.remote.openai_chat import OpenAIChatModel
from agents.post_call import MAX_TRANSCRIPT_CHARS, TOOL_NAME, PostCallConfig, PostCallFailed, extract, transcript_text
from agents.testing.scripted_llm import Fail, Reply, ScriptedLlmServer, ScriptedToolCall

DECLARED = PostCallConfig(
    summary=True,
    fields=[
        {"name": "reason_for_call", "kind": "text"},
        {"name": "resolved", "kind": "yes_no"},
        {"name": "mood", "kind": "choice", "choices": ["happy", "angry"]},
    ],
)
TRANSCRIPT = [
    {"role": "agent", "text": "Hello, how can I help?"},
    {"role": "caller", "text": "My card [card number 1] was charged twice."},
    {"role": "system", "text": "tool lookup_order"},
    {"role": "agent", "text": "I have refunded the second charge."},
]


def answer(arguments: object) -> Reply:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Reply(tool_calls=[ScriptedToolCall(TOOL_NAME, text)])


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLlmServer]:
    async with ScriptedLlmServer() as server:
        yield server


def model(server: ScriptedLlmServer) -> OpenAIChatModel:
    return OpenAIChatModel(server.base_url, model="scripted", retries=0, first_token_timeout_s=2)


async def test_the_model_fills_the_declared_fields(server: ScriptedLlmServer) -> None:
    server.push(
        answer(
            {
                "summary": "Double charge refunded.",
                "fields": {"reason_for_call": "double charge", "resolved": True, "mood": None},
            }
        )
    )
    result = await extract(model(server), DECLARED, TRANSCRIPT)
    assert result.summary == "Double charge refunded."
    assert result.fields == {"reason_for_call": "double charge", "resolved": True, "mood": None}
    sent = server.requests[-1]
    assert sent.tool_choice == "required" and [t["function"]["name"] for t in sent.tools or []] == [TOOL_NAME]
    assert sent.tools and sent.tools[0]["function"]["strict"] is True
    prompt = sent.messages[-1]["content"]
    assert "Caller: My card [card number 1] was charged twice." in prompt and "[system: tool lookup_order]" in prompt


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (Fail(500, "boom"), "model unavailable"),
        (answer("not json at all"), "Invalid JSON"),
        (
            answer({"summary": "x", "fields": {"reason_for_call": "x", "resolved": "yes", "mood": "sad"}}),
            "fields.resolved",
        ),
        (Reply(text="I would rather talk."), f"did not call {TOOL_NAME}"),
    ],
)
async def test_a_failing_model_is_a_clear_failure(server: ScriptedLlmServer, step: object, reason: str) -> None:
    server.push(step)  # type: ignore[arg-type]
    with pytest.raises(PostCallFailed) as caught:
        await extract(model(server), DECLARED, TRANSCRIPT)
    assert reason in caught.value.reason
    assert "sad" not in caught.value.reason and "[card number 1]" not in caught.value.reason  # no call content


def test_a_long_transcript_keeps_its_start_and_end_within_the_budget() -> None:
    lines = [{"role": "caller", "text": f"line {i} " + "x" * 90} for i in range(1000)]
    text = transcript_text(lines)
    assert len(text) <= MAX_TRANSCRIPT_CHARS
    assert text.startswith("Caller: line 0 ") and "line 999 " in text.splitlines()[-1]
    assert "lines of the call cut here" in text
    assert len(transcript_text([{"role": "caller", "text": "y" * 50_000}], 1000)) <= 1000
