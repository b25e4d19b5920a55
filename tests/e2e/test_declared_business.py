"""A second business configured only through the admin API answers a real-time call with its own data.

The clinic (`tests/support/clinic.py`) is what an operator would send: tool declarations over its
`appointments` and `departments` collections, an agent naming them with caller-ID identity on its
`patients`, and a number routed to it. No code knows about clinics. The call goes through the
simulator to real VAD, Whisper and Kokoro in the server; the scripted (fake) model calls the
declared tool, and the test checks what the tool returned and what the caller heard.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from agents.testing.scripted_llm import Reply, ScriptedToolCall
from db import CallRecords, ensure_indexes, in_memory
from telephony.simulator import Pause, SimulatedCall
from tests.support.admin_api import ADMIN_KEY
from tests.support.clinic import CLINIC_AGENT, CLINIC_TOOLS, PATIENT_PHONE, seed_clinic
from tests.support.patient_caller import LAST_PAUSE_S, answered_then_quiet, run_until
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN
from tests.support.voice_harness import VoicePod, utterance, voice_pod, words

ANSWER = "Your next appointment is in cardiology with Doctor Lee."


@pytest.fixture(scope="module")
def pod() -> Iterator[VoicePod]:
    """A pod on the in-memory database, holding only the clinic's own data (nothing configured)."""
    database = in_memory()
    asyncio.run(ensure_indexes(database))
    asyncio.run(seed_clinic(database))
    with voice_pod(database, serve_stored_agents=True, api_keys=f"{ADMIN_KEY}:*") as pod:
        yield pod
    asyncio.run(database.close())


def configure_the_clinic(url: str) -> None:
    """Everything the operator does, over HTTP: declare the tools, create the agent, route the number."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as api:
        for declaration in CLINIC_TOOLS:
            created = api.post("/api/tools", json=declaration)
            assert created.status_code == 201, created.text
        agent = api.post("/api/agents", json=CLINIC_AGENT)
        assert agent.status_code == 201, agent.text
        routed = api.put(f"/api/numbers/{AGENT_NUMBER}", json={"agent_id": CLINIC_AGENT["id"]})
        assert routed.status_code == 200, routed.text


def test_a_clinic_configured_only_through_the_admin_api_answers_a_call_with_its_data(pod: VoicePod) -> None:
    configure_the_clinic(pod.url)
    pod.llm.push(
        Reply(tool_calls=[ScriptedToolCall("my_appointments", '{"department": null}')]),
        Reply(text=ANSWER),
    )
    # The caller (the patient's phone) asks, and stays until the answer has been spoken. The webhook
    # builds the stored agent first (Kokoro renders its fixed lines): seconds, more on a loaded machine.
    script = [Pause(2.0), utterance("next_appointment"), Pause(LAST_PAUSE_S)]
    call = SimulatedCall(
        pod.url, AUTH_TOKEN, to=AGENT_NUMBER, from_=PATIENT_PHONE, script=script, tail_s=0.5, webhook_timeout_s=120
    )
    answered = answered_then_quiet(call, lambda: len(pod.llm.requests) == 2 and pod.llm.requests[1].outcome is not None)
    report = asyncio.run(run_until(call, answered))
    pod.wait_idle()
    assert pod.llm.steps_left == 0, report.render()

    first, second = pod.llm.requests
    assert words(first.messages[-1]["content"]) == words("When is my next appointment?")
    offered = {tool["function"]["name"]: tool["function"] for tool in first.tools or []}
    assert {"my_appointments", "add_appointment_note", "department_hours"} <= set(offered)
    for function in offered.values():  # strict, closed schemas; the patient key is never an argument
        assert function["strict"] is True and function["parameters"]["additionalProperties"] is False
        assert "patient_id" not in function["parameters"]["properties"]

    # The declared tool read the calling patient's appointment (identified by caller ID), only theirs.
    tool_message = second.messages[-1]
    assert tool_message["role"] == "tool"
    content = json.loads(tool_message["content"])
    text = json.dumps(content)
    assert "AP-1" in text and "Doctor Lee" in text and "2031-03-14" in text and "cardiology" in text
    assert "AP-2" not in text and "Okafor" not in text and "P-7002" not in text

    # The caller heard the answer (Whisper on the recorded line), and the call record has the audit.
    heard = pod.agent_words(report, after_s=report.utterances[0][1])
    assert {"appointment", "cardiology", "lee"} <= set(heard), report.render()
    record = asyncio.run(CallRecords(pod.edge.database).get(report.call_sid))  # type: ignore[arg-type]
    assert record is not None and record["agent_id"] == "clinic"
    assert [entry["name"] for entry in record["tool_audit"]] == ["my_appointments"], record["tool_audit"]
