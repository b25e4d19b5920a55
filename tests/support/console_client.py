"""An httpx client logged in to the console through its form, as a browser would be (cookies kept)."""

from __future__ import annotations

import re

import httpx

LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
PAGE_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


async def console_login(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/console/login")
    match = LOGIN_CSRF.search(form.text)
    assert match, form.text
    return await client.post("/console/login", data={"api_key": key, "login_csrf": match.group(1)})


async def page_csrf(client: httpx.AsyncClient, path: str = "/console/agents") -> str:
    answer = await client.get(path)
    match = PAGE_CSRF.search(answer.text)
    assert match, answer.text
    return match.group(1)
