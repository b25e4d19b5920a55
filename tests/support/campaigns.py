"""Starting a campaign on a test pod through the admin API, inside its calling window."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.campaign_pod import Pod, ShiftedClock
from tests.support.settings import AGENT_NUMBER

WEDNESDAY_5PM_UTC = datetime(2025, 1, 15, 17, 0, tzinfo=UTC).timestamp()
"""Noon in New York: inside the window `start_campaign` gives its campaigns."""


async def make_campaign(pod: Pod, contacts: list[dict], **spec: object) -> str:
    """A campaign for the echo agent (every day 09:00-20:00 New York time) with `contacts`, uploaded
    a thousand at a time; returns its id."""
    body = {
        "name": "test",
        "agent_id": "echo",
        "caller_id": AGENT_NUMBER,
        "timezone": "America/New_York",
        "window": {"start": "09:00", "end": "20:00", "days": [0, 1, 2, 3, 4, 5, 6]},
    } | spec
    created = await pod.api.post("/api/campaigns", json=body)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    for start in range(0, len(contacts), 1000):
        upload = await pod.api.post(f"/api/campaigns/{cid}/contacts", json=contacts[start : start + 1000])
        assert upload.status_code == 200 and upload.json()["rejected"] == 0, upload.text
    return cid


async def start_campaign(pod: Pod, phones: list[str], **spec: object) -> str:
    """A running campaign for the echo agent calling `phones`; the pod's clock is moved into its
    calling window. Returns the campaign's id."""
    pod.edge.clock = ShiftedClock(WEDNESDAY_5PM_UTC)
    cid = await make_campaign(pod, [{"phone": phone} for phone in phones], **({"calls_per_second": 50} | spec))
    started = await pod.api.post(f"/api/campaigns/{cid}/start")
    assert started.status_code == 200, started.text
    return cid
