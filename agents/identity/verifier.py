"""One call's identity, decided by the server: who the caller is (caller ID or the account they
name) and whether they proved it (keypad PIN, spoken facts), with a bounded number of attempts.

The verifier owns the call's `CallerIdentity`, the object every caller-scoped tool reads its key
from (`ToolContext.caller`), so a tool cannot see a key the verifier did not set. Nothing the
model sends sets it: `identify_caller` only records a claim, and a claim becomes the key only
after a proof the server checked. PIN digits are compared here and go nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime

from agents.identity.policy import IdentityPolicy
from agents.port import CallInfo
from db.caller_records import CallerRecords
from db.errors import DatabaseError
from db.pin_hash import pin_matches
from tools import CallerIdentity, ToolError

log = logging.getLogger("switchboard.agents")

IDENTIFY_TIMEOUT_S = 3.0
"""How long a caller turn waits for the caller-ID lookup started at call start."""
MAX_CLAIMS = 5
"""Identities a caller may name in one call (each is a database read)."""
UNAVAILABLE = "could not check who is calling right now; offer to transfer the caller"


class CallerVerifier:
    """Implements `tools.CallerChecks` for one call, under the agent's `IdentityPolicy`."""

    def __init__(
        self,
        policy: IdentityPolicy,
        records: CallerRecords | None,
        *,
        on_verified: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy
        self.records = records
        self.on_verified = on_verified
        self.identity = CallerIdentity(unverified_message="one moment: still checking who is calling; try again")
        self.identity.checks = self
        self.attempts = 0
        """Failed verifications so far (PIN entries and fact checks alike)."""
        self.locked = False
        """Attempts used up: nothing verifies this call any more."""
        self._claims = 0
        self._lock = asyncio.Lock()
        self._identifying: asyncio.Task[None] | None = None

    # -- identification ------------------------------------------------------------------

    def start(self, info: CallInfo) -> None:
        """Begin identifying the caller (by caller ID) beside the greeting."""
        self._identifying = asyncio.create_task(self._identify_by_number(info), name=f"identify-{info.call_sid}")

    async def settled(self) -> None:
        """Wait (bounded) until the caller-ID lookup has finished, so a turn's tools see its result."""
        task = self._identifying
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), IDENTIFY_TIMEOUT_S)
        except TimeoutError:
            self.identity.unverified_message = UNAVAILABLE
        except Exception:  # the caller stays unverified; the call goes on
            log.exception("caller identification failed")
            self.identity.unverified_message = UNAVAILABLE

    async def close(self) -> None:
        if self._identifying is not None and not self._identifying.done():
            self._identifying.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._identifying

    async def _identify_by_number(self, info: CallInfo) -> None:
        policy = self.policy
        if policy.identify_by != "caller_id":
            self._explain()
            return
        number = info.to_number if info.direction.startswith("outbound") else info.from_number
        try:
            key = await self.records.key_by(policy.phone_field, number) if self.records is not None else None
        except DatabaseError as exc:
            log.warning("caller lookup failed", extra={"event": "caller_lookup_failed", "error": str(exc)})
            self.identity.unverified_message = UNAVAILABLE
            return
        self._claims = 1
        self.identity.claimed_key = key
        if key is not None and policy.verify == "none":
            self._verified(key, "caller_id")
        self._explain()

    async def identify(self, field: str, value: str) -> str:
        """`identify_caller`: record the claim; the answer is the same whether or not it names
        anyone, so the tool cannot be used to find out who is a customer."""
        async with self._lock:
            if self.locked:
                raise ToolError(self._locked_message())
            if self.identity.customer_key is not None:
                raise ToolError("the caller is already verified; one call serves one customer's account")
            if self.policy.identify_by != "lookup":
                raise ToolError("this line identifies callers by the number they call from")
            if self._claims >= MAX_CLAIMS:
                raise ToolError("too many identities named on this call; offer to transfer the caller")
            self._claims += 1
            key = await self.records.key_by(field, value) if self.records is not None else None
            self.identity.claimed_key = key
            self._explain()
            return f"noted (not verified yet); now {self.policy.proof()}"

    # -- verification --------------------------------------------------------------------

    def expects_pin(self) -> bool:
        """Whether a keypad entry now is a PIN (so it must go to `check_pin`, not the model)."""
        return self.policy.verify == "dtmf_pin" and self.identity.customer_key is None and not self.locked

    async def check_pin(self, digits: str) -> str:
        """Check a keyed PIN; the answer is the note the model gets instead of the digits."""
        async with self._lock:
            if not self.expects_pin():
                return "(The caller pressed keys; no PIN is needed now.)"
            if not self._claims:
                return f"(The caller keyed a PIN before saying who they are; ask for their {self.policy.asks_for()}.)"
            key = self.identity.claimed_key
            stored = await self.records.pin_hash(key) if key is not None and self.records is not None else None
            # PBKDF2 takes tens of milliseconds: off the event loop, which carries the call's audio.
            if key is not None and await asyncio.to_thread(pin_matches, digits, stored):
                self._verified(key, "dtmf_pin")
                return "(The caller keyed their PIN: verified.)"
            left = self._failed("dtmf_pin")
            if left == 0:
                return "(The caller keyed a PIN that does not match; no attempts are left, so they cannot be verified.)"
            return f"(The caller keyed a PIN that does not match; {left} attempt{'s' if left > 1 else ''} left.)"

    async def verify(self, facts: Mapping[str, str]) -> str:
        """`verify_identity`: compare the said facts with the record's, all of them, and never
        say which one was wrong."""
        async with self._lock:
            if self.locked:
                raise ToolError(self._locked_message())
            if self.identity.customer_key is not None:
                return "the caller is already verified"
            if self.policy.verify != "knowledge":
                raise ToolError(f"this line does not verify by spoken facts; {self.policy.proof()}")
            if not self._claims:
                raise ToolError(self._unidentified_message())
            key = self.identity.claimed_key
            stored = await self.records.facts_of(key) if key is not None and self.records is not None else {}
            if key is not None and _all_match(self.policy.facts, facts, stored):
                self._verified(key, "knowledge")
                return "the caller is verified; go ahead with their request"
            left = self._failed("knowledge")
            if left == 0:
                raise ToolError(self._locked_message())
            raise ToolError(
                f"those details do not match the account ({left} attempt{'s' if left > 1 else ''} left); ask the "
                "caller to check them, without saying which one was wrong"
            )

    # -- state ---------------------------------------------------------------------------

    def _verified(self, key: str, how: str) -> None:
        self.identity.customer_key = key
        log.info("caller verified", extra={"event": "caller_verified", "how": how})
        if self.on_verified is not None:
            self.on_verified(key)

    def _failed(self, how: str) -> int:
        self.attempts += 1
        left = max(0, self.policy.max_attempts - self.attempts)
        log.info("caller verification failed", extra={"event": "caller_not_verified", "how": how, "left": left})
        if left == 0:
            self.locked = True
        self._explain()
        return left

    def _explain(self) -> None:
        """Keep the message caller-scoped tools refuse with in step with the state."""
        policy = self.policy
        if self.identity.customer_key is not None:
            return  # tools no longer refuse
        if self.locked:
            message = self._locked_message()
        elif not self._claims:
            message = self._unidentified_message()
        elif policy.identify_by == "caller_id" and self.identity.claimed_key is None:
            message = "this phone number is not on file, so no account can be used on this call; offer a transfer"
        else:
            message = f"the caller is not verified yet: {policy.proof()}"
        self.identity.unverified_message = message

    def _unidentified_message(self) -> str:
        return f"the caller is not identified: ask for their {self.policy.asks_for()}, then call identify_caller"

    def _locked_message(self) -> str:
        return f"the caller could not be verified on this call; look nothing up. Say: {self.policy.cannot_verify}"


def normalise(value: object) -> str:
    """A fact as compared: case and width folded, only letters and digits kept."""
    if isinstance(value, datetime):
        value = value.date().isoformat()
    elif isinstance(value, date):
        value = value.isoformat()
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def fact_matches(stored: object, said: str) -> bool:
    """Whether the caller's answer is the stored fact; digits only when the fact is a number or date."""
    expected = normalise(stored)
    if not expected:
        return False
    given = normalise(said)
    if expected.isdigit() or isinstance(stored, (int, float)):
        given = "".join(ch for ch in given if ch.isdigit())  # "1815-12-10" and "1815 12 10" alike
    return hmac.compare_digest(expected.encode(), given.encode())


def _all_match(names: list[str], said: Mapping[str, str], stored: Mapping[str, object]) -> bool:
    results = [name in stored and name in said and fact_matches(stored[name], said[name]) for name in names]
    return all(results)  # every fact compared, whichever is wrong
