"""`POST /twilio/voice` and `/twilio/connect-action` against the real server on loopback."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import ClassVar

import httpx
import pytest
from starlette.applications import Starlette

from agents.port import Transfer
from telephony.app import create_app
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.twilio import call_token
from tests.support.settings import AGENT_NUMBER, make_settings
from tests.support.twilio_requests import post_signed, sign, voice_params


def twiml(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.text)


class TestSignature:
    def test_valid_signature_gets_connect_stream_with_call_token(self, server: str, settings: Settings) -> None:
        params = voice_params()
        document = twiml(post_signed(server, "/twilio/voice", params))

        connect = document.find("Connect")
        assert connect is not None
        assert connect.get("action") == server + "/twilio/connect-action"
        stream = connect.find("Stream")
        assert stream is not None
        assert stream.get("url") == server.replace("http://", "ws://") + "/twilio/media"
        parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        claims = call_token.verify(settings.call_token_key(), parameters["token"])
        assert claims.call_sid == params["CallSid"]
        assert claims.agent_id == "echo"
        assert (claims.from_number, claims.to_number) == (params["From"], AGENT_NUMBER)

    def test_forged_signature_is_403(self, server: str) -> None:
        params = voice_params()
        response = post_signed(server, "/twilio/voice", params, token="not-the-auth-token")
        assert response.status_code == 403

    def test_missing_signature_is_403(self, server: str) -> None:
        response = httpx.post(server + "/twilio/voice", data=voice_params())
        assert response.status_code == 403

    def test_signature_for_another_url_is_403(self, server: str) -> None:
        params = voice_params()
        response = post_signed(server, "/twilio/voice", params, signed_url="https://evil.example.com/twilio/voice")
        assert response.status_code == 403

    def test_signature_over_other_parameters_is_403(self, server: str) -> None:
        params = voice_params()
        signature = sign(server + "/twilio/voice", params)
        tampered = dict(params, To="+15559999999")
        response = httpx.post(server + "/twilio/voice", data=tampered, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 403

    def test_query_string_is_part_of_the_signed_url(self, server: str) -> None:
        params = voice_params()
        url = server + "/twilio/voice?tenant=acme"
        ok = httpx.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)})
        assert ok.status_code == 200
        stripped = httpx.post(url, data=params, headers={"X-Twilio-Signature": sign(server + "/twilio/voice", params)})
        assert stripped.status_code == 403

    def test_hmac_sha256_signature_with_settings_header(self, server: str) -> None:
        params = voice_params()
        url = server + "/twilio/voice"
        headers = {
            "X-Twilio-Signature": sign(url, params, algorithm="HMAC_SHA256"),
            "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_test,algorithm=HMAC_SHA256",
        }
        assert httpx.post(url, data=params, headers=headers).status_code == 200


class TestPublicUrl:
    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(public_url="https://calls.example.com")

    def test_signature_checked_against_configured_public_url(self, server: str) -> None:
        params = voice_params()
        document = twiml(
            post_signed(server, "/twilio/voice", params, signed_url="https://calls.example.com/twilio/voice")
        )
        stream = document.find("Connect/Stream")
        assert stream is not None and stream.get("url") == "wss://calls.example.com/twilio/media"

    def test_local_url_signature_is_403_when_public_url_is_set(self, server: str) -> None:
        assert post_signed(server, "/twilio/voice", voice_params()).status_code == 403


class TestForwardedHeaders:
    PROXY_HEADERS: ClassVar[dict[str, str]] = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "edge.example.com"}
    PUBLIC = "https://edge.example.com/twilio/voice"

    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(trust_forwarded_headers=True)

    def test_trusted_proxy_headers_rebuild_the_public_url(self, server: str) -> None:
        params = voice_params()
        document = twiml(
            post_signed(server, "/twilio/voice", params, signed_url=self.PUBLIC, headers=self.PROXY_HEADERS)
        )
        stream = document.find("Connect/Stream")
        assert stream is not None and stream.get("url") == "wss://edge.example.com/twilio/media"


def test_forwarded_headers_ignored_unless_trusted(server: str) -> None:
    params = voice_params()
    response = post_signed(
        server,
        "/twilio/voice",
        params,
        signed_url=TestForwardedHeaders.PUBLIC,
        headers=TestForwardedHeaders.PROXY_HEADERS,
    )
    assert response.status_code == 403


class TestRouting:
    def test_unknown_number_gets_polite_say_and_hangup(self, server: str, settings: Settings) -> None:
        document = twiml(post_signed(server, "/twilio/voice", voice_params(to="+15551110000")))
        assert [verb.tag for verb in document] == ["Say", "Hangup"]
        assert document.find("Say").text == settings.unknown_number_message  # type: ignore[union-attr]

    def test_number_routed_to_missing_agent_is_treated_as_unknown(self) -> None:
        settings = make_settings(numbers={AGENT_NUMBER: "no-such-agent"})
        with BackgroundServer(create_app(settings), settings) as url:
            document = twiml(post_signed(url, "/twilio/voice", voice_params()))
        assert [verb.tag for verb in document] == ["Say", "Hangup"]


class TestAdmission:
    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(max_concurrent_calls=1)

    def test_call_over_the_limit_hears_busy_message(self, server: str, settings: Settings) -> None:
        twiml(post_signed(server, "/twilio/voice", voice_params()))  # holds the only place
        document = twiml(post_signed(server, "/twilio/voice", voice_params()))
        assert [verb.tag for verb in document] == ["Say", "Hangup"]
        assert document.find("Say").text == settings.busy_message  # type: ignore[union-attr]

    def test_repeated_webhook_for_the_same_call_is_not_counted_twice(self, server: str, app: Starlette) -> None:
        params = voice_params()
        twiml(post_signed(server, "/twilio/voice", params))
        assert twiml(post_signed(server, "/twilio/voice", params)).find("Connect") is None  # a replay: no token
        assert app.state.pod.calls.count == 1


def test_busy_can_be_answered_with_reject() -> None:
    settings = make_settings(max_concurrent_calls=1, busy_response="reject")
    with BackgroundServer(create_app(settings), settings) as url:
        twiml(post_signed(url, "/twilio/voice", voice_params()))
        document = twiml(post_signed(url, "/twilio/voice", voice_params()))
    reject = document.find("Reject")
    assert reject is not None and reject.get("reason") == "busy"


class TestBadRequests:
    def test_body_over_the_limit_is_413(self, server: str, settings: Settings) -> None:
        params = voice_params(Padding="x" * settings.webhook_max_body_bytes)
        assert post_signed(server, "/twilio/voice", params).status_code == 413

    def test_signed_but_incomplete_form_is_400_naming_the_field(self, server: str) -> None:
        params = voice_params()
        del params["To"]
        response = post_signed(server, "/twilio/voice", params)
        assert response.status_code == 400
        assert "To" in response.text

    def test_garbage_body_with_no_signature_is_403(self, server: str) -> None:
        response = httpx.post(server + "/twilio/voice", content=b"\xff\xfe%%%&&&==", headers={"content-type": "x/y"})
        assert response.status_code == 403

    def test_get_is_405(self, server: str) -> None:
        assert httpx.get(server + "/twilio/voice").status_code == 405


def test_other_account_is_403_when_account_is_pinned() -> None:
    settings = make_settings(twilio_account_sid="AC" + "1" * 32)
    with BackgroundServer(create_app(settings), settings) as url:
        assert post_signed(url, "/twilio/voice", voice_params()).status_code == 403
        ok = post_signed(url, "/twilio/voice", voice_params(AccountSid="AC" + "1" * 32))
    assert ok.status_code == 200


class TestConnectAction:
    def test_stream_end_without_outcome_hangs_up(self, server: str) -> None:
        document = twiml(post_signed(server, "/twilio/connect-action", voice_params(CallStatus="in-progress")))
        assert [verb.tag for verb in document] == ["Hangup"]

    def test_transfer_outcome_dials_the_target_once(self, server: str, app: Starlette) -> None:
        params = voice_params(CallStatus="in-progress")
        app.state.pod.outcomes.put(params["CallSid"], Transfer("+15550199"))
        document = twiml(post_signed(server, "/twilio/connect-action", params))
        assert document.find("Dial/Number").text == "+15550199"  # type: ignore[union-attr]
        again = twiml(post_signed(server, "/twilio/connect-action", params))
        assert [verb.tag for verb in again] == ["Hangup"]

    def test_unsigned_action_is_403(self, server: str) -> None:
        assert httpx.post(server + "/twilio/connect-action", data=voice_params()).status_code == 403


def test_healthz(server: str) -> None:
    body = httpx.get(server + "/healthz").json()
    assert body["status"] == "ok" and body["active_calls"] == 0
