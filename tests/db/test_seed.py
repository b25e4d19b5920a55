"""`switchboard db seed`: demo data, the large data set, and the command line."""

from __future__ import annotations

import pytest

from db import Database
from db.indexes import APPOINTMENTS, CUSTOMERS, ORDERS
from db.seed import BULK_CUSTOMER, main, seed_demo, seed_large

pytestmark = pytest.mark.mongodb


async def test_demo_seed_is_idempotent(database: Database) -> None:
    first = await seed_demo(database)
    assert first == await seed_demo(database)
    assert await database.collection(CUSTOMERS).count_documents({}) == first["customers"]
    assert await database.collection(ORDERS).count_documents({}) == first["orders"]
    assert await database.collection(APPOINTMENTS).count_documents({}) == 1


async def test_large_seed_gives_one_customer_many_orders(database: Database) -> None:
    assert await seed_large(database, 1200, bulk_orders=500) == {"orders": 1200, "bulk_orders": 500}
    orders = database.collection(ORDERS)
    assert await orders.count_documents({}) == 1200
    assert await orders.count_documents({"customer_id": BULK_CUSTOMER}) == 500
    with pytest.raises(ValueError):
        await seed_large(database, 10, bulk_orders=11)


def test_command_line_seeds_the_in_memory_fake(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--in-memory", "--large", "50"]) == 0
    out = capsys.readouterr().out
    assert "demo data" in out and "'orders': 50" in out


@pytest.mark.parametrize("argv", [["--in-memory", "--large", "0"], ["--in-memory", "--database", "a.b"]])
def test_command_line_refuses_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "switchboard db seed:" in capsys.readouterr().err


def test_command_line_reports_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"]) == 1
    assert "ServerSelectionTimeoutError" in capsys.readouterr().err
