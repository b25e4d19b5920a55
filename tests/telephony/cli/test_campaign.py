"""`switchboard campaign create|upload|start|status` against a served pod."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from telephony.cli.main import main
from tests.support.campaign_pod import ADMIN_KEY, campaign_pod
from tests.support.settings import AGENT_NUMBER

pytestmark = pytest.mark.mongodb


async def test_create_upload_start_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "cli", "agent_id": "echo", "caller_id": AGENT_NUMBER}))
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone,first_name\n" + "".join(f"+1555600{i:04d},n{i}\n" for i in range(25)) + "bad,x\n")
    async with campaign_pod() as pod:
        base = ["campaign", "--url", pod.url, "--api-key", ADMIN_KEY]
        assert await asyncio.to_thread(main, [*base, "create", str(spec)]) == 0
        cid = capsys.readouterr().out.strip()
        assert await asyncio.to_thread(main, [*base, "upload", cid, str(contacts), "--batch", "10"]) == 0
        out = capsys.readouterr()
        assert "inserted 25, rejected 1" in out.out and "row 7: phone" in out.out
        assert "upload [" in out.err and "3/3 parts" in out.err
        assert await asyncio.to_thread(main, [*base, "start", cid]) == 0
        assert await asyncio.to_thread(main, [*base, "status", cid]) == 0
        status = capsys.readouterr().out
        assert f"{cid} running" in status and "0/25" in status and "pending 25" in status
        assert await asyncio.to_thread(main, ["campaign", "--url", pod.url, "--api-key", "x" * 20, "status", cid]) != 0
