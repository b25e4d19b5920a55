"""What a campaign is (its validated settings) and when a contact may be called.

A contact is called only inside the campaign's calling window in the contact's own time zone
(or the campaign's default zone). `CallingWindow.next_opening` says, for a moment outside the
window, when it next opens, so the dialer can set the contact aside until then instead of
looking at it again and again.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from db.agent_configs import AGENT_ID_PATTERN

E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
MAX_CONCURRENT_CALLS = 1000
"""Bound on one campaign's concurrent calls (one slot document each)."""
MAX_CALLS_PER_SECOND = 100.0
"""Bound on one campaign's pace (Twilio's default account limit is 1 call per second)."""
LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"
"""A time of day without a zone ("09:00", "17:30:00"), as the API reads and writes window times."""

LocalTime = Annotated[time, WithJsonSchema({"type": "string", "pattern": LOCAL_TIME_PATTERN, "examples": ["09:00"]})]
"""A zone-less time of day. Documented by pattern, not as JSON Schema's `format: time`, which is
RFC 3339's full-time and requires an offset: a strict client (or schemathesis) would reject every
window the API returns."""


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name[:64]!r} (use an IANA name like 'America/New_York')") from None
    return name


class CallingWindow(BaseModel):
    """Local times (in the contact's zone) between which calls may be placed, on the given weekdays."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    start: LocalTime = time(9, 0)
    """Earliest local time of day a call may start."""
    end: LocalTime = time(20, 0)
    """Local time of day after which no call starts (must be after `start`: no overnight windows)."""
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5], min_length=1, max_length=7)
    """Weekdays calls may be placed on: 0 is Monday, 6 Sunday."""

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        if any(day < 0 or day > 6 for day in days) or len(set(days)) != len(days):
            raise ValueError("days are distinct weekdays 0 (Monday) to 6 (Sunday)")
        return sorted(days)

    @model_validator(mode="after")
    def _ordered(self) -> CallingWindow:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local times without a zone")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def next_opening(self, now: float, zone: str) -> float | None:
        """None if `now` (epoch seconds) is inside the window in `zone`, else when it next opens."""
        tz = ZoneInfo(zone)
        local = datetime.fromtimestamp(now, UTC).astimezone(tz)
        if local.weekday() in self.days and self.start <= local.time().replace(tzinfo=None) < self.end:
            return None
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            if day.weekday() not in self.days:
                continue
            opening = datetime.combine(day, self.start, tzinfo=tz).timestamp()
            if opening > now:
                return opening
        raise AssertionError("a window with at least one day opens within a week")


class Voicemail(BaseModel):
    """What to do when answering-machine detection says a machine answered."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    policy: Literal["hang_up", "leave_message"] = "hang_up"
    message: str | None = Field(None, min_length=1, max_length=500)
    """Spoken after the beep when `policy` is `leave_message`."""

    @model_validator(mode="after")
    def _message_when_leaving_one(self) -> Voicemail:
        if self.policy == "leave_message" and not self.message:
            raise ValueError("leave_message needs a message")
        return self


class CampaignSpec(BaseModel):
    """A campaign's settings, as the admin API accepts them."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str = Field(min_length=1, max_length=100)
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    """The agent that talks to each contact (its version at dial time is recorded per call)."""
    caller_id: str = Field(pattern=E164_PATTERN)
    """The Twilio number the calls come from."""
    timezone: str = Field("UTC", max_length=64)
    """IANA zone for contacts that do not name their own."""
    window: CallingWindow = Field(default_factory=CallingWindow)
    calls_per_second: float = Field(1.0, gt=0, le=MAX_CALLS_PER_SECOND)
    """Pace of new calls across all pods (Twilio's default account limit is 1)."""
    max_concurrent_calls: int = Field(5, ge=1, le=MAX_CONCURRENT_CALLS)
    max_attempts: int = Field(3, ge=1, le=10)
    """Calls per contact at most (the first and the retries after busy, no answer or failure)."""
    retry_delay_seconds: float = Field(600.0, ge=0, le=7 * 86_400)
    voicemail: Voicemail = Field(default_factory=Voicemail)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)
