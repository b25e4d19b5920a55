"""`switchboard db seed`: demo data for the demo agent, and the benchmark's large data set.

The large set is what the incident needs to be felt: many orders (1,000,000 on a real server), a
few thousand of them owned by one customer (`C-BULK`) so that a valid search is still broad. Orders
are written in batches of `BATCH` so seeding itself holds little memory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from db.client import Database, connect, in_memory
from db.indexes import APPOINTMENTS, CUSTOMERS, ORDERS, ensure_indexes
from db.settings import DbSettings

BATCH = 1000
"""Documents per insert_many while seeding."""
BULK_CUSTOMER = "C-BULK"
BULK_PHONE = "+15550199"
"""`BULK_CUSTOMER`'s phone: a call from it is identified (by caller ID) as that customer."""
STATUSES = ("pending", "processing", "shipped", "delivered", "cancelled", "returned")

DEMO_PINS = {"C-1001": "1234", "C-1002": "2468", "C-1003": "1357"}
"""The demo customers' keypad PINs (stored only as `pin_hash`, `db.pin_hash`'s format)."""
DEMO_CUSTOMERS = [
    {"customer_id": "C-1001", "name": "Ada Lovelace", "phone": "+15550101", "email": "ada@example.com",
     "account_id": "ACCT-1001", "tier": "gold", "postcode": "SW1A 1AA", "date_of_birth": "1815-12-10",
     "pin_hash": "pbkdf2_sha256$100000$126eca9aad60979ab0625368b994dcf9$"
                 "b62949eb0286ca9247a102008fb712f682f168cb2a805af5d266e427471934c7"},
    {"customer_id": "C-1002", "name": "Grace Hopper", "phone": "+15550102", "email": "grace@example.com",
     "account_id": "ACCT-1002", "tier": "standard", "postcode": "10001", "date_of_birth": "1906-12-09",
     "pin_hash": "pbkdf2_sha256$100000$1446de20b601df47de2f5b9f3c1e48e8$"
                 "38be6c903bbf56ec8eb07f89d583820ef355faa5a9960304c4bd9bc582d1a691"},
    {"customer_id": "C-1003", "name": "Alan Turing", "phone": "+15550103", "email": "alan@example.com",
     "account_id": "ACCT-1003", "tier": "standard", "postcode": "WA14 1EP", "date_of_birth": "1912-06-23",
     "pin_hash": "pbkdf2_sha256$100000$a7c62dc43a736b458c43d915d3d99eb6$"
                 "23282fced36a7adc8ffd6e96b54cff0d528a2da8e1d76e444eab7a31229c1664"},
]  # fmt: skip
"""Knowledge facts (`postcode`, `date_of_birth`) and `pin_hash` are for verifying the caller; no
tool's `ReadSpec` projects them."""


def _order(order_id: str, customer_id: str, created_at: datetime, status: str, rng: random.Random) -> dict[str, Any]:
    """An order about the size of a real one (~0.6 KB of BSON), most of it never projected."""
    items: list[dict[str, Any]] = [
        {"sku": f"SKU-{rng.randrange(10_000):05d}", "name": f"Item {rng.randrange(1000)}", "qty": rng.randint(1, 3),
         "price": round(rng.uniform(3, 200), 2)}
        for _ in range(rng.randint(1, 4))
    ]  # fmt: skip
    shipped = status in ("shipped", "delivered", "returned")
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": status,
        "created_at": created_at,
        "total": round(sum(item["qty"] * item["price"] for item in items), 2),
        "currency": "USD",
        "carrier": "UPS" if shipped else None,
        "tracking_number": f"1Z{rng.randrange(10**12):012d}" if shipped else None,
        "eta": (created_at + timedelta(days=5)).date().isoformat() if status != "cancelled" else None,
        "items": items,
        "shipping_address": {"line1": f"{rng.randint(1, 999)} Main Street", "city": "Springfield",
                             "postcode": f"{rng.randrange(100_000):05d}", "country": "US"},
        "notes": "Leave the parcel at the front desk if nobody answers the door. " * 2,
    }  # fmt: skip


async def seed_demo(database: Database, *, now: datetime | None = None) -> dict[str, int]:
    """Three customers with orders in every state and one booked appointment (idempotent)."""
    now = now or datetime.now(UTC)
    rng = random.Random(1001)
    await ensure_indexes(database)
    for record in DEMO_CUSTOMERS:
        await database.collection(CUSTOMERS).replace_one({"customer_id": record["customer_id"]}, record, upsert=True)
    orders = 0
    for number, (customer, status, days_ago) in enumerate(
        [("C-1001", "shipped", 2), ("C-1001", "delivered", 20), ("C-1001", "pending", 0), ("C-1002", "processing", 1),
         ("C-1002", "cancelled", 40), ("C-1003", "returned", 60)]
    ):  # fmt: skip
        order = _order(f"O-{50001 + number}", customer, now - timedelta(days=days_ago), status, rng)
        await database.collection(ORDERS).replace_one({"order_id": order["order_id"]}, order, upsert=True)
        orders += 1
    start = (now + timedelta(days=7)).replace(hour=15, minute=0, second=0, microsecond=0)
    appointment = {"appointment_id": "A-DEMO0001", "customer_id": "C-1001", "starts_at": start,
                   "ends_at": start + timedelta(minutes=30), "status": "booked", "reason": "Warranty repair",
                   "slot": start.isoformat(), "booked_at": now}  # fmt: skip
    await database.collection(APPOINTMENTS).replace_one({"appointment_id": "A-DEMO0001"}, appointment, upsert=True)
    return {"customers": len(DEMO_CUSTOMERS), "orders": orders, "appointments": 1}


def _large_orders(n_orders: int, bulk_orders: int, now: datetime) -> Iterator[dict[str, Any]]:
    rng = random.Random(42)
    n_customers = max(1, n_orders // 20)
    for i in range(n_orders):
        customer = BULK_CUSTOMER if i < bulk_orders else f"C-L{rng.randrange(n_customers):07d}"
        created = now - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        yield _order(f"O-L{i:08d}", customer, created, STATUSES[rng.randrange(len(STATUSES))], rng)


def default_bulk_orders(n_orders: int) -> int:
    """How many of `n_orders` belong to `C-BULK` unless told: a tenth, at most 5,000."""
    return min(5000, max(1, n_orders // 10))


async def seed_large(database: Database, n_orders: int, *, bulk_orders: int | None = None) -> dict[str, int]:
    """`n_orders` orders; the first `bulk_orders` (default: a tenth, at most 5,000) belong to `C-BULK`.
    Indexes are built after the load (faster on a server, and the in-memory fake checks unique
    indexes by scanning the collection on every insert)."""
    if bulk_orders is None:
        bulk_orders = default_bulk_orders(n_orders)
    if n_orders < 1 or not 0 <= bulk_orders <= n_orders:
        raise ValueError("need n_orders >= 1 and 0 <= bulk_orders <= n_orders")
    now = datetime.now(UTC)
    customers = database.collection(CUSTOMERS)
    await customers.replace_one(
        {"customer_id": BULK_CUSTOMER},
        {"customer_id": BULK_CUSTOMER, "name": "Bulk Buyer Ltd", "phone": BULK_PHONE, "email": "bulk@example.com",
         "account_id": "ACCT-BULK", "tier": "business"},
        upsert=True,
    )  # fmt: skip
    orders = database.collection(ORDERS)
    batch: list[dict[str, Any]] = []
    for order in _large_orders(n_orders, bulk_orders, now):
        batch.append(order)
        if len(batch) == BATCH:
            await orders.insert_many(batch, ordered=False)
            batch = []
    if batch:
        await orders.insert_many(batch, ordered=False)
    await ensure_indexes(database)
    return {"orders": n_orders, "bulk_orders": bulk_orders}


def main(argv: list[str] | None = None) -> int:
    """`switchboard db seed [--uri URI] [--database NAME] [--large N]`."""
    parser = argparse.ArgumentParser(prog="switchboard db seed", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--uri", default=DbSettings().uri, help="MongoDB connection string")
    parser.add_argument("--database", default=DbSettings().database, help="database name")
    parser.add_argument("--large", type=int, metavar="N", help="also load N orders (the benchmark's data set)")
    parser.add_argument("--in-memory", action="store_true", help="seed the in-memory fake (a dry run)")
    args = parser.parse_args(argv)
    try:
        settings = DbSettings(uri=args.uri, database=args.database)
    except ValueError as exc:
        print(f"switchboard db seed: {exc}", file=sys.stderr)
        return 2
    if args.large is not None and args.large < 1:
        print("switchboard db seed: --large needs a positive number", file=sys.stderr)
        return 2
    return asyncio.run(_seed(in_memory(settings) if args.in_memory else connect(settings), args.large))


async def _seed(database: Database, large: int | None) -> int:
    try:
        await database.ping()
        counts = await seed_demo(database)
        print(f"demo data in {database.name!r}: {counts}")
        if large:
            counts = await seed_large(database, large)
            print(f"large data set in {database.name!r}: {counts}")
        return 0
    except Exception as exc:  # a CLI reports, it does not dump a trace on a missing server
        print(f"switchboard db seed: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
        return 1
    finally:
        await database.close()


if __name__ == "__main__":
    raise SystemExit(main())
