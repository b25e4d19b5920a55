"""A call seen through the console in real headless Chromium: it appears among the live calls, its transcript arrives
as it happens, and once it has ended its page plays the recording (as long as the call, lighting the line being
played) and shows the per-turn latency waterfall."""

from __future__ import annotations

import asyncio

import pytest

from telephony.simulator import SimulatedCall
from telephony.simulator.script import Pause, Press
from tests.support.browser import browser_page, chromium_or_skip, log_in, screenshot
from tests.support.console_pod import console_pod
from tests.support.fake_twilio import ACCOUNT_SID
from tests.support.live_pod import ADMIN_KEY
from tests.support.record_pod import AGENT, NUMBER
from tests.support.settings import AUTH_TOKEN

pytestmark = pytest.mark.mongodb

RECORDED_NUMBER = "+15550191"
PRESSES = 6


@pytest.fixture(autouse=True)
def _chromium() -> None:
    chromium_or_skip()


async def test_an_operator_watches_a_call_live_then_plays_its_recording_and_reads_its_latency() -> None:
    async with console_pod() as pod, browser_page() as page:
        config = AGENT.model_dump(mode="json") | {"id": "recorded-calls", "record": True}
        assert (await pod.api.post("/api/agents", json=config)).status_code == 201
        routed = await pod.api.put(f"/api/numbers/{RECORDED_NUMBER}", json={"agent_id": "recorded-calls"})
        assert routed.status_code == 200, routed.text
        await log_in(page, pod.url, ADMIN_KEY)

        script = [Pause(2.0)] + [step for _ in range(PRESSES) for step in (Press("1#"), Pause(1.0))] + [Pause(1.0)]
        call = SimulatedCall(pod.url, AUTH_TOKEN, to=RECORDED_NUMBER, script=script, account_sid=ACCOUNT_SID)
        placed = asyncio.create_task(call.run())

        await page.goto(f"{pod.url}/console/calls/live")
        link = page.locator("#live-calls a").first
        await link.wait_for(timeout=15_000)  # the list refreshes itself from the database
        await screenshot(page, "live-calls")
        await link.click()
        await page.wait_for_selector("#live-transcript li.line.caller", timeout=20_000)
        await screenshot(page, "live-call-transcript")
        finished = page.locator("#finished-call")
        await finished.wait_for(timeout=60_000)
        lines = await page.locator("#live-transcript li.line.caller").count()
        assert lines >= PRESSES  # every key press arrived as it happened, before the end

        report = await placed
        call_seconds = len(report.caller_mulaw) / 8000  # the caller's track as Twilio streamed it
        await finished.click()
        await page.wait_for_selector("#player")
        duration = await page.evaluate(
            """() => new Promise((resolve) => {
                const audio = document.getElementById('player');
                if (audio.readyState >= 1) resolve(audio.duration);
                audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
                audio.load();
            })"""
        )
        print(f"recording plays {duration:.3f} s; the call's caller track {call_seconds:.3f} s")
        assert abs(duration - call_seconds) <= 0.1, (duration, call_seconds)

        third = page.locator("#transcript li[data-at]").nth(2)
        await third.click()  # seeks there and plays
        await page.wait_for_function("document.getElementById('player').currentTime > 0")
        await page.wait_for_selector("#transcript li.playing")
        await page.wait_for_selector("#waterfall rect.stage")
        await screenshot(page, "finished-call")

        await page.goto(f"{pod.url}/console/calls")
        await page.fill("#call-search input[name=number]", RECORDED_NUMBER)
        await page.fill("#call-search input[name=agent_id]", "recorded-calls")
        await page.click("#call-search button[type=submit]")
        assert await page.locator("#calls tbody a").all_inner_texts() == [report.call_sid]
        await screenshot(page, "call-history")
        await page.fill("#call-search input[name=number]", "+15559999999")
        await page.click("#call-search button[type=submit]")
        assert await page.locator("#calls tbody a").count() == 0

        await page.goto(f"{pod.url}/console/health")
        await page.wait_for_selector("#memory-chart polyline.memory-line")
        assert await page.inner_text("[data-health='state']") == "ok"
        await screenshot(page, "pod-health")


async def test_an_operator_ends_a_live_call_from_its_page() -> None:
    async with console_pod() as pod, browser_page() as page:
        await log_in(page, pod.url, ADMIN_KEY)
        script = [Pause(1.0), Press("1#"), Pause(60.0)]
        call = SimulatedCall(pod.url, AUTH_TOKEN, to=NUMBER, script=script, account_sid=ACCOUNT_SID, max_seconds=90)
        placed = asyncio.create_task(call.run())
        await page.goto(f"{pod.url}/console/calls/live")
        await page.locator("#live-calls a").first.click(timeout=15_000)
        await page.wait_for_selector("#live-transcript li.line.caller", timeout=20_000)
        await page.click("#end-call")
        await page.wait_for_selector("text=Asked to end the call")
        report = await asyncio.wait_for(placed, 30)  # long before its script would have hung up
        assert report.outcome != "caller hung up", report.outcome
        await page.wait_for_selector("#finished-call", timeout=20_000)
