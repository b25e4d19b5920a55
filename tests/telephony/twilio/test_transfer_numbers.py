"""Transfer targets are checked against the allow-list: premium-rate and foreign numbers are refused
when an agent is written and again when a call is transferred (defence in depth)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from starlette.applications import Starlette

from agents.port import Transfer
from telephony.settings import Settings
from telephony.twilio.transfer_numbers import TransferNumbers
from tests.support.settings import make_settings
from tests.support.twilio_requests import post_signed, voice_params

DEFAULT = TransferNumbers(Settings.model_fields["transfer_allowed_numbers"].default)


@pytest.mark.parametrize("target", ["+12125550123", "+14165550123", "+18005550123", "+15550199"])
def test_the_default_allows_domestic_nanp_numbers(target: str) -> None:
    assert DEFAULT.refusal(target) is None


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("+19005550123", "premium"),  # NANP premium-rate area code
        ("+12129765555", "premium"),  # 976 exchange: local premium-rate
        ("+18765550123", "outside"),  # Jamaica: +1 but international rates (one-ring fraud)
        ("+18095550123", "outside"),  # Dominican Republic
        ("+447700900123", "allow-list"),  # foreign
        ("+882123456789", "allow-list"),  # international networks (satellite)
        ("sip:anyone@evil.example", "allow-list"),
        ("12125550123", "E.164"),
        ("+1 212 555 0123", "E.164"),
        ("", "E.164"),
    ],
)
def test_the_default_refuses_premium_foreign_and_malformed_targets(target: str, why: str) -> None:
    refusal = DEFAULT.refusal(target)
    assert refusal is not None and why in refusal


def test_patterns_widen_the_list_but_never_past_premium_rate() -> None:
    numbers = TransferNumbers("+1*, +44*, sip:*@pbx.example.com")
    assert numbers.refusal("+447700900123") is None
    assert numbers.refusal("sip:desk@pbx.example.com") is None
    assert numbers.refusal("sip:desk@pbx.example.com.evil.example") is not None
    assert numbers.refusal("+19005550123") is not None
    assert TransferNumbers("").refusal("+12125550123") is not None  # empty: no transfers at all


@pytest.mark.parametrize("patterns", ["+1*,12*", "*", "+1*,", "sip:*"])
def test_patterns_that_would_open_everything_or_cannot_match_are_refused_at_start_up(patterns: str) -> None:
    with pytest.raises(ValueError, match="transfer_allowed_numbers"):
        make_settings(transfer_allowed_numbers=patterns)


@pytest.mark.parametrize("target", ["+19005550123", "+447700900123"])
def test_a_refused_target_is_not_dialled_when_the_stream_ends(server: str, app: Starlette, target: str) -> None:
    params = voice_params(CallStatus="in-progress")
    app.state.pod.outcomes.put(params["CallSid"], Transfer(target))
    document = ET.fromstring(post_signed(server, "/twilio/connect-action", params).text)
    assert [verb.tag for verb in document] == ["Hangup"]


def test_the_pods_own_transfer_number_must_be_on_the_allow_list_at_start_up() -> None:
    with pytest.raises(ValueError, match="transfer_number"):
        make_settings(transfer_number="+19005550123")
    assert make_settings(transfer_number="+447700900123", transfer_allowed_numbers="+44*").transfer_number
