"""The campaign dialer: places each running campaign's calls at its pace, under its concurrency cap,
inside each contact's calling window, retrying busy / no-answer / failed calls after a delay.

Any number of pods run it over the same campaigns; all coordination goes through MongoDB:

1. hold a concurrency slot (`Campaigns.acquire_slot`, atomic, with an expiry);
2. lease a due contact (`Contacts.lease`, atomic `find_one_and_update`, with an expiry); one on
   the do-not-call list is skipped, one outside its calling window is set aside until it opens;
3. reserve the next dial time for the campaign (`Campaigns.reserve_dial_time`: all pods together
   keep to `calls_per_second`) and wait for it;
4. count the attempt, label the slot with it, and ask Twilio (`place_call`); the status callback
   (on whichever pod receives it) settles the attempt and frees the slot. A create whose answer was
   lost is looked up in Twilio's call list (`TwilioRest.create_call`); if even that fails, the
   attempt waits for its status callback instead of being failed or redialled.

Before every call the pod's admission is asked (`PodAdmission.hold_reason`, the same object that
answers the webhooks and `/readyz`); while it gives a reason (the pod drains, is short of memory,
is full) this pod places no calls. A pod that dies loses its leases and slots when they expire;
attempts it left without a status callback are found by `recover` once their call could no longer
be running, count as failed, and are retried like any failure; `recover` also returns any slot still
held for an attempt that has settled, so the campaign's concurrency stays exact.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from db import AgentConfigs, Campaigns, Contacts, DoNotCall, TransitionRefused
from db.contacts import contact_key
from telephony.campaigns.campaign import CampaignSpec
from telephony.twilio.outbound import CallRef, NotConfigured, place_call, settle_attempt
from telephony.twilio.rest import TwilioApiError

if TYPE_CHECKING:
    from telephony.pod import Pod

log = logging.getLogger("switchboard.dialer")

MAX_SKIPS_PER_LEASE = 200
"""Contacts set aside (window, do-not-call) in one search for a callable one before yielding."""
DEFAULT_MAX_CALL_SECONDS = 900.0
MAX_SLOTS_CHECKED = 1000
"""Bound on held slots looked at in one search for lost ones."""
ATTEMPT_LABEL = re.compile(r"^(?P<contact>[0-9a-f]{24}):(?P<attempt>[0-9]{1,3})$")
"""How a slot held for a placed attempt is labelled (`<contact id>:<attempt>`)."""


class Dialer:
    def __init__(
        self,
        pod: Pod,
        *,
        owner: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        assert pod.database is not None, "the dialer needs the database"
        self.pod = pod
        self.admission = pod.admission
        """The pod's own admission: the dialer holds for the reasons that refuse a webhook."""
        self.owner = owner or f"{socket.gethostname()}-{secrets.token_hex(4)}"
        self._sleep = sleep
        self.campaigns = Campaigns(pod.database)
        self.contacts = Contacts(pod.database)
        self.do_not_call = DoNotCall(pod.database)
        self.agents = AgentConfigs(pod.database)
        s = pod.settings
        self.lease_seconds = s.dialer_lease_seconds
        self.poll_seconds = s.dialer_poll_seconds
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self.holding: str | None = None
        """Why this pod is not dialing right now (None: it is, or has nothing to dial)."""
        self.placed = 0

    @property
    def clock(self) -> Callable[[], float]:
        return self.pod.clock

    async def run(self) -> None:
        """Dial every running campaign until cancelled. Cancelling is a crash as far as the other
        pods know: leases and slots are left to expire (`stop` is the gentle way)."""
        try:
            while True:
                for campaign_id in await self.campaigns.running_ids(limit=self.pod.settings.dialer_max_campaigns):
                    worker = self._workers.get(campaign_id)
                    if worker is None or worker.done():
                        self._workers[campaign_id] = asyncio.create_task(
                            self._work(campaign_id), name=f"dialer-{campaign_id}"
                        )
                await self._sleep(self.poll_seconds)
        finally:
            tasks = [*self._workers.values(), *self._calls]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait for the calls this pod is placing right now (tests, graceful stop)."""
        while self._calls:
            await asyncio.gather(*list(self._calls), return_exceptions=True)

    # -- one campaign ------------------------------------------------------------------------

    async def _work(self, campaign_id: str) -> None:
        last_recovery = 0.0
        try:
            while True:
                campaign = await self.campaigns.get(campaign_id)
                if campaign is None or campaign["status"] != "running":
                    return
                spec = CampaignSpec.model_validate(campaign["spec"])
                if self.clock() - last_recovery >= self.lease_seconds / 2:
                    await self.recover(campaign_id, spec)
                    last_recovery = self.clock()
                if await self._step(campaign_id, spec) == "finished":
                    await self._complete(campaign_id)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("campaign worker failed; it restarts on the next poll", extra={"campaign": campaign_id})

    async def _step(self, campaign_id: str, spec: CampaignSpec) -> str:
        """One call placed (or a reason to wait); "finished" when nothing is left to dial."""
        reason = self.admission.hold_reason()
        if reason is not None:
            self._hold(reason)
            await self._sleep(self.poll_seconds)
            return "held"
        self.holding = None
        now = self.clock()
        holder = f"{self.owner}:{secrets.token_hex(6)}"
        slot = await self.campaigns.acquire_slot(campaign_id, holder, now=now, until=now + self.lease_seconds)
        if slot is None:  # the campaign is at its concurrency cap
            await self._sleep(min(self.poll_seconds, 1.0 / spec.calls_per_second))
            return "full"
        contact = await self._next_contact(campaign_id, spec)
        if contact is None:
            await self.campaigns.release_slot(slot, holder)
            if await self._finished(campaign_id):
                return "finished"
            await self._sleep(self.poll_seconds)
            return "idle"
        at = await self.campaigns.reserve_dial_time(campaign_id, now=self.clock(), interval=1.0 / spec.calls_per_second)
        if at > self.clock():
            await self._sleep(at - self.clock())
        reason = self.admission.hold_reason()
        opening = spec.window.next_opening(self.clock(), contact.get("timezone") or spec.timezone)
        if reason is not None or opening is not None:  # things changed while waiting for our turn
            await self.contacts.defer(contact["_id"], self.owner, not_before=opening or self.clock())
            await self.campaigns.release_slot(slot, holder)
            return "held"
        task = asyncio.create_task(self._dial(campaign_id, spec, contact, slot, holder))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return "dialing"

    def _hold(self, reason: str) -> None:
        if reason != self.holding:
            log.info("dialer holding", extra={"reason": reason, "owner": self.owner})
        self.holding = reason

    async def _next_contact(self, campaign_id: str, spec: CampaignSpec) -> dict[str, Any] | None:
        """Lease a contact that may be called now: do-not-call numbers are skipped, contacts outside
        their window are set aside until it opens."""
        for _ in range(MAX_SKIPS_PER_LEASE):
            now = self.clock()
            contact = await self.contacts.lease(campaign_id, self.owner, now=now, lease_seconds=self.lease_seconds)
            if contact is None:
                return None
            if await self.do_not_call.contains(contact["phone"]):
                await self.contacts.skip(contact["_id"], self.owner, reason="do_not_call")
                continue
            opening = spec.window.next_opening(now, contact.get("timezone") or spec.timezone)
            if opening is not None:
                await self.contacts.defer(contact["_id"], self.owner, not_before=opening)
                continue
            return contact
        return None

    async def _dial(
        self, campaign_id: str, spec: CampaignSpec, contact: dict[str, Any], slot: str, holder: str
    ) -> None:
        contact_id = contact["_id"]
        settings = self.pod.settings
        stored = await self.agents.current(spec.agent_id)
        max_call = float((stored.config if stored else {}).get("max_call_seconds", DEFAULT_MAX_CALL_SECONDS))
        now = self.clock()
        # Until a status callback settles it, the attempt (and its slot) is held for as long as
        # the call could possibly last, so no pod redials a contact that may be on the phone.
        call_until = now + settings.outbound_ring_timeout_seconds + max_call + settings.dialer_call_slack_seconds
        attempt = await self.contacts.start_dialing(contact_id, self.owner, slot=slot, until=call_until)
        if attempt is None:  # our lease ran out and another pod has the contact
            await self.campaigns.release_slot(slot, holder)
            return
        label = f"{contact_id}:{attempt}"
        if not await self.campaigns.hold_slot(slot, holder, until=call_until, new_holder=label):
            # our hold ran out while we waited for our turn, and another pod may have the slot:
            # take a free one for the call or do not place it (the campaign's cap stays exact)
            slot = await self.campaigns.acquire_slot(campaign_id, label, now=self.clock(), until=call_until) or ""
            if not slot:
                log.warning("slot lost before dialing; the contact waits", extra={"contact": str(contact_id)})
                await self.contacts.undo_dialing(
                    contact_id, attempt, not_before=self.clock() + self.poll_seconds, reason="slot_lost"
                )
                return
        ref = CallRef(
            agent=spec.agent_id,
            v=stored.version if stored else None,
            campaign=campaign_id,
            contact=str(contact_id),
            attempt=attempt,
        )
        try:
            created = await place_call(
                self.pod,
                to=contact["phone"],
                from_=spec.caller_id,
                ref=ref,
                voicemail=spec.voicemail,
                max_call_seconds=max_call,
                variables=contact.get("variables"),
            )
        except (TwilioApiError, NotConfigured) as exc:
            await self._not_placed(ref, spec, exc, slot, label)
            return
        self.placed += 1
        await self.contacts.dialed(contact_id, attempt, call_sid=created.sid, until=call_until, slot=slot)

    async def _not_placed(self, ref: CallRef, spec: CampaignSpec, exc: Exception, slot: str, label: str) -> None:
        assert ref.contact is not None and ref.attempt is not None
        if isinstance(exc, TwilioApiError) and exc.ambiguous:
            # Twilio may have placed the call and could not be asked: the attempt stays open with
            # its slot until its status callback settles it, or `recover` does once it cannot be live
            log.warning("call may have been placed; waiting for its status", extra={"contact": ref.contact})
            return
        if isinstance(exc, TwilioApiError) and not exc.retryable:  # e.g. an invalid number: settle as failed
            log.warning("Twilio refused the call", extra={"contact": ref.contact, "error": str(exc)})
            await settle_attempt(self.pod, ref, "invalid", None)
            await self.campaigns.release_slot(slot, label)
            return
        # Twilio kept refusing (429/5xx) or outbound is not configured: the call was never placed,
        # so the attempt does not count and the contact waits for its next turn.
        log.warning("call not placed; the contact is tried again", extra={"contact": ref.contact, "error": str(exc)})
        await self.contacts.undo_dialing(
            contact_key(ref.contact),
            ref.attempt,
            not_before=self.clock() + self.poll_seconds,
            reason="not_placed",
        )
        await self.campaigns.release_slot(slot, label)

    async def recover(self, campaign_id: str, spec: CampaignSpec) -> int:
        """Settle attempts whose status never came back (their pod died, or the callback was lost)
        once their call can no longer be running: they count as failed and are retried."""
        stale = await self.contacts.stale_attempts(campaign_id, now=self.clock())
        for contact in stale:
            ref = CallRef(
                agent=spec.agent_id, campaign=campaign_id, contact=str(contact["_id"]), attempt=contact["attempts"]
            )
            await settle_attempt(self.pod, ref, "lost", contact.get("call_sid"))
        if stale:
            log.warning("recovered attempts with no status", extra={"campaign": campaign_id, "count": len(stale)})
        await self.return_lost_slots(campaign_id)
        return len(stale)

    async def return_lost_slots(self, campaign_id: str) -> int:
        """Give back slots still held for an attempt that has settled (its pod died between settling
        and releasing, or the release failed), so the campaign keeps its whole concurrency."""
        returned = 0
        for slot in await self.campaigns.held_slots(campaign_id, now=self.clock(), limit=MAX_SLOTS_CHECKED):
            label = ATTEMPT_LABEL.match(str(slot.get("holder") or ""))
            if label is None:  # held by a pod between acquiring and dialing: it expires soon anyway
                continue
            contact = await self.contacts.get(label["contact"])
            live = contact is not None and contact["state"] in ("dialing", "in_call")
            if live and contact is not None and contact["attempts"] == int(label["attempt"]):
                continue
            if await self.campaigns.release_slot(str(slot["_id"]), label.group(0)):
                returned += 1
        if returned:
            log.warning("returned slots held by settled attempts", extra={"campaign": campaign_id, "count": returned})
        return returned

    async def _finished(self, campaign_id: str) -> bool:
        counts = await self.contacts.counts(campaign_id)
        return all(counts[state] == 0 for state in ("pending", "leased", "dialing", "in_call"))

    async def _complete(self, campaign_id: str) -> None:
        try:
            await self.campaigns.transition(campaign_id, "complete")
            log.info("campaign completed", extra={"campaign": campaign_id})
        except TransitionRefused:
            pass  # another pod completed it, or it was paused/cancelled meanwhile
