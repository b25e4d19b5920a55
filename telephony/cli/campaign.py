"""`switchboard campaign create|upload|start|status`: campaigns through the admin API.

The key comes from `--api-key` or `SWITCHBOARD_API_KEY`; the server from `--url`. Uploads go in
parts of `--batch` rows with a progress bar; `status --watch` redraws the live stats until the
campaign ends.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

FINAL = ("completed", "cancelled")


def add_parser(commands: Any) -> None:
    campaign = commands.add_parser("campaign", help="create, upload to, start and watch campaigns (admin API)")
    campaign.add_argument("--url", default="http://127.0.0.1:8000", help="where the server listens")
    campaign.add_argument(
        "--api-key", default=os.environ.get("SWITCHBOARD_API_KEY"), help="(default: SWITCHBOARD_API_KEY)"
    )
    actions = campaign.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a campaign from a JSON spec file (see README)")
    create.add_argument("spec", type=Path)
    upload = actions.add_parser("upload", help="upload contacts from a CSV or JSON file")
    upload.add_argument("campaign_id")
    upload.add_argument("file", type=Path)
    upload.add_argument("--batch", type=int, default=1000, help="rows per request")
    for name in ("start", "pause", "resume", "cancel"):
        actions.add_parser(name, help=f"{name} the campaign").add_argument("campaign_id")
    status = actions.add_parser("status", help="live stats")
    status.add_argument("campaign_id")
    status.add_argument("--watch", action="store_true", help="refresh until the campaign ends")
    status.add_argument("--interval", type=float, default=2.0)


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class _Refused(Exception):
    pass


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise _Refused(f"error: HTTP {response.status_code}: {response.text[:2000]}")
    return response.json()  # type: ignore[no-any-return]


def _parts(path: Path, batch: int) -> tuple[str, list[str]]:
    """The file as upload bodies of `batch` rows each (CSV keeps its header in every part)."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        rows = json.loads(text)
        return "application/json", [json.dumps(rows[i : i + batch]) for i in range(0, len(rows), batch)]
    lines = list(csv.reader(io.StringIO(text)))
    header, rows = lines[0], lines[1:]
    parts = []
    for i in range(0, len(rows), batch):
        out = io.StringIO()
        csv.writer(out).writerows([header, *rows[i : i + batch]])
        parts.append(out.getvalue())
    return "text/csv", parts


def _status_line(campaign: dict[str, Any]) -> str:
    s = campaign.get("stats") or {}
    finished = s.get("done", 0) + s.get("failed", 0) + s.get("skipped", 0)
    return (
        f"{campaign['id']} {campaign['status']}: {_bar(finished, s.get('contacts', 0))}"
        f"  pending {s.get('pending', 0)}  in call {s.get('busy_slots', 0)}  done {s.get('done', 0)}"
        f"  failed {s.get('failed', 0)}  skipped {s.get('skipped', 0)}  calls placed {s.get('attempts', 0)}"
    )


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (_Refused, httpx.HTTPError, OSError, ValueError) as exc:
        print(str(exc) if isinstance(exc, _Refused) else f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if not args.api_key:
        print("error: --api-key or SWITCHBOARD_API_KEY is required", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {args.api_key}"}
    with httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=60) as api:
        if args.action == "create":
            campaign = _check(api.post("/api/campaigns", json=json.loads(args.spec.read_text())))
            print(campaign["id"])
        elif args.action == "upload":
            kind, parts = _parts(args.file, max(1, args.batch))
            totals = {"inserted": 0, "rejected": 0, "duplicates": 0}
            errors: list[str] = []
            for n, body in enumerate(parts, start=1):
                report = _check(
                    api.post(
                        f"/api/campaigns/{args.campaign_id}/contacts", content=body, headers={"Content-Type": kind}
                    )
                )
                for key in totals:
                    totals[key] += report[key]
                errors += [f"  part {n} row {e['row']}: {e['field']}: {e['message']}" for e in report["errors"]]
                print(f"\rupload {_bar(n, len(parts))} parts", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            print(f"inserted {totals['inserted']}, rejected {totals['rejected']}, already there {totals['duplicates']}")
            print("\n".join(errors[:100]))
        elif args.action in ("start", "pause", "resume", "cancel"):
            print(_status_line(_check(api.post(f"/api/campaigns/{args.campaign_id}/{args.action}"))))
        else:
            while True:
                campaign = _check(api.get(f"/api/campaigns/{args.campaign_id}"))
                print(("\r" if args.watch else "") + _status_line(campaign), end="" if args.watch else "\n", flush=True)
                if not args.watch or campaign["status"] in FINAL:
                    break
                time.sleep(args.interval)
            if args.watch:
                print()
    return 0
