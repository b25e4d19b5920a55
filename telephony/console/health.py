"""Pod health: memory against the limit over the last hour, the guard's state, active calls and refusals by reason.

It shows the pod that serves the page (each pod keeps its own history); the page's script refreshes it from
`health.json` every few seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from telephony.console.render import page

if TYPE_CHECKING:
    from telephony.pod import Pod


def _pod(request: Request) -> Pod:
    return request.app.state.console.pod()  # type: ignore[no-any-return]


def snapshot(pod: Pod) -> dict[str, Any]:
    reading = pod.memory.reading
    refusals: dict[str, float] = {}
    for metric in pod.metrics.calls_refused.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                refusals[sample.labels.get("reason", "?")] = sample.value
    return {
        "state": pod.memory.state.value,
        "used_bytes": reading.used_bytes,
        "limit_bytes": reading.limit_bytes,
        "soft": pod.memory.soft,
        "hard": pod.memory.hard,
        "source": str(reading.source),
        "history": [[round(at, 1), used] for at, used in pod.memory.history],
        "active_calls": pod.calls.active,
        "max_calls": pod.settings.max_concurrent_calls,
        "draining": pod.drain.draining,
        "refusals": refusals,
    }


async def health_page(request: Request) -> Response:
    return page(request, "health.html", health=snapshot(_pod(request)))


async def health_json(request: Request) -> Response:
    return JSONResponse(snapshot(_pod(request)))
