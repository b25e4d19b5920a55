"""Operations on the pod itself, for on-call: a bounded heap snapshot (`ops:write`).

The snapshot answers for the pod that serves the request (behind a Service, any one of them: reach a
given pod through its own address or `kubectl port-forward`, or send its process SIGUSR2 to have it
log one). It is refused with 503 and a reason while memory is near the limit, and with 409 while
another is being taken.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from telephony.admin.common import Problem, pod_of
from telephony.pod_health.heap_snapshot import MIN_INTERVAL_S, HeapSnapshot, SnapshotRefused

router = APIRouter(prefix="/ops", tags=["ops"])


@router.post(
    "/heap-snapshot",
    response_model=HeapSnapshot,
    responses={
        409: {"model": Problem, "description": "Another snapshot is being taken, or the last one was too recent"},
        503: {"model": Problem, "description": "Memory is near the limit (reason memory or headroom)"},
    },
)
async def heap_snapshot(request: Request) -> HeapSnapshot | JSONResponse:
    """The largest allocation sites (tracemalloc on) and live object types, each cut to
    `SWITCHBOARD_MEMORY_REPORT_TOP`; never the whole heap."""
    snapshots = pod_of(request).heap_snapshots
    if snapshots is None:
        return JSONResponse({"detail": "this pod takes no heap snapshots", "reason": "unavailable"}, status_code=503)
    try:
        return await snapshots.take()
    except SnapshotRefused as refused:
        retry = str(int(MIN_INTERVAL_S))
        return JSONResponse(
            {"detail": refused.detail, "reason": refused.reason},
            status_code=refused.status,
            headers={"retry-after": retry},
        )
