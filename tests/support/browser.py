"""A real headless Chromium for the console's tests: Debian's `chromium` driven by Playwright (no browser download).

Tests skip with a message where the browser or Playwright is missing (`apt-get install chromium`; the Makefile does it
when it can). Screenshots go to `test-artifacts/console/` (or `SWITCHBOARD_TEST_ARTIFACTS`), kept after the run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("SWITCHBOARD_TEST_ARTIFACTS", "test-artifacts")) / "console"


def chromium_or_skip() -> str:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.async_api", reason="Playwright for Python is not installed")
    return CHROMIUM


@asynccontextmanager
async def browser_page(**context: Any) -> AsyncIterator[Any]:
    """One page in a fresh browser context (its own cookies)."""
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--headless"])
        try:
            page = await (await browser.new_context(**context)).new_page()
            page.set_default_timeout(20_000)
            yield page
        finally:
            await browser.close()


async def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as a test artifact; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def log_in(page: Any, url: str, key: str) -> None:
    """Through the login form, as an operator would."""
    await page.goto(f"{url}/console/")
    await page.fill("#api_key", key)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r".*/console/(?!login).*"))
