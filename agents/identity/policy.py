"""How an agent decides who is calling: the `identity` part of an agent's config.

The default is the caller ID (the `From` of an inbound call, the dialled contact of an outbound
one) matched to a customer's phone, with no further proof: an agent that never asks still only
ever sees the calling number's own records, never one the caller (or the model) names. A caller
who names their account instead (`lookup`) must prove it, by keypad PIN or by facts, so that
config is refused without a verification.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from db.caller_records import CallerRecords
from db.safe_query import SafeQuery
from tools import Tool
from tools.identity import identify_caller, verify_identity

FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
MAX_FACTS = 4
MAX_ATTEMPTS = 5


class IdentityPolicy(BaseModel):
    """Identification (`identify_by`) and verification (`verify`) of the caller, and where the
    records they are checked against live."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    identify_by: Literal["caller_id", "lookup"] = "caller_id"
    """`caller_id`: the calling (inbound) or called (outbound) number matched to `phone_field`;
    `lookup`: the caller names one of `lookup_fields` (the `identify_caller` tool)."""
    verify: Literal["none", "dtmf_pin", "knowledge"] = "none"
    """`dtmf_pin`: a PIN keyed on the phone, checked against the salted hash in `pin_field`;
    `knowledge`: the `facts` the caller says (the `verify_identity` tool), compared after
    normalisation (case, spaces and punctuation ignored)."""
    facts: list[FieldName] = Field(default_factory=list, max_length=MAX_FACTS)
    """Record fields the caller must state for `knowledge` (1 to 4), e.g. postcode, date_of_birth."""
    max_attempts: int = Field(3, ge=1, le=MAX_ATTEMPTS)
    """Failed verifications per call before the agent gives up (the same count for PIN and facts)."""
    collection: FieldName = "customers"
    key_field: FieldName = "customer_id"
    """The record's key: what caller-scoped tools are scoped to."""
    phone_field: FieldName = "phone"
    lookup_fields: list[FieldName] = Field(default_factory=lambda: ["account_id", "email", "phone"], max_length=4)
    """Identifiers a caller may name in `lookup` mode (each should be unique in the collection)."""
    pin_field: FieldName = "pin_hash"
    cannot_verify: str = Field(
        "I'm sorry, I can't verify your identity on this call, so I can't access the account. "
        "I can transfer you to a colleague if you like.",
        min_length=1,
        max_length=300,
    )
    """Said once the attempts are used up; account tools stay refused for the rest of the call."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.identify_by == "lookup" and self.verify == "none":
            raise ValueError("identify_by 'lookup' needs verify 'dtmf_pin' or 'knowledge': a named account is proved")
        if self.verify == "knowledge" and not self.facts:
            raise ValueError("verify 'knowledge' needs 1 to 4 facts")
        if self.verify != "knowledge" and self.facts:
            raise ValueError("facts are only used with verify 'knowledge'")
        if self.identify_by == "lookup" and not self.lookup_fields:
            raise ValueError("identify_by 'lookup' needs at least one lookup field")
        return self

    def records(self, query: SafeQuery) -> CallerRecords:
        """The reads this policy needs, on the business database."""
        return CallerRecords(
            query,
            collection=self.collection,
            key_field=self.key_field,
            lookup_fields=sorted({*self.lookup_fields, self.phone_field}),
            pin_field=self.pin_field,
            facts=self.facts,
        )

    def tools(self) -> list[Tool[Any]]:
        """The identity tools the model needs under this policy (none for caller ID + PIN/none)."""
        tools: list[Tool[Any]] = []
        if self.identify_by == "lookup":
            tools.append(identify_caller(self.lookup_fields))
        if self.verify == "knowledge":
            tools.append(verify_identity(self.facts))
        return tools

    def asks_for(self) -> str:
        """What to ask an unidentified caller for."""
        return " or ".join(name.replace("_", " ") for name in self.lookup_fields)

    def proof(self) -> str:
        """What an identified caller must give to be verified."""
        if self.verify == "none":
            return "no proof is possible on this line; offer to transfer the caller"
        if self.verify == "dtmf_pin":
            return "ask them to key their PIN on the phone keypad, then press pound"
        return f"ask for their {_listed(self.facts)}, then call verify_identity"


def _listed(names: Sequence[str]) -> str:
    words = [name.replace("_", " ") for name in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
