"""The dialer's exact accounting: a concurrency slot left held by an attempt that has already
settled is found and returned, and a create whose answer was lost (timeout) is reconciled with
Twilio's call list instead of failing the contact or dialling it twice."""

from __future__ import annotations

import asyncio

import pytest

from db import Campaigns, Contacts
from telephony.campaigns.dialer import Dialer
from tests.support.campaign_pod import Pod, ShiftedClock, campaign_pod
from tests.support.campaigns import WEDNESDAY_5PM_UTC, make_campaign
from tests.support.waiting import until

pytestmark = pytest.mark.mongodb


async def _campaign_status(pod: Pod, cid: str) -> str:
    return (await pod.api.get(f"/api/campaigns/{cid}")).json()["status"]


async def test_a_slot_lost_by_a_settled_attempt_is_found_and_returned() -> None:
    async with campaign_pod({"call_seconds": 0.05}) as pod:
        clock = ShiftedClock(WEDNESDAY_5PM_UTC)
        pod.edge.clock = clock
        phones = ["+15558000001", "+15558000002"]
        cid = await make_campaign(pod, [{"phone": p} for p in phones], max_concurrent_calls=1, calls_per_second=50)
        assert (await pod.api.post(f"/api/campaigns/{cid}/start")).status_code == 200
        campaigns, contacts = Campaigns(pod.database), Contacts(pod.database)
        # An attempt on the first contact settled (its status callback came) but the pod that held
        # its only slot died before giving it back: the slot stays labelled with the attempt for the
        # whole time the call could have lasted.
        now = clock()
        first = await contacts.lease(cid, "gone", now=now, lease_seconds=1.0)
        assert first is not None
        slot = await campaigns.acquire_slot(cid, "gone:x", now=now, until=now + 1.0)
        assert slot is not None
        attempt = await contacts.start_dialing(first["_id"], "gone", slot=slot, until=now + 3600)
        label = f"{first['_id']}:{attempt}"
        assert await campaigns.hold_slot(slot, "gone:x", until=now + 3600, new_holder=label)
        settled = await contacts.finish_attempt(
            first["_id"], attempt or 1, status="completed", call_sid="CA1", now=now, max_attempts=1, retry_delay=1
        )
        assert settled is not None  # done; the slot was never released
        assert await campaigns.busy_slots(cid, now=clock()) == 1

        dialer = Dialer(pod.edge, owner="pod")
        task = asyncio.create_task(dialer.run())
        try:
            await until(lambda: len(pod.fake.creates()) == 1, timeout=20, what="the second contact dialled")
            assert pod.fake.creates()[0].params["To"] == phones[1]
            for _ in range(200):
                if await _campaign_status(pod, cid) == "completed":
                    break
                await asyncio.sleep(0.05)
            assert await _campaign_status(pod, cid) == "completed"
            assert await campaigns.busy_slots(cid, now=clock()) == 0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("lost", ["created", "not_created"])
async def test_a_create_whose_answer_was_lost_is_reconciled_with_twilios_call_list(lost: str) -> None:
    async with campaign_pod({"call_seconds": 1.5}, twilio_api_timeout_seconds=0.5) as pod:
        pod.edge.clock = ShiftedClock(WEDNESDAY_5PM_UTC)
        pod.fake.lost_answer_seconds = 1.0
        pod.fake.lost_answers.append(lost)
        cid = await make_campaign(pod, [{"phone": "+15558100001"}], calls_per_second=50)
        assert (await pod.api.post(f"/api/campaigns/{cid}/start")).status_code == 200
        dialer = Dialer(pod.edge, owner="pod")
        task = asyncio.create_task(dialer.run())
        try:
            for _ in range(300):
                if await _campaign_status(pod, cid) == "completed":
                    break
                await asyncio.sleep(0.05)
            async with asyncio.timeout(10):
                await dialer.wait_idle()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        (contact,) = await Contacts(pod.database).page(cid)
        full = await Contacts(pod.database).get(contact["_id"])
        assert full is not None
        # exactly one call reached the callee: the lost answer was looked up, not redialled blindly
        assert len(pod.fake.creates()) == 1 and len(pod.fake.calls) == 1
        listed = [r for r in pod.fake.requests if r.method == "GET" and r.path.endswith("/Calls.json")]
        assert listed and listed[0].params["To"] == "+15558100001" and listed[0].params["From"]
        assert full["state"] == "done", full
        assert [h["status"] for h in full["history"]] == ["completed"]
        assert full["call_sid"] == next(iter(pod.fake.calls)) and dialer.placed == 1


async def test_an_unresolvable_create_waits_for_the_status_callback_instead_of_failing() -> None:
    async with campaign_pod({"call_seconds": 1.5}, twilio_api_timeout_seconds=0.5, twilio_api_max_retries=1) as pod:
        pod.edge.clock = ShiftedClock(WEDNESDAY_5PM_UTC)
        pod.fake.lost_answer_seconds = 1.0
        pod.fake.lost_answers.append("created")
        pod.fake.list_faults.extend([503] * 10)  # Twilio's call list cannot be read either
        cid = await make_campaign(pod, [{"phone": "+15558200001"}], calls_per_second=50)
        assert (await pod.api.post(f"/api/campaigns/{cid}/start")).status_code == 200
        dialer = Dialer(pod.edge, owner="pod")
        task = asyncio.create_task(dialer.run())
        try:
            await until(lambda: any(r.method == "GET" for r in pod.fake.requests), timeout=20, what="a list lookup")
            for _ in range(300):
                if await _campaign_status(pod, cid) == "completed":
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        (contact,) = await Contacts(pod.database).page(cid)
        full = await Contacts(pod.database).get(contact["_id"])
        assert full is not None and len(pod.fake.calls) == 1  # never redialled
        assert full["state"] == "done" and [h["status"] for h in full["history"]] == ["completed"], full
        assert await Campaigns(pod.database).busy_slots(cid, now=pod.edge.clock()) == 0  # its slot came back


async def test_a_slot_lost_while_waiting_for_the_dial_time_is_not_dialled_over_the_cap() -> None:
    async with campaign_pod({"call_seconds": 0.05}) as pod:
        clock = ShiftedClock(WEDNESDAY_5PM_UTC)
        pod.edge.clock = clock
        cid = await make_campaign(pod, [{"phone": "+15558300001"}], max_concurrent_calls=1, calls_per_second=50)
        assert (await pod.api.post(f"/api/campaigns/{cid}/start")).status_code == 200
        campaigns = Campaigns(pod.database)
        # the campaign's next dial time is later than this pod's slot hold lasts
        await pod.database.collection("campaigns").update_one({"_id": cid}, {"$set": {"next_dial_at": clock() + 5}})
        stolen: list[str] = []

        async def sleep(seconds: float) -> None:
            if seconds > 2 and not stolen:  # the wait for our dial time: our hold runs out meanwhile
                clock.advance(seconds)
                slot = await campaigns.acquire_slot(cid, "other-pod", now=clock(), until=clock() + 3600)
                assert slot is not None  # another pod took the expired slot
                stolen.append(slot)
                return
            await asyncio.sleep(seconds)

        dialer = Dialer(pod.edge, owner="pod", sleep=sleep)
        task = asyncio.create_task(dialer.run())
        try:
            await until(lambda: bool(stolen), timeout=20, what="the slot taken by another pod")
            await asyncio.sleep(1.0)
            assert pod.fake.creates() == []  # the campaign's only slot is another pod's: no call over the cap
            assert await campaigns.busy_slots(cid, now=clock()) == 1
            (contact,) = await Contacts(pod.database).page(cid)
            assert contact["state"] in ("pending", "leased") and contact["attempts"] == 0, contact
            assert await campaigns.release_slot(stolen[0], "other-pod")  # the other pod's call ends
            await until(lambda: len(pod.fake.creates()) == 1, timeout=20, what="the contact dialled")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
