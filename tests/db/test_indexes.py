"""Collections and indexes created at start-up."""

from __future__ import annotations

import pytest
from pymongo.errors import DuplicateKeyError

from db import Database, ensure_indexes
from db.indexes import CUSTOMERS, INDEXES

pytestmark = pytest.mark.mongodb


async def test_indexes_are_created_and_creating_them_again_is_harmless(database: Database) -> None:
    await ensure_indexes(database)
    await ensure_indexes(database)
    for collection, indexes in INDEXES.items():
        names = set(await database.collection(collection).index_information())
        assert {index.document["name"] for index in indexes} <= names


async def test_unique_indexes_hold(database: Database) -> None:
    await ensure_indexes(database)
    customers = database.collection(CUSTOMERS)
    await customers.insert_one({"customer_id": "C-1", "phone": "+15550001"})
    await customers.insert_one({"customer_id": "C-2"})  # sparse: a customer without a phone is fine
    await customers.insert_one({"customer_id": "C-3"})
    with pytest.raises(DuplicateKeyError):
        await customers.insert_one({"customer_id": "C-4", "phone": "+15550001"})
