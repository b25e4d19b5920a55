"""The admin API's post-call parts: a bad declaration is a 422 that says where, and the list filters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import HTTPException

from db import CallRecords, Database
from telephony.admin.post_call import field_filters
from tests.support.admin_api import admin_client
from tests.support.db import open_test_database

pytestmark = pytest.mark.mongodb


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as database:
        yield database


async def test_a_bad_declaration_is_refused_with_its_location(database: Database) -> None:
    async with admin_client(database) as api:
        bad = await api.post(
            "/api/agents",
            json={"id": "support", "post_call": {"fields": [{"name": "mood", "kind": "choice", "choices": ["ok"]}]}},
        )
        assert bad.status_code == 422
        problem = bad.json()["detail"][0]
        assert problem["loc"][-3:] == ["post_call", "fields", 0] and "at least 2 choices" in problem["msg"]
        good = await api.post(
            "/api/agents",
            json={"id": "support", "post_call": {"summary": True, "fields": [{"name": "resolved", "kind": "yes_no"}]}},
        )
        assert good.status_code == 201, good.text


async def test_the_detail_and_the_listing_carry_the_post_call_result(database: Database) -> None:
    calls = CallRecords(database)
    await calls.start("CAa1", agent_id="support", from_number="+15550001", to_number="+15550002")
    await calls.start("CAa2", agent_id="support", from_number="+15550001", to_number="+15550002")
    await calls.set_post_call("CAa1", "done", summary="Fixed.", fields={"resolved": True, "total": 3})
    async with admin_client(database) as api:
        detail = (await api.get("/api/calls/CAa1")).json()
        assert detail["post_call"]["summary"] == "Fixed." and detail["post_call"]["fields"]["resolved"] is True
        assert (await api.get("/api/calls/CAa2")).json()["post_call"] is None
        listed = (await api.get("/api/calls", params=[("field", "resolved:true"), ("field", "total:3")])).json()
        assert [c["call_sid"] for c in listed["items"]] == ["CAa1"]
        assert listed["items"][0]["post_call"] == {"status": "done", "fields": {"resolved": True, "total": 3}}
        too_many = await api.get("/api/calls", params=[("field", f"f{i}:x") for i in range(9)])
        assert too_many.status_code == 422


def test_a_filter_value_stands_for_every_kind_it_can_be() -> None:
    assert field_filters(["resolved:yes", "total:2.5", "reason:billing"]) == {
        "resolved": ["yes", True],
        "total": ["2.5", 2.5],
        "reason": ["billing"],
    }
    assert field_filters(["x:nan"]) == {"x": ["nan"]} and field_filters(None) is None
    for bad in (["resolved"], ["Resolved:yes"], ["a.b:1"], ["x:"], ["x:" + "v" * 201], ["x:1", "x:2"]):
        with pytest.raises(HTTPException) as caught:
            field_filters(bad)
        assert caught.value.status_code == 422 and caught.value.detail[0]["loc"] == ["query", "field"]
