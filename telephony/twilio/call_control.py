"""An operator's hand on a call live on this pod: end it now, or transfer it (the admin API).

Acts through the call's port, as the agent's own end_call / transfer_call do: the agent's queued
audio is dropped first (an operator's end is immediate, not after the sentence in flight), then
the port ends the stream and Twilio's `<Connect action>` request gets `<Hangup/>` or `<Dial>`.
Before that, the call's record is told (a system line, and the outcome unless the session had
already decided one), so the stored record says an operator ended it, not that the caller hung up.
"""

from __future__ import annotations

from collections.abc import Callable

from telephony.twilio.port import TwilioCallPort

OperatorNote = Callable[[str, str, str], None]
"""(call sid, outcome, transcript line): tells the call's record what the operator did."""


class PortControl:
    """`CallControl` for a Twilio media stream's port."""

    def __init__(self, port: TwilioCallPort, note: OperatorNote | None = None) -> None:
        self.port = port
        self.note = note

    async def end(self, reason: str) -> None:
        self._note(reason, reason)
        await self.port.clear()
        await self.port.hang_up(reason)

    async def transfer(self, to: str, reason: str) -> None:
        self._note(reason, f"transfer to {to} ({reason})")
        await self.port.clear()
        await self.port.transfer(to)

    def _note(self, outcome: str, line: str) -> None:
        if self.note is not None and not self.port.closed and self.port.outcome is None:
            self.note(self.port.info.call_sid, outcome, line)
