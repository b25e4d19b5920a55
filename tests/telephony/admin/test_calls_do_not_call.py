"""`POST /api/calls` honours the do-not-call list, as the campaign dialer does: a listed number is
refused (409, naming the field) before Twilio is asked."""

from __future__ import annotations

import pytest

from tests.support.campaign_pod import campaign_pod
from tests.support.settings import AGENT_NUMBER

pytestmark = pytest.mark.mongodb

LISTED = "+15550009999"


async def test_a_number_on_the_do_not_call_list_is_not_dialled() -> None:
    async with campaign_pod() as pod:
        assert (await pod.api.post("/api/do-not-call", json={"numbers": [LISTED]})).json() == {"added": 1}
        call = {"to": LISTED, "from_number": AGENT_NUMBER, "agent_id": "echo"}
        response = await pod.api.post("/api/calls", json=call)
        assert response.status_code == 409, response.text
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "to"] and "do-not-call" in error["msg"]
        assert pod.fake.creates() == []
        assert (await pod.api.delete(f"/api/do-not-call/{LISTED}")).status_code == 204
        again = await pod.api.post("/api/calls", json=call)
        assert again.status_code == 201, again.text
        assert [create.params["To"] for create in pod.fake.creates()] == [LISTED]
