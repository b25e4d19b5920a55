"""Imports point down the rooms: db imports nothing above it, tools nothing but db."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("room", "forbidden"), [("db", "tools agents telephony"), ("tools", "agents telephony")])
def test_rooms_do_not_import_upward(room: str, forbidden: str) -> None:
    code = (
        f"import sys, {room}, {room}.seed" if room == "db" else f"import sys, {room}, {room}.builtin"
    ) + f"; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({forbidden.split()!r})))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]"
