"""The fake Twilio REST server on a loopback port, for the outbound and dialer tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from telephony.server import BackgroundServer
from telephony.simulator.fake_twilio_rest import FakeTwilioRest
from tests.support.settings import AUTH_TOKEN, make_settings

ACCOUNT_SID = "AC" + "0" * 32


@contextmanager
def serve_fake_twilio(**options: Any) -> Iterator[tuple[FakeTwilioRest, str]]:
    fake = FakeTwilioRest(ACCOUNT_SID, AUTH_TOKEN, **options)
    with BackgroundServer(fake.app, make_settings()) as url:  # type: ignore[arg-type]
        yield fake, url
