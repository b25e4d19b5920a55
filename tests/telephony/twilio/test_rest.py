"""Twilio's REST API through the `twilio` library's HTTP hook, against the fake on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from telephony.simulator.fake_twilio_rest import FakeTwilioRest
from telephony.twilio.rest import TwilioApiError, TwilioRest
from tests.support.fake_twilio import ACCOUNT_SID, serve_fake_twilio
from tests.support.settings import AUTH_TOKEN


@pytest.fixture
def fake() -> Iterator[tuple[FakeTwilioRest, str]]:
    with serve_fake_twilio(call_seconds=0.05) as served:
        yield served


def client(url: str, **options: object) -> TwilioRest:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    rest = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, base_url=url, sleep=sleep, **options)  # type: ignore[arg-type]
    rest.sleeps = sleeps  # type: ignore[attr-defined]
    return rest


async def test_a_call_is_created_with_twilios_parameter_names(fake: tuple[FakeTwilioRest, str]) -> None:
    twilio, url = fake
    rest = client(url)
    created = await rest.create_call(
        to="+15550001111",
        from_="+15550100",
        url="https://calls.example.com/twilio/outbound?agent=support",
        status_callback="https://calls.example.com/twilio/call-status",
        status_callback_event=["completed"],
        machine_detection="DetectMessageEnd",
        async_amd="true",
        async_amd_status_callback="https://calls.example.com/twilio/amd-status",
        timeout=30,
    )
    await rest.close()
    assert created.sid.startswith("CA") and created.status == "queued"
    (request,) = twilio.creates()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.params["To"] == "+15550001111" and request.params["From"] == "+15550100"
    assert request.params["MachineDetection"] == "DetectMessageEnd" and request.params["AsyncAmd"] == "true"
    assert request.params["StatusCallbackEvent"] == "completed" and request.params["Timeout"] == "30"


async def test_429_and_5xx_are_retried_with_growing_backoff(fake: tuple[FakeTwilioRest, str]) -> None:
    twilio, url = fake
    twilio.pending_faults.extend([429, 503, 500])
    rest = client(url, backoff=0.5, backoff_max=8.0)
    created = await rest.create_call(to="+15550001111", from_="+15550100", url="https://x.example/a")
    await rest.close()
    assert created.sid in twilio.calls
    assert [r.status for r in twilio.refused_creates()] == [429, 503, 500]
    assert len(twilio.creates()) == 1  # nothing created twice
    sleeps = rest.sleeps  # type: ignore[attr-defined]
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]
    assert 0.4 <= sleeps[0] <= 0.6 and 1.6 <= sleeps[2] <= 2.4


async def test_retries_are_bounded_and_the_error_is_twilios(fake: tuple[FakeTwilioRest, str]) -> None:
    twilio, url = fake
    twilio.pending_faults.extend([429] * 5)
    rest = client(url, max_retries=2)
    with pytest.raises(TwilioApiError) as error:
        await rest.create_call(to="+15550001111", from_="+15550100", url="https://x.example/a")
    await rest.close()
    assert error.value.status == 429 and error.value.code == 20429 and error.value.retryable
    assert len(twilio.refused_creates()) == 3 and not twilio.creates()


async def test_a_client_error_is_not_retried(fake: tuple[FakeTwilioRest, str]) -> None:
    twilio, url = fake
    rest = client(url)
    with pytest.raises(TwilioApiError) as error:
        await rest.create_call(to="", from_="+15550100", url="https://x.example/a")
    bad_auth = TwilioRest(ACCOUNT_SID, "wrong-token", base_url=url)
    with pytest.raises(TwilioApiError) as denied:
        await bad_auth.create_call(to="+15550001111", from_="+15550100", url="https://x.example/a")
    await rest.close()
    await bad_auth.close()
    assert error.value.status == 400 and not error.value.retryable
    assert denied.value.status == 401 and denied.value.code == 20003
    assert len(twilio.refused_creates()) == 2


async def test_a_call_can_be_hung_up(fake: tuple[FakeTwilioRest, str]) -> None:
    twilio, url = fake
    twilio.call_seconds = 30
    rest = client(url)
    created = await rest.create_call(to="+15550001111", from_="+15550100", url="https://x.example/a")
    assert await rest.update_call(created.sid, status="completed")
    await rest.close()
    assert twilio.calls[created.sid].updates == [{"Status": "completed"}]


async def test_a_lost_create_answer_is_looked_up_and_an_unreadable_list_is_ambiguous(
    fake: tuple[FakeTwilioRest, str],
) -> None:
    twilio, url = fake
    twilio.lost_answer_seconds = 1.0
    rest = client(url, timeout=0.3, max_retries=2)
    try:
        twilio.lost_answers.append("created")
        found = await rest.create_call(to="+15550002222", from_="+15550100", url="https://calls.example.com/a")
        assert found.sid in twilio.calls and len(twilio.creates()) == 1  # found in the list, not re-sent
        assert await rest.find_call(to="+15550002222", from_="+15550199", since=0) is None  # not our From
        twilio.lost_answers.append("not_created")
        again = await rest.create_call(to="+15550003333", from_="+15550100", url="https://calls.example.com/a")
        assert [c.to for c in twilio.calls.values()].count("+15550003333") == 1 and again.sid in twilio.calls
        twilio.lost_answers.append("created")
        twilio.list_faults.extend([503] * 5)
        with pytest.raises(TwilioApiError) as raised:
            await rest.create_call(to="+15550004444", from_="+15550100", url="https://calls.example.com/a")
        assert raised.value.ambiguous and not raised.value.retryable and "lookup failed" in raised.value.message
        assert [c.to for c in twilio.calls.values()].count("+15550004444") == 1  # placed once, never repeated
    finally:
        await rest.close()
