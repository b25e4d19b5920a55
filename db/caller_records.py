"""The reads that decide who a caller is: a customer's key by caller ID or a named identifier,
and the stored secrets (PIN hash, knowledge facts) their answers are checked against.

Only the identity verifier uses this. Its `ReadSpec`s project the key and the secret fields and
nothing else, and they are separate from every tool's, so a PIN hash or a fact never reaches a
tool result or the model. Which collection and fields is the agent's identity policy (any
business's customers, patients or accounts), validated there; the names are checked again here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from db.errors import translates_driver_errors
from db.indexes import CUSTOMERS
from db.safe_query import ReadSpec, SafeQuery

AMBIGUOUS_LIMIT = 2
"""A lookup reads at most this many records: two matches mean the identifier names nobody for sure."""


@translates_driver_errors
class CallerRecords:
    def __init__(
        self,
        query: SafeQuery,
        *,
        collection: str = CUSTOMERS,
        key_field: str = "customer_id",
        lookup_fields: Sequence[str] = ("phone", "account_id", "email"),
        pin_field: str = "pin_hash",
        facts: Sequence[str] = (),
    ) -> None:
        """`lookup_fields`: fields a caller may be identified by (caller ID uses the phone field
        among them); `facts`: the fields knowledge verification compares."""
        self.query = query
        self.key_field = key_field
        self.lookup_fields = frozenset(lookup_fields)
        self._key = ReadSpec(collection, fields=(key_field,), selective=self.lookup_fields | {key_field})
        self._pin = ReadSpec(collection, fields=(key_field, pin_field), selective=frozenset({key_field}))
        self.pin_field = pin_field
        self.facts = tuple(facts)
        self._facts = (
            ReadSpec(collection, fields=(key_field, *self.facts), selective=frozenset({key_field})) if facts else None
        )

    async def key_by(self, field: str, value: str) -> str | None:
        """The key of the one record whose `field` equals `value`; None when none or several match."""
        if field not in self.lookup_fields:
            raise ValueError(f"callers cannot be identified by {field!r}")
        if not isinstance(value, str) or not value:
            return None
        read = await self.query.find(self._key, {field: value}, limit=AMBIGUOUS_LIMIT, count_more=False)
        if len(read.documents) != 1 or read.truncated:
            return None
        key = read.documents[0].get(self.key_field)
        return key if isinstance(key, str) and key else None

    async def pin_hash(self, key: str) -> object:
        """The stored PIN hash of `key` (None when the record or the field is missing)."""
        record = await self.query.find_one(self._pin, {self.key_field: key})
        return None if record is None else record.get(self.pin_field)

    async def facts_of(self, key: str) -> dict[str, Any]:
        """The knowledge facts stored for `key` (missing ones absent)."""
        if self._facts is None:
            return {}
        record = await self.query.find_one(self._facts, {self.key_field: key}) or {}
        return {name: record[name] for name in self.facts if record.get(name) is not None}
