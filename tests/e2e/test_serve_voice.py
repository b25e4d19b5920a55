"""`switchboard serve`'s path: agents from the agents file, engines loaded and warmed at start-up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from agents.testing.scripted_llm import Reply, ScriptedLlmServer
from telephony.app import create_app
from telephony.server import BackgroundServer
from telephony.simulator import Pause, SimulatedCall
from tests.support.patient_caller import LAST_PAUSE_S, run_until_heard
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN, make_settings
from tests.support.voice_harness import utterance


def test_agents_file_agents_answer_calls(tmp_path: Path) -> None:
    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps([{"id": "support", "greeting": "Hello, support here."}]))
    with ScriptedLlmServer([Reply(text="Sure, one moment.")]) as llm:
        settings = make_settings(
            numbers={AGENT_NUMBER: "support"}, agents_file=agents, llm_base_url=llm.base_url, llm_model="scripted"
        )
        app = create_app(settings)
        with BackgroundServer(app, settings) as url:  # start-up loads and warms the models first
            script = [Pause(2.0), utterance("order_status"), Pause(LAST_PAUSE_S)]
            call = SimulatedCall(url, AUTH_TOKEN, to=AGENT_NUMBER, script=script, tail_s=0.5)
            report = asyncio.run(run_until_heard(call, 2))  # the greeting and the reply, however slow
        [request] = llm.requests
    assert request.body["model"] == "scripted"
    assert request.messages[1] == {"role": "assistant", "content": "Hello, support here."}
    assert request.messages[-1]["content"].lower().startswith("what is the status of my order")
    assert report.turn_latencies(), report.render()
    agent = app.state.pod.agents.get("support")
    assert [line.role for line in agent.records[-1].transcript] == ["agent", "caller", "agent"]
