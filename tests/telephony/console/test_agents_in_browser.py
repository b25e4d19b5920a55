"""The console's agent pages in real headless Chromium: log in, a validation error beside its field, versions with a
diff and a rollback, and a read-only key that sees no edit controls and whose forged write is refused."""

from __future__ import annotations

import pytest

from tests.support.browser import browser_page, chromium_or_skip, log_in, screenshot
from tests.support.console_pod import VIEWER_KEY, console_pod
from tests.support.live_pod import ADMIN_KEY

pytestmark = pytest.mark.mongodb


@pytest.fixture(autouse=True)
def _chromium() -> None:
    chromium_or_skip()


async def test_an_operator_creates_edits_and_rolls_back_an_agent() -> None:
    async with console_pod() as pod, browser_page() as page:
        await page.goto(f"{pod.url}/console/agents")
        assert "/console/login" in page.url  # no session yet
        await screenshot(page, "login")
        await log_in(page, pod.url, ADMIN_KEY)
        await page.goto(f"{pod.url}/console/agents")
        await screenshot(page, "agents-list")
        await page.click("#new-agent")
        await page.fill("#id", "support")
        await page.fill("#greeting", "Hello from support.")
        await page.fill("#max_call_seconds", "5")  # the API's bound is 10 s or more
        await page.click("#save-agent")
        error = page.locator("#field-max_call_seconds .field-error")
        assert "greater than or equal to 10" in await error.inner_text()
        assert await page.input_value("#greeting") == "Hello from support."  # what was typed is kept
        await screenshot(page, "agent-validation-error")

        await page.fill("#max_call_seconds", "120")
        await page.click("#save-agent")
        await page.wait_for_url(f"{pod.url}/console/agents/support")
        assert "version 1" in await page.inner_text("h1")
        await page.fill("#greeting", "Welcome back to support.")
        await page.click("#save-agent")
        await page.wait_for_selector("text=Saved as version 2")

        await page.click("#versions-link")
        diff = await page.inner_text("#diff")
        assert "greeting" in diff and "Hello from support." in diff and "Welcome back to support." in diff
        await screenshot(page, "agent-versions-diff")
        await page.click("button.rollback[data-version='1']")
        await page.wait_for_selector("text=Version 3 (current)")

        stored = (await pod.api.get("/api/agents/support")).json()
        assert stored["version"] == 3
        assert stored["config"]["greeting"] == "Hello from support."


async def test_a_read_only_key_sees_no_edit_controls_and_its_forged_write_is_refused() -> None:
    async with console_pod() as pod, browser_page() as page:
        created = await pod.api.post("/api/agents", json={"id": "billing", "greeting": "Billing, hello."})
        assert created.status_code == 201, created.text
        await log_in(page, pod.url, VIEWER_KEY)
        await page.goto(f"{pod.url}/console/agents/billing")
        assert await page.locator("#save-agent").count() == 0
        assert await page.locator("#new-agent").count() == 0
        assert await page.get_attribute("#greeting", "readonly") is not None
        await page.goto(f"{pod.url}/console/agents/billing/versions")
        assert await page.locator("button.rollback").count() == 0
        await screenshot(page, "agent-read-only")

        forged = await page.evaluate(
            """async () => {
                const csrf = document.querySelector('meta[name="csrf-token"]').content;
                const body = new URLSearchParams({csrf_token: csrf, greeting: "forged", advanced: "{}"});
                const answer = await fetch(location.pathname.replace('/versions', ''), {method: 'POST', body});
                return answer.status;
            }"""
        )
        assert forged == 403
        assert (await pod.api.get("/api/agents/billing")).json()["config"]["greeting"] == "Billing, hello."
