"""What the incident call costs in memory with the tool guard, next to what it cost without it.

Why: a model once called an order search with `{}`; the code ran `collection.find({})` and the
driver decoded every document into a 1 GiB pod. This script seeds a large order collection, then
measures, each in a fresh process, the peak RSS growth of:

- incident: the scripted model's `{}` and `{"customer_id": {"$ne": null}}` calls to
  `list_recent_orders` through `ToolExecutor` (the first reads only the verified caller's own
  orders, bounded, since the customer comes from the call's identity, never the arguments; the
  second is refused before any query);
- broad valid: `list_recent_orders` for a caller verified as the customer with thousands of
  orders (limit 20: the limit, the byte budget and "truncated: N more" at work);
- unguarded: `collection.find({})` read to a list, what the incident code did.

Target: under 20 MB growth for the two guarded calls.

Data: with MONGODB_URI set, 1,000,000 orders on that server (database `switchboard_bench`, seeded
once and reused). Without it, the in-memory fake (mongomock-motor) holds the data inside each
measuring process, so it is seeded there, with 200,000 orders by default (about 0.6 KB each; the
fake holds them as Python dicts, and seeds 200k in ~10 s on one core). The fake scans instead of
using indexes and builds its whole match list before applying the limit, so its "broad valid"
figure includes the fake's own work on the 5,000 matching orders; a real server sends only the
21 documents asked for. The fake's cursor also copies its result list on every `next()`, so the
unguarded read of 200,000 documents takes minutes there (the memory figure is unaffected); the
whole script takes about 5 minutes on the fake.

Method: after seeding, `gc.collect()`, RSS is read (VmRSS) and the peak is reset (writing 5 to
/proc/self/clear_refs resets VmHWM); after the scenario the peak (VmHWM) minus that RSS is the
growth. Memory freed by seeding and reused by the scenario hides part of a scenario's growth, so a
second number for the guarded calls, the peak of Python allocations under tracemalloc, comes from
another fresh process.

    .venv/bin/python benchmarks/tool_guard.py                 # in-memory fake, 200,000 orders
    .venv/bin/python benchmarks/tool_guard.py --orders 50000  # quicker
    MONGODB_URI=mongodb://localhost:27017 .venv/bin/python benchmarks/tool_guard.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import BusinessData, Database, DbSettings, QueryLog, SafeQuery, connect, in_memory
from db.indexes import ORDERS
from db.seed import BULK_CUSTOMER, default_bulk_orders, seed_demo, seed_large
from tools import BUILTIN, CallerIdentity, ToolCall, ToolContext, ToolExecutor, builtin_tools

SCENARIOS = ("incident", "broad valid", "unguarded find({})")
BENCH_DATABASE = "switchboard_bench"
CONTEXT = ToolContext("CA-bench", "support", "+15550101", CallerIdentity(customer_key="C-1001"))
BULK_CONTEXT = ToolContext("CA-bench", "support", "+15550199", CallerIdentity(customer_key=BULK_CUSTOMER))
INCIDENT_CALLS = ("{}", '{"customer_id": {"$ne": null}}')
BROAD_CALL = json.dumps({"limit": 20})


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


async def _open(orders: int) -> Database:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        return connect(DbSettings(uri=uri, database=BENCH_DATABASE))
    database = in_memory(DbSettings(database=BENCH_DATABASE))
    await seed_large(database, orders)
    await seed_demo(database)
    return database


async def _seed_server(orders: int) -> None:
    """Seed the real server once; reuse it when it already holds `orders` orders."""
    database = await _open(orders)
    try:
        await database.ping()
        have = await database.collection(ORDERS).estimated_document_count()
        if have != orders + 6:  # the large set plus the demo orders
            print(f"seeding {orders:,} orders into {BENCH_DATABASE} (had {have:,}) ...", file=sys.stderr)
            await database.drop()
            started = time.perf_counter()
            await seed_large(database, orders)
            await seed_demo(database)
            print(f"  seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    finally:
        await database.close()


async def _scenario(name: str, database: Database) -> dict[str, Any]:
    """Run one scenario; return what it produced (measured around by the caller)."""
    if name == "unguarded find({})":
        documents = await database.collection(ORDERS).find({}).to_list(None)
        return {"documents": len(documents), "outcome": "every document decoded", "_keep": documents}
    log = QueryLog()
    executor = ToolExecutor(builtin_tools(BusinessData(SafeQuery(database, log)), list(BUILTIN)))
    turn = executor.turn(CONTEXT if name == "incident" else BULK_CONTEXT)
    calls = INCIDENT_CALLS if name == "incident" else (BROAD_CALL,)
    outcomes = [await turn.run(ToolCall(f"c{i}", "list_recent_orders", raw)) for i, raw in enumerate(calls)]
    last = json.loads(outcomes[-1].content)
    return {
        "documents": len(last.get("orders", [])),
        "outcome": last.get("truncated") or last.get("error", "")[:60],
        "result_bytes": max(outcome.result_bytes for outcome in outcomes),
        "queries": [f"{r.operation}(limit={r.limit}, max_time_ms={r.max_time_ms})" for r in log],
    }


async def _measure(name: str, orders: int, trace: bool) -> dict[str, Any]:
    database = await _open(orders)
    try:
        if os.environ.get("MONGODB_URI"):
            await database.ping()
        gc.collect()
        if trace:
            tracemalloc.start()
        rss = _status_kb("VmRSS")
        _reset_peak()
        started = time.perf_counter()
        result = await _scenario(name, database)
        elapsed = time.perf_counter() - started
        peak = _status_kb("VmHWM")
        figures: dict[str, Any] = {"rss_growth_mb": (peak - rss) / 1024, "seconds": elapsed}
        if trace:
            figures["python_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        result.pop("_keep", None)
        return result | figures
    finally:
        await database.close()


def _child(name: str, orders: int, trace: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--orders", str(orders), "--child", name] + (["--trace"] if trace else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{name}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=None, help="orders to seed (default 1,000,000 / 200,000)")
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    server = bool(os.environ.get("MONGODB_URI"))
    orders = args.orders or (1_000_000 if server else 200_000)
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.child, orders, args.trace))))
        return 0

    if server:
        asyncio.run(_seed_server(orders))
    where = "MongoDB at MONGODB_URI" if server else "in-memory fake (mongomock-motor)"
    settings = DbSettings()
    print(f"tool guard: {orders:,} orders ({BULK_CUSTOMER} owns {default_bulk_orders(orders):,}) in the {where}")
    print(
        f"bounds: limit {settings.default_limit} (max {settings.max_limit}),"
        f" byte budget {settings.max_result_bytes:,} B, batch {settings.batch_size},"
        f" max_time_ms {settings.max_time_ms}, tool result cap 8,192 B"
    )
    print()
    print(f"{'scenario':<20} {'RSS growth':>11} {'py peak':>9} {'docs':>9} {'time':>7}  outcome")
    for name in SCENARIOS:
        plain = _child(name, orders, trace=False)
        guarded = name != "unguarded find({})"  # tracing 1M decoded objects takes minutes and tells nothing new
        py_peak = f"{_child(name, orders, trace=True)['python_peak_mb']:>6.1f} MB" if guarded else f"{'-':>9}"
        print(
            f"{name:<20} {plain['rss_growth_mb']:>8.1f} MB {py_peak}"
            f" {plain['documents']:>9,} {plain['seconds']:>6.2f}s  {plain['outcome']}"
        )
        if plain.get("queries") is not None:
            print(f"{'':<20} queries issued: {', '.join(plain['queries']) or 'none'}")
    print()
    print("RSS growth: peak RSS during the scenario minus RSS before it (fresh process each);")
    print("py peak: peak of Python allocations under tracemalloc (another fresh process; guarded calls only).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
