"""Live calls through the admin API: a real call through the simulator shows in `/api/calls/live`, its event
stream delivers the transcript as it happens and then `end`, and an operator ends or transfers it, through
the call's session on this pod or through Twilio's REST API for a call on another pod."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db import AgentConfigs, CallRecords
from telephony.admin.live_calls import LIVE_SLACK_SECONDS, LONGEST_CALL_SECONDS, OPERATOR_END, OPERATOR_TRANSFER
from telephony.simulator import Pause, Press
from telephony.simulator.fake_twilio_rest import FakeCall
from tests.support.live_pod import READER_KEY, TENANT_KEY, LivePod, live_pod, read_events
from tests.support.record_pod import AGENT, NUMBER
from tests.support.waiting import until

pytestmark = pytest.mark.mongodb

ALLOWED = "+12125550123"
"""On the default transfer allow-list (`+1*`)."""


async def live_sids(pod: LivePod) -> list[str]:
    response = await pod.api.get("/api/calls/live")
    assert response.status_code == 200, response.text
    return [item["call_sid"] for item in response.json()["items"]]


async def wait_live(pod: LivePod, call: asyncio.Task[Any]) -> str:
    """The sid of the simulated call once the database shows it live."""
    found: list[str] = []

    async def look() -> None:
        while not found:
            found.extend(await live_sids(pod))
            await asyncio.sleep(0.05)

    await asyncio.wait_for(look(), 30)
    assert not call.done()
    return found[0]


async def collect_text(lines: AsyncIterator[str]) -> str:
    return "\n".join([line async for line in lines])


async def stored(pod: LivePod, sid: str) -> dict[str, Any]:
    record = await CallRecords(pod.database).get(sid)
    assert record is not None
    return record


async def test_a_call_is_live_and_its_events_follow_it_as_it_goes_to_its_end() -> None:
    async with live_pod() as pod:
        call = pod.call(Pause(1.0), Press("1#"), Pause(1.5), Press("2#"), Pause(1.5), Press("3#"), Pause(1.5))
        sid = await wait_live(pod, call)
        [item] = (await pod.api.get("/api/calls/live")).json()["items"]
        assert item["agent_id"] == AGENT.id and item["to_number"] == NUMBER and item["direction"] == "inbound"
        assert item["started_at"] and "transcript_lines" in item
        events: list[tuple[str | None, str, dict[str, Any]]] = []
        while_live = 0
        async with pod.api.stream("GET", f"/api/calls/{sid}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event in read_events(response):
                events.append(event)
                while_live += event[1] == "transcript" and not call.done()
        report = await asyncio.wait_for(call, 60)
        assert report.outcome == "caller hung up"
        kinds = [kind for _, kind, _ in events]
        assert kinds[-1] == "end" and kinds.count("end") == 1
        lines = [data for _, kind, data in events if kind == "transcript"]
        assert lines[0] == {**lines[0], "role": "agent", "text": AGENT.greeting, "index": 0}
        assert [line["index"] for line in lines] == list(range(len(lines)))
        assert len([line for line in lines if line["role"] == "caller"]) == 3
        assert while_live >= 3  # delivered as the call went, not at its end
        end = events[-1][2]
        assert end["outcome"] == "caller hung up" and end["ended_at"]
        assert events[-1][0] == f"{len(lines)}.0"  # the position after every line
        assert sid not in await live_sids(pod)
        # Resuming from an event id sends only what came after it.
        resume_id = events[1][0]
        assert resume_id is not None
        async with pod.api.stream("GET", f"/api/calls/{sid}/events", headers={"Last-Event-ID": resume_id}) as again:
            resumed = [event async for event in read_events(again)]
        assert [data["index"] for _, kind, data in resumed if kind == "transcript"] == [
            line["index"] for line in lines[2:]
        ]


async def test_an_operator_ends_a_call_live_on_this_pod() -> None:
    async with live_pod() as pod:
        call = pod.call(Pause(1.0), Press("1#"), Pause(30.0))
        sid = await wait_live(pod, call)
        ended = await pod.api.post(f"/api/calls/{sid}/end")
        assert ended.status_code == 200, ended.text
        assert ended.json() == {"call_sid": sid, "action": "end", "via": "pod", "to": None}
        report = await asyncio.wait_for(call, 20)  # long before the script's 30 s pause is over
        assert report.twiml[-1].endswith("<Response><Hangup /></Response>")
        await until(lambda: pod.edge.calls.active == 0, what="the call released")
        await until_ended(pod, sid)
        record = await stored(pod, sid)
        assert record["outcome"] == OPERATOR_END and record["operator"]["action"] == "end"
        assert record["transcript"][-1]["role"] == "system" and OPERATOR_END in record["transcript"][-1]["text"]
        again = await pod.api.post(f"/api/calls/{sid}/end")
        assert again.status_code == 409, again.text
        assert list(pod.fake.requests) == []  # Twilio was never asked: the pod ended it itself


async def until_ended(pod: LivePod, sid: str) -> None:
    async def ended() -> None:
        while (await stored(pod, sid)).get("ended_at") is None:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(ended(), 10)


async def test_an_operator_transfers_a_call_to_an_allowed_number_and_twilio_dials_it() -> None:
    async with live_pod() as pod:
        call = pod.call(Pause(1.0), Press("1#"), Pause(30.0))
        sid = await wait_live(pod, call)
        refused = await pod.api.post(f"/api/calls/{sid}/transfer", json={"to": "+19005550123"})  # premium rate
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["body", "to"]
        off_list = await pod.api.post(f"/api/calls/{sid}/transfer", json={"to": "+442071234567"})
        assert off_list.status_code == 422 and "allow-list" in off_list.text
        assert (await pod.api.post(f"/api/calls/{sid}/transfer", json={"to": ALLOWED, "x": 1})).status_code == 422
        assert not call.done()
        moved = await pod.api.post(f"/api/calls/{sid}/transfer", json={"to": ALLOWED})
        assert moved.status_code == 200, moved.text
        assert moved.json() == {"call_sid": sid, "action": "transfer", "via": "pod", "to": ALLOWED}
        report = await asyncio.wait_for(call, 20)
        assert f"<Dial><Number>{ALLOWED}</Number></Dial>" in report.twiml[-1]
        await until_ended(pod, sid)
        assert (await stored(pod, sid))["outcome"] == OPERATOR_TRANSFER


async def test_a_call_on_another_pod_is_ended_and_transferred_through_twilio() -> None:
    async with live_pod() as pod:
        calls = CallRecords(pod.database)
        for sid in ("CAelsewhere1", "CAelsewhere2"):
            await calls.start(sid, agent_id=AGENT.id, from_number="+15005550006", to_number=NUMBER)
            pod.fake.calls[sid] = FakeCall(sid, NUMBER, "+15005550006", {}, time.monotonic(), status="in-progress")
        assert {"CAelsewhere1", "CAelsewhere2"} <= set(await live_sids(pod))
        ended = await pod.api.post("/api/calls/CAelsewhere1/end")
        assert ended.status_code == 200 and ended.json()["via"] == "twilio", ended.text
        assert pod.fake.calls["CAelsewhere1"].updates == [{"Status": "completed"}]
        assert (await stored(pod, "CAelsewhere1"))["operator"]["action"] == "end"
        moved = await pod.api.post("/api/calls/CAelsewhere2/transfer", json={"to": ALLOWED})
        assert moved.status_code == 200 and moved.json()["via"] == "twilio", moved.text
        [update] = pod.fake.calls["CAelsewhere2"].updates
        assert f"<Dial><Number>{ALLOWED}</Number></Dial>" in update["Twiml"]
        # Twilio no longer knows the call (it ended meanwhile): a conflict, not a crash.
        await calls.start("CAgone", agent_id=AGENT.id, from_number="+15005550006", to_number=NUMBER)
        gone = await pod.api.post("/api/calls/CAgone/end")
        assert gone.status_code == 409, gone.text


async def test_unknown_ended_and_other_tenants_calls_and_missing_scopes() -> None:
    async with live_pod() as pod:
        calls = CallRecords(pod.database)
        await calls.start("CAmine", agent_id=AGENT.id, from_number="+15005550006", to_number=NUMBER)
        await calls.start("CAover", agent_id=AGENT.id, from_number="+15005550006", to_number=NUMBER)
        await calls.finish("CAover", outcome="caller hung up")
        for path in ("/api/calls/CAnone/events", "/api/calls/CAnone/end", "/api/calls/CAnone/transfer"):
            method = "GET" if path.endswith("events") else "POST"
            response = await pod.api.request(method, path, json={"to": ALLOWED} if "transfer" in path else None)
            assert response.status_code == 404, (path, response.text)
        assert (await pod.api.post("/api/calls/CAover/end")).status_code == 409
        assert (await pod.api.post("/api/calls/CAover/transfer", json={"to": ALLOWED})).status_code == 409
        assert (await pod.api.get("/api/calls/bad!sid/events")).status_code in (404, 422)
        bad = await pod.api.get("/api/calls/CAmine/events", headers={"Last-Event-ID": "nonsense"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["header", "last-event-id"]
        assert (await pod.api.get("/api/calls/live?limit=0")).status_code == 422
        assert (await pod.api.get("/api/calls/live?limit=100000")).status_code == 422
        async with pod.client(READER_KEY) as reader:
            assert (await reader.get("/api/calls/live")).status_code == 200
            assert (await reader.post("/api/calls/CAmine/end")).status_code == 403
            assert (await reader.post("/api/calls/CAmine/transfer", json={"to": ALLOWED})).status_code == 403
        async with pod.client(TENANT_KEY) as tenant:
            assert (await tenant.get("/api/calls/live")).json()["items"] == []
            assert (await tenant.get("/api/calls/CAmine/events")).status_code == 404
            assert (await tenant.post("/api/calls/CAmine/end")).status_code == 404
        assert "CAmine" in await live_sids(pod) and "CAover" not in await live_sids(pod)


async def test_a_record_older_than_the_longest_call_is_not_live() -> None:
    async with live_pod() as pod:
        calls = CallRecords(pod.database)
        long_ago = datetime.now(UTC) - timedelta(seconds=LONGEST_CALL_SECONDS + LIVE_SLACK_SECONDS + 60)
        await calls.start("CAdeadpod", agent_id=AGENT.id, from_number="+1", to_number=NUMBER, started_at=long_ago)
        await calls.start("CArecent", agent_id=AGENT.id, from_number="+1", to_number=NUMBER)
        await calls.start("CAunanswered", agent_id=AGENT.id, from_number="+1", to_number=NUMBER, status="queued")
        await calls.set_status("CAunanswered", "no-answer")
        assert await live_sids(pod) == ["CArecent"]


async def test_the_stream_cap_refuses_past_it_and_a_client_that_goes_frees_its_slot() -> None:
    async with live_pod(live_event_streams=1) as pod:
        await CallRecords(pod.database).start("CAwatched", agent_id=AGENT.id, from_number="+1", to_number=NUMBER)
        async with pod.api.stream("GET", "/api/calls/CAwatched/events") as first:
            assert first.status_code == 200
            # Hold the line iterator: a generator dropped after `break` is closed by the loop's finalizer, which
            # closes the connection and frees the slot in a race with the next request.
            lines = first.aiter_lines()
            assert (await anext(lines)).startswith("retry:")  # the stream is open
            refused = await pod.api.get("/api/calls/CAwatched/events")
            assert refused.status_code == 503, refused.text
            await lines.aclose()
        # The client went away: the pod notices and frees the slot without waiting for the call to end.

        async def reopened() -> int:
            while True:
                async with pod.api.stream("GET", "/api/calls/CAwatched/events") as again:
                    if again.status_code == 200:
                        return again.status_code
                await asyncio.sleep(0.05)

        assert await asyncio.wait_for(reopened(), 10) == 200


async def test_a_stream_closes_at_its_time_limit() -> None:
    async with live_pod(live_event_stream_seconds=1.0) as pod:
        await CallRecords(pod.database).start("CAlong", agent_id=AGENT.id, from_number="+1", to_number=NUMBER)
        started = time.monotonic()
        async with pod.api.stream("GET", "/api/calls/CAlong/events") as response:
            text = "".join([chunk async for chunk in response.aiter_text()])
        assert time.monotonic() - started < 10
        assert "time limit" in text and "event: end" not in text


async def test_resuming_after_the_end_answers_204_so_a_browser_stops_reconnecting() -> None:
    async with live_pod() as pod:
        calls = CallRecords(pod.database)
        await calls.start("CAdone", agent_id=AGENT.id, from_number="+1", to_number=NUMBER)
        await calls.add_turn("CAdone", "caller", "hello")
        await calls.finish("CAdone", outcome="caller hung up")
        async with pod.api.stream("GET", "/api/calls/CAdone/events") as response:
            events = [event async for event in read_events(response)]
        assert [kind for _, kind, _ in events] == ["transcript", "end"] and events[-1][0] == "1.0"
        after = await pod.api.get("/api/calls/CAdone/events", headers={"Last-Event-ID": "1.0"})
        assert after.status_code == 204
        assert (await pod.api.get("/api/calls/CAdone/events?after=0.0")).status_code == 200


async def test_a_tenant_key_sees_and_acts_on_its_own_agents_calls_only() -> None:
    async with live_pod() as pod:
        await AgentConfigs(pod.database).create("other-agent", {"id": "other-agent", "tenant": "other"})
        calls = CallRecords(pod.database)
        await calls.start("CAtheirs", agent_id="other-agent", from_number="+1", to_number=NUMBER)
        await calls.start("CAnotheirs", agent_id=AGENT.id, from_number="+1", to_number=NUMBER)
        pod.fake.calls["CAtheirs"] = FakeCall("CAtheirs", NUMBER, "+1", {}, time.monotonic(), status="in-progress")
        async with pod.client(TENANT_KEY) as tenant:
            assert [item["call_sid"] for item in (await tenant.get("/api/calls/live")).json()["items"]] == ["CAtheirs"]
            assert (await tenant.get("/api/calls/CAnotheirs/events")).status_code == 404
            assert (await tenant.post("/api/calls/CAtheirs/end")).status_code == 200
        assert pod.fake.calls["CAtheirs"].updates == [{"Status": "completed"}]


async def test_a_draining_pod_closes_its_open_streams_so_its_shutdown_is_not_held() -> None:
    async with live_pod() as pod:
        await CallRecords(pod.database).start("CAdrain", agent_id=AGENT.id, from_number="+1", to_number=NUMBER)
        async with pod.api.stream("GET", "/api/calls/CAdrain/events") as response:
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            pod.edge.drain.begin()
            rest = await asyncio.wait_for(collect_text(lines), 10)
        assert "going away" in rest
