"""The pod's operational endpoints: liveness, readiness, drain and metrics.

- `GET /healthz` (liveness): the process serves requests, with the pod's counters (read from the
  metrics registry). Never fails for load: restarting a pod because it is busy would drop its calls.
- `GET /readyz` (readiness): 200 while the pod would admit a call; 503 with the reasons while the
  pod's admission refuses calls (draining, memory at or above the soft threshold, its maximum of
  calls: the very answer the webhooks and the dialer get) or while a dependency check fails, so the
  load balancer sends calls elsewhere. The database is watched by a `TolerantCheck`: one failed ping
  never flips readiness, and by default an outage does not either (calls are answered from the pod's
  last good routes and agents; taking every pod out at once would refuse them all). It is reported
  under `dependencies` and gates only past `readiness_database_unready_after_seconds`, when set.
- `POST /drain` (the preStop hook): refuse new calls at once, answer when the calls have ended.
  Accepted from loopback only (an exec hook inside the pod), or, when `drain_token` is set, only
  with `Authorization: Bearer <token>` from anywhere (the manifests set it: behind a sidecar proxy
  every in-mesh client comes from loopback). `POST /undrain`, guarded the same way, revokes it.
- `GET /metrics`: Prometheus text format.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from telephony.pod_health.dependency import TolerantCheck
from telephony.pod_health.metrics import counters, metrics_response

if TYPE_CHECKING:
    from telephony.pod import Pod, ReadinessCheck

log = logging.getLogger("switchboard.health")


async def healthz(request: Request) -> JSONResponse:
    pod: Pod = request.app.state.pod
    body = {"status": "ok", "active_calls": pod.calls.active, "counters": counters(pod.metrics.registry)}
    return JSONResponse(body)


async def readyz(request: Request) -> JSONResponse:
    pod: Pod = request.app.state.pod
    reasons = pod.admission.reasons()  # samples memory afresh
    state = pod.memory.state
    for name, check in pod.readiness_checks.items():
        if not await _passes(name, check, pod.settings.readiness_check_timeout_seconds):
            reasons.append(name)
    reading = pod.memory.reading
    body: dict[str, object] = {
        "status": "not ready" if reasons else "ready",
        "calls": pod.calls.count,
        "max_concurrent_calls": pod.calls.limit,
        "memory": {
            "state": state.value,
            "used_bytes": reading.used_bytes,
            "limit_bytes": reading.limit_bytes,
            "source": reading.source,
        },
    }
    dependencies = {name: c.state() for name, c in pod.readiness_checks.items() if isinstance(c, TolerantCheck)}
    if dependencies:
        body["dependencies"] = dependencies
    if reasons:
        body["reason"] = reasons[0]
        body["reasons"] = reasons
    return JSONResponse(body, status_code=503 if reasons else 200)


async def _passes(name: str, check: ReadinessCheck, timeout_s: float) -> bool:
    if isinstance(check, TolerantCheck):
        timeout_s += 1.0  # it bounds its own probe (and counts a timeout as down); this is a backstop
    try:
        async with asyncio.timeout(timeout_s):
            await check()
    except Exception as exc:
        log.warning("readiness check failed", extra={"check": name, "error": f"{type(exc).__name__}: {exc}"[:200]})
        return False
    return True


async def drain(request: Request) -> JSONResponse:
    pod: Pod = request.app.state.pod
    refusal = _refusal(request, pod)
    if refusal is not None:
        return refusal
    started = time.monotonic()
    pod.drain.begin()
    generation = pod.drain.generation
    drained = await pod.drain.wait(pod.calls, pod.settings.drain_timeout_seconds)
    body = {"drained": drained, "calls": pod.calls.count, "waited_s": round(time.monotonic() - started, 3)}
    if not drained and pod.drain.revoked_since(generation):
        body["revoked"] = True
        log.warning("drain answered: revoked", extra=body)
        return JSONResponse(body, status_code=409)
    log.warning("drain answered", extra=body)
    return JSONResponse(body, status_code=200 if drained else 503)


async def undrain(request: Request) -> JSONResponse:
    """Revoke a drain: calls are admitted again (guarded as `POST /drain` is)."""
    pod: Pod = request.app.state.pod
    refusal = _refusal(request, pod)
    if refusal is not None:
        return refusal
    was_draining = pod.drain.end()
    return JSONResponse({"draining": pod.drain.draining, "was_draining": was_draining})


def _refusal(request: Request, pod: Pod) -> JSONResponse | None:
    """Why this drain request may not proceed, or None. With a token set, the token alone decides
    (loopback is not trusted: a sidecar proxy forwards outside traffic from loopback)."""
    token = pod.settings.drain_token
    if token is not None:
        expected = f"Bearer {token.get_secret_value()}".encode()
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse({"error": "drain needs Authorization: Bearer <SWITCHBOARD_DRAIN_TOKEN>"}, 401)
        return None
    host = request.client.host if request.client else ""
    if not _is_loopback(host):
        log.warning("drain refused from a non-loopback address", extra={"client": host})
        return JSONResponse({"error": "drain is accepted from loopback only (or set SWITCHBOARD_DRAIN_TOKEN)"}, 403)
    return None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics(request: Request) -> Response:
    pod: Pod = request.app.state.pod
    state = pod.memory.sample()
    pod.metrics.set_pod_state(
        active=pod.calls.active,
        reserved=pod.calls.count - pod.calls.active,
        limit=pod.calls.limit,
        memory=pod.memory.reading,
        state=state,
        draining=pod.drain.draining,
    )
    return metrics_response(pod.metrics)
