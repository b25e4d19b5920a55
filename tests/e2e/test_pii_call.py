"""A whole call where the caller keys digits and reads out a card number: neither lands in the stored
record, the logs or the model's messages, and the payment tool still gets the card (issue 13,
acceptance 5).

Real VAD, Whisper and Kokoro in the real server, the Twilio simulator as the carrier, the scripted
model; the caller's words are made by Kokoro in another voice, as the demo makes them.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from agents.config import AgentConfig
from agents.testing.scripted_llm import Reply, ScriptedToolCall
from db import CallRecords, in_memory
from telephony.cli.demo import caller_says
from telephony.logs import json_handler
from telephony.simulator import Listen, Pause, Press, SimulatedCall
from tests.support.patient_caller import LAST_PAUSE_S, run_until
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN
from tests.support.speech import normalise
from tests.support.voice_harness import VoicePod, speech_onset_s, speech_tail_s, voice_pod
from tools import Tool, ToolArguments, ToolContext, ToolExecutor

CARD = "4539148803436467"
"""A Luhn-valid test card, read out digit by digit (no pauses: one caller turn)."""
SAID = "My card number is four five three nine one four eight eight zero three four three six four six seven."
KEYED = "97531"
HALVES_GAP_S = 1.0
"""Silence between the card's halves (last word to next word): longer than the end-of-turn silence
(600 ms), within its grace (700 ms more)."""
FRAGMENT = 6
"""Digits of the card in a row that count as a leak to the model (a receipt may show the first 6)."""
STANDARD = set(vars(logging.makeLogRecord({})))
"""A log record's own attributes (times, thread ids): not what a line says."""
PAYMENT = ScriptedToolCall("take_payment", '{"card": "[card number 1]"}', id="call_pay")


class Payment(ToolArguments):
    card: str


@pytest.fixture(scope="module")
def pod() -> Iterator[VoicePod]:
    database = in_memory()
    with voice_pod(database) as pod:
        yield pod
    asyncio.run(database.close())


@pytest.fixture(autouse=True)
def fresh_script(pod: VoicePod) -> Iterator[None]:
    with pod.scripted_call():
        yield


def strings(value: Any) -> Iterator[str]:
    """Every string inside a stored document or a request (keys and values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def tool_result(messages: list[dict[str, Any]]) -> bool:
    """The model's request after the payment tool ran: the call's last step."""
    return any(message.get("role") == "tool" for message in messages)


def leaks(texts: Iterator[str]) -> list[str]:
    """The texts that carry the card or the keyed digits, in digits or in words."""
    secrets = (normalise(CARD), normalise(KEYED))
    return [text for text in texts if any(secret in normalise(text) for secret in secrets)]


def card_fragments(texts: Iterator[str]) -> list[str]:
    """The texts that carry `FRAGMENT` digits of the card in a row: a card that reaches the model in
    parts (a speculative request in a pause while it is read out) has leaked as surely as a whole
    one. (For the model's messages, which hold few digits; in logs full of times it would misfire.)"""
    fragments = [normalise(CARD[i : i + FRAGMENT]) for i in range(len(CARD) - FRAGMENT + 1)]
    return [text for text in texts if any(fragment in normalise(text) for fragment in fragments)]


def test_keyed_digits_and_a_spoken_card_stay_out_of_the_record_the_logs_and_the_model(
    pod: VoicePod, caplog: pytest.LogCaptureFixture
) -> None:
    charged: list[str] = []

    async def take_payment(args: Payment, context: ToolContext) -> dict[str, str]:
        charged.append(args.card)
        return {"status": "approved", "card": args.card}

    tools = ToolExecutor([Tool("take_payment", "Charge the caller's card.", Payment, take_payment)])
    agent = pod.use_agent(AgentConfig(id="voice", greeting="Hello, payments desk."), tools)
    pod.llm.push(
        Reply(text="Thank you, I have that."),
        Reply(tool_calls=[PAYMENT]),
        Reply(text="Your payment is approved."),
    )
    written = io.StringIO()
    handler = json_handler(written)  # the pod's own log line format, with its redacting filter
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.INFO)  # the pod's default level
    try:
        script = [
            Pause(2.5),
            Press(f"{KEYED}#"),
            Listen(max_seconds=30.0),
            caller_says(pod.stack.tts, SAID),
            Pause(LAST_PAUSE_S),
        ]
        call = SimulatedCall(pod.url, AUTH_TOKEN, to=AGENT_NUMBER, script=script, tail_s=1.0)
        report = asyncio.run(run_until(call, lambda: any(tool_result(r.messages) for r in list(pod.llm.requests))))
        pod.wait_idle()
    finally:
        logging.getLogger().removeHandler(handler)

    # A pause while the card is read out may start a speculative reply, dropped when the caller goes
    # on: one more request each (they must not leak either, and are checked below with the rest).
    requests = [json.dumps(request.messages) for request in pod.llm.requests]
    assert 3 <= len(requests) <= 3 + agent.records[-1].speculation_wasted, report.render()
    # The flow worked: the model saw placeholders, and the tool got the card Whisper heard.
    assert "(The caller typed [keypad entry 1] on the keypad.)" in requests[0]
    assert "[card number 1]" in requests[-2], requests[-2]
    assert charged == [CARD], [r.messages[-1] for r in pod.llm.requests]
    assert '\\"card\\":\\"[card number 1]\\"' in requests[-1]  # the tool's echo, redacted for the model

    # 1. The model's messages.
    sent = [request.messages for request in pod.llm.requests]
    assert leaks(strings(sent)) == [] and card_fragments(strings(sent)) == []
    # 2. The stored record (transcript and tool audit) in the database.
    record = asyncio.run(CallRecords(pod.edge.database).get(agent.records[-1].call_sid))  # type: ignore[arg-type]
    assert record is not None and record["transcript"]
    assert leaks(strings(record)) == []
    assert any("[card number 1]" in line["text"] for line in record["transcript"])
    # 3. The logs: every record as emitted (message with its arguments, extra fields), and the pod's lines.
    emitted = [r.getMessage() for r in caplog.records]
    emitted += [value for r in caplog.records for key, value in vars(r).items() if key not in STANDARD]
    assert emitted and leaks(strings(emitted)) == []
    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    assert lines and leaks(strings(lines)) == []


def test_a_card_read_out_in_two_groups_with_a_long_pause_reaches_the_model_as_one_redacted_turn(
    pod: VoicePod,
) -> None:
    """The caller pauses between the card's halves for longer than the end-of-turn silence (600 ms):
    the first half is a turn of its own, which waits for more digits (`digits_grace_ms`), so the
    model never sees the halves (each too short to be recognised as a card) one by one."""
    charged: list[str] = []

    async def take_payment(args: Payment, context: ToolContext) -> dict[str, str]:
        charged.append(args.card)
        return {"status": "approved"}

    tools = ToolExecutor([Tool("take_payment", "Charge the caller's card.", Payment, take_payment)])
    pod.use_agent(AgentConfig(id="voice", greeting="Hello, payments desk."), tools)
    pod.llm.push(Reply(tool_calls=[PAYMENT]), Reply(text="Your payment is approved."))
    first = caller_says(pod.stack.tts, "My card number is four five three nine one four eight eight.")
    second = caller_says(pod.stack.tts, "Zero three four three six four six seven.")
    pause = HALVES_GAP_S - speech_tail_s(first) - speech_onset_s(second)  # Kokoro pads each end
    script = [Listen(max_seconds=30.0), first, Pause(max(0.0, pause)), second, Pause(LAST_PAUSE_S)]
    call = SimulatedCall(pod.url, AUTH_TOKEN, to=AGENT_NUMBER, script=script, tail_s=1.0)
    report = asyncio.run(run_until(call, lambda: any(tool_result(r.messages) for r in list(pod.llm.requests))))
    pod.wait_idle()

    # The halves reached the model together, in the first request, as one caller turn, redacted as
    # one card: also when Whisper dropped one of "eight eight" (15 digits that fail the Luhn check),
    # which tiny.en did in every run printed so far, because the digits follow "card number".
    # A speculative reply may ask first, on the pause after "My card number" (no digit yet), and be
    # dropped when the digits come: the turn is the first request that holds the card.
    sent = [request.messages for request in pod.llm.requests]
    with_card = [messages for messages in sent if any("[card number" in text for text in strings(messages))]
    said = [m["content"] for m in with_card[0] if m["role"] == "user"] if with_card else []
    assert said and "[card number 1]" in said[-1] and card_fragments(strings(sent)) == [], (said, report.render())
    assert sum(1 for messages in sent for m in messages if m["role"] == "user") == len(sent)  # no second turn
