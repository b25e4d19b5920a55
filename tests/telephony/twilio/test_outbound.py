"""A single outbound call through the API: Twilio's parameters, the answer TwiML, signed callbacks."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

from telephony.simulator.fake_twilio_rest import FakeTwilioRest
from telephony.twilio import call_token
from tests.support.campaign_pod import Pod, campaign_pod
from tests.support.settings import AGENT_NUMBER
from tests.support.twilio_requests import post_signed


async def _ended(fake: FakeTwilioRest, sid: str) -> None:
    while fake.calls[sid].ended_at is None or not fake.callbacks:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # the status callback is being handled


async def _record(pod: Pod, sid: str, status: str) -> dict:
    for _ in range(200):
        record = (await pod.api.get(f"/api/calls/{sid}")).json()
        if record.get("status") == status:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"call record never reached {status}: {record}")


async def test_post_calls_creates_a_twilio_call_with_stream_status_and_amd() -> None:
    async with campaign_pod({"fetch_answer_url": True, "call_seconds": 0.3}) as pod:
        put = await pod.api.post("/api/agents", json={"id": "sales", "greeting": "Hi", "max_call_seconds": 120})
        assert put.status_code == 201
        await pod.api.put("/api/agents/sales", json={"id": "sales", "greeting": "Hello", "max_call_seconds": 120})
        pod.edge.agents.agents["sales"] = pod.edge.agents.agents["echo"]  # served by this pod
        response = await pod.api.post(
            "/api/calls",
            json={"to": "+15550001111", "from_number": AGENT_NUMBER, "agent_id": "sales", "variables": {"name": "Ada"}},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        sid = body["call_sid"]
        assert body["agent_version"] == 2
        (create,) = pod.fake.creates()
        p = create.params
        assert p["To"] == "+15550001111" and p["From"] == AGENT_NUMBER
        assert p["Url"].startswith(pod.url + "/twilio/outbound?agent=sales&v=2")
        assert p["StatusCallback"].startswith(pod.url + "/twilio/call-status?")
        assert p["MachineDetection"] == "DetectMessageEnd" and p["AsyncAmd"] == "true"
        assert p["AsyncAmdStatusCallback"].startswith(pod.url + "/twilio/amd-status?")
        assert p["Timeout"] == "30" and p["TimeLimit"] == "180"
        await _ended(pod.fake, sid)
        # Twilio fetched the answer URL (signed) and got the stream TwiML with a token for this call
        stream = ET.fromstring(pod.fake.calls[sid].answer_twiml or "").find("./Connect/Stream")
        assert stream is not None and stream.get("url", "").endswith("/twilio/media")
        token = stream.find("./Parameter").get("value")  # type: ignore[union-attr]
        claims = call_token.verify(pod.edge.settings.call_token_key(), token)
        assert claims.call_sid == sid and claims.agent_id == "sales" and claims.direction == "outbound-api"
        assert pod.edge.calls.count == 1  # the answer went through admission (reserved for the stream)
        record = await _record(pod, sid, "completed")
        assert record["agent_version"] == 2 and record["answered_by"] == "human"
        assert record["variables"] == {"name": "Ada"} and record["duration_s"] >= 1


async def test_a_machine_gets_the_voicemail_policy() -> None:
    options = {"answered_by": lambda to: "machine_end_beep", "call_seconds": 5.0}
    async with campaign_pod(options) as pod:
        message = {"policy": "leave_message", "message": "Please call us back."}
        calls = []
        for to, voicemail in (("+15550002222", {"policy": "hang_up"}), ("+15550003333", message)):
            response = await pod.api.post(
                "/api/calls",
                json={"to": to, "from_number": AGENT_NUMBER, "agent_id": "echo", "voicemail": voicemail},
            )
            assert response.status_code == 201, response.text
            calls.append(response.json()["call_sid"])
        for sid in calls:
            await _ended(pod.fake, sid)
        hung_up, left = (pod.fake.calls[sid].updates for sid in calls)
        assert hung_up == [{"Status": "completed"}]
        assert "Please call us back." in left[0]["Twiml"] and "<Hangup" in left[0]["Twiml"]
        record = await _record(pod, calls[0], "completed")
        assert record["answered_by"] == "machine_end_beep" and record["agent_version"] is None


async def test_callbacks_must_be_signed_and_twilio_errors_are_clear() -> None:
    async with campaign_pod() as pod:
        forged = await pod.api.post(
            "/twilio/call-status?agent=echo", data={"CallSid": "CA1", "AccountSid": "AC1", "CallStatus": "completed"}
        )
        assert forged.status_code == 403
        signed = await asyncio.to_thread(
            post_signed,
            pod.url,
            "/twilio/call-status?agent=echo",
            {"CallSid": "CA1", "AccountSid": "AC1", "CallStatus": "completed"},
        )
        assert signed.status_code == 204
        pod.fake.pending_faults.extend([503] * 10)
        refused = await pod.api.post(
            "/api/calls", json={"to": "+15550004444", "from_number": AGENT_NUMBER, "agent_id": "echo"}
        )
        assert refused.status_code == 502 and "Twilio" in refused.json()["detail"]
        assert not pod.fake.creates()
