"""Call history: search by number, agent, date, outcome and post-call field; a call's page with its transcript, tool
audit, per-turn latency waterfall, post-call summary and fields, and the recording with the line being played lit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from telephony.console.context import api_of, console_of, refused
from telephony.console.render import page

SEARCH_PARAMS = ("number", "agent_id", "outcome", "from", "until", "field", "post_call_status", "cursor")
WATERFALL_STEPS = (
    ("endpoint_ms", "end of turn"),
    ("stt_ms", "speech-to-text"),
    ("llm_ttft_ms", "model first token"),
    ("tts_first_audio_ms", "first audio"),
)
"""The stages of a turn's latency, in the order they happen after the caller stops."""


async def history(request: Request) -> Response:
    query = {name: request.query_params[name] for name in SEARCH_PARAMS if request.query_params.get(name)}
    params: dict[str, Any] = {**query, "limit": 50}
    answer = await api_of(request).request(console_of(request).principal, "GET", "/calls", params=params)
    if answer.status_code == 422:
        return page(request, "calls.html", status=422, calls=[], query=query, next=None, error=_problem(answer))
    if answer.status_code != 200:
        return refused(request, answer)
    listed = answer.json()
    return page(request, "calls.html", calls=listed["items"], query=query, next=listed.get("next"), error=None)


async def call_page(request: Request) -> Response:
    call_sid = request.path_params["call_sid"]
    answer = await api_of(request).request(console_of(request).principal, "GET", f"/calls/{call_sid}")
    if answer.status_code != 200:
        return refused(request, answer)
    call = answer.json()
    started = datetime.fromisoformat(call["started_at"])
    lines = [
        {**line, "offset_s": max(0.0, (datetime.fromisoformat(line["at"]) - started).total_seconds())}
        for line in call.get("transcript", [])
        if line.get("at")
    ]
    return page(request, "call.html", call=call, lines=lines, waterfall=waterfall(call.get("latency", [])))


def waterfall(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Each turn's stages as bars laid end to end (ms from the end of the caller's speech), for an SVG."""
    rows = []
    for turn in turns:
        start, bars = 0.0, []
        for key, label in WATERFALL_STEPS:
            value = turn.get(key)
            if value is None:
                continue
            bars.append({"label": label, "start": start, "ms": float(value)})
            start += float(value)
        rows.append({"turn": turn.get("turn"), "bars": bars, "total": turn.get("voice_to_voice_ms"), "end": start})
    scale = max([row["end"] for row in rows] + [float(row["total"] or 0) for row in rows] + [1.0])
    return {"rows": rows, "scale": scale}


def _problem(answer: Any) -> str:
    detail = answer.json().get("detail")
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}" for d in detail)
    return str(detail)
