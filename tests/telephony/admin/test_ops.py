"""`POST /api/ops/heap-snapshot`: an admin key with `ops:write` only, a bounded answer, and a refusal
with its reason while the pod's memory is near the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from telephony.app import create_app
from telephony.pod_health.heap_snapshot import MAX_SNAPSHOT_BYTES
from telephony.pod_health.memory import MemoryReader
from tests.support.cgroups import MiB, cgroup_v2, write
from tests.support.settings import make_settings

OPS_KEY = "ops-key-0123456789abcdef"
AGENTS_KEY = "agents-key-0123456789abcdef"
PATH = "/api/ops/heap-snapshot"


@asynccontextmanager
async def pod_api(root: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(api_keys=f"{OPS_KEY}:ops:write;{AGENTS_KEY}:agents:write,agents:read")
    app = create_app(settings, memory_reader=MemoryReader(root=root))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as api,
    ):
        yield api


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_only_a_key_with_ops_write_gets_a_snapshot(tmp_path: Path) -> None:
    cgroup_v2(tmp_path, max_=str(1000 * MiB), current=300 * MiB)
    async with pod_api(tmp_path) as api:
        assert (await api.post(PATH)).status_code == 401
        assert (await api.post(PATH, headers=bearer("not-a-key-0123456789"))).status_code == 401
        lacking = await api.post(PATH, headers=bearer(AGENTS_KEY))
        assert lacking.status_code == 403 and "ops:write" in lacking.json()["detail"]
        assert (await api.get(PATH, headers=bearer(OPS_KEY))).status_code in (403, 405)  # a read scope is not enough

        taken = await api.post(PATH, headers=bearer(OPS_KEY))
        again = await api.post(PATH, headers=bearer(OPS_KEY))

    assert taken.status_code == 200, taken.text
    body = taken.json()
    assert body["guard_state"] == "ok" and body["used_bytes"] == 300 * MiB and body["limit_bytes"] == 1000 * MiB
    assert 0 < len(body["types"]) <= 10 and body["gc_tracked_objects"] > 0
    assert len(taken.content) <= MAX_SNAPSHOT_BYTES
    assert again.status_code == 409 and again.json()["reason"] == "busy" and "retry-after" in again.headers


@pytest.mark.parametrize(("current_mib", "state"), [(850, "soft"), (950, "hard")])
async def test_refused_with_its_reason_while_memory_is_near_the_limit(
    tmp_path: Path, current_mib: int, state: str
) -> None:
    directory = cgroup_v2(tmp_path, max_=str(1000 * MiB), current=300 * MiB)
    async with pod_api(tmp_path) as api:
        write(directory / "memory.current", f"{current_mib * MiB}\n")
        refused = await api.post(PATH, headers=bearer(OPS_KEY))
    assert refused.status_code == 503
    assert refused.json()["reason"] == "memory" and state in refused.json()["detail"]


async def test_the_snapshot_is_in_the_openapi_document(tmp_path: Path) -> None:
    cgroup_v2(tmp_path, max_=str(1000 * MiB), current=300 * MiB)
    async with pod_api(tmp_path) as api:
        document = (await api.get("/api/openapi.json", headers=bearer(OPS_KEY))).json()
    assert "post" in document["paths"][PATH.removeprefix("/api")]
