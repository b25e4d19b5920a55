"""Campaigns: list and create, a campaign's page (contact upload with a progress bar and per-row errors, live
progress, start/pause/resume/cancel). The upload itself goes from the page's script to the API through
`/console/api`, so its bound and its per-row report are the API's."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from telephony.console.context import api_of, console_of, refused
from telephony.console.render import page

ACTIONS = frozenset({"start", "pause", "resume", "cancel"})
SPEC_FIELDS = ("name", "agent_id", "caller_id", "timezone", "calls_per_second", "max_concurrent_calls", "max_attempts")


async def list_campaigns(request: Request) -> Response:
    answer = await api_of(request).request(console_of(request).principal, "GET", "/campaigns", params={"limit": 100})
    if answer.status_code != 200:
        return refused(request, answer)
    return page(request, "campaigns.html", campaigns=answer.json()["items"], form={}, errors={})


async def create_campaign(request: Request) -> Response:
    form = await request.form()
    spec: dict[str, Any] = {name: str(form.get(name, "")).strip() for name in SPEC_FIELDS if str(form.get(name, ""))}
    api, principal = api_of(request), console_of(request).principal
    answer = await api.request(principal, "POST", "/campaigns", json=spec)
    if answer.status_code == 201:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/campaigns/{answer.json()['id']}", 303)
    if answer.status_code != 422:
        return refused(request, answer)
    errors: dict[str, list[str]] = {}
    for item in answer.json().get("detail", []):
        location = [part for part in item.get("loc", []) if part != "body"]
        errors.setdefault(str(location[0]) if location else "form", []).append(str(item.get("msg")))
    listed = await api.request(principal, "GET", "/campaigns", params={"limit": 100})
    campaigns = listed.json()["items"] if listed.status_code == 200 else []
    return page(request, "campaigns.html", status=422, campaigns=campaigns, form=spec, errors=errors)


async def campaign_page(request: Request) -> Response:
    campaign_id = request.path_params["campaign_id"]
    answer = await api_of(request).request(console_of(request).principal, "GET", f"/campaigns/{campaign_id}")
    if answer.status_code != 200:
        return refused(request, answer)
    return page(request, "campaign.html", campaign=answer.json())


async def campaign_action(request: Request) -> Response:
    campaign_id, action = request.path_params["campaign_id"], request.path_params["action"]
    if action not in ACTIONS:
        return page(request, "error.html", status=404, status_code=404, detail=f"no action {action!r}")
    answer = await api_of(request).request(console_of(request).principal, "POST", f"/campaigns/{campaign_id}/{action}")
    if answer.status_code != 200:
        return refused(request, answer)
    return RedirectResponse(f"{request.scope.get('root_path', '')}/campaigns/{campaign_id}", 303)
