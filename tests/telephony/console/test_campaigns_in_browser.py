"""A campaign in real headless Chromium: create it with a form, upload a CSV through the page (progress bar, per-row
errors), start and pause it, and watch its progress chart."""

from __future__ import annotations

import pytest

from tests.support.browser import browser_page, chromium_or_skip, log_in, screenshot
from tests.support.console_pod import console_pod
from tests.support.live_pod import ADMIN_KEY
from tests.support.record_pod import AGENT, NUMBER

pytestmark = pytest.mark.mongodb

ROWS = 400
"""Good rows in the upload (a few KB: the progress bar still goes through its events)."""


@pytest.fixture(autouse=True)
def _chromium() -> None:
    chromium_or_skip()


async def test_an_operator_creates_a_campaign_uploads_contacts_and_watches_progress(tmp_path) -> None:
    csv = tmp_path / "contacts.csv"
    lines = ["phone,timezone,first_name"] + [f"+1415555{i:04d},America/Los_Angeles,Ada{i}" for i in range(ROWS)]
    lines += ["not-a-number,UTC,Bad", "+14155550001,Mars/Olympus,Bad zone"]
    csv.write_text("\n".join(lines) + "\n")
    async with console_pod() as pod, browser_page() as page:
        await log_in(page, pod.url, ADMIN_KEY)
        await page.goto(f"{pod.url}/console/campaigns")
        await page.fill("#name", "Spring renewals")
        await page.fill("#agent_id", AGENT.id)
        await page.fill("#caller_id", "12345")  # not E.164: the API's error shows beside the field
        await page.click("#campaign-form button[type=submit]")
        assert await page.locator("#field-caller_id .field-error").count() == 1
        await screenshot(page, "campaigns-form-error")
        await page.fill("#caller_id", NUMBER)
        await page.click("#campaign-form button[type=submit]")
        await page.wait_for_selector("#contacts-upload")

        await page.set_input_files("#contacts-file", str(csv))
        await page.click("#contacts-upload")
        await page.wait_for_selector("#upload-summary:has-text('rows:')")
        assert await page.evaluate("document.getElementById('upload-progress').value") == 100
        summary = await page.inner_text("#upload-summary")
        assert f"{ROWS + 2} rows: {ROWS} added, 2 rejected" in summary, summary
        rows = await page.locator("#upload-errors tbody tr").all_inner_texts()
        assert [row.split("\t")[:2] for row in rows] == [[str(ROWS + 2), "phone"], [str(ROWS + 3), "timezone"]], rows
        await screenshot(page, "campaign-upload")

        await page.click("#campaign-start")
        await page.wait_for_selector("#campaign-status:has-text('running')")
        await page.click("#campaign-pause")
        await page.wait_for_selector("#campaign-status:has-text('paused')")
        await page.wait_for_selector("#campaign-chart rect.part.pending")
        assert await page.inner_text("[data-stat='contacts']") == str(ROWS)
        await screenshot(page, "campaign-progress")
