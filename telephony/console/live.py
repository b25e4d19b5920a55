"""Live calls on every pod (from the database), a call's transcript as it happens (the API's event stream, read by
the page's script), and ending or transferring a call."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from telephony.console.context import api_of, console_of, refused
from telephony.console.render import page


async def live_calls(request: Request) -> Response:
    answer = await api_of(request).request(console_of(request).principal, "GET", "/calls/live")
    if answer.status_code != 200:
        return refused(request, answer)
    return page(request, "live.html", calls=answer.json()["items"])


async def live_call(request: Request) -> Response:
    call_sid = request.path_params["call_sid"]
    answer = await api_of(request).request(console_of(request).principal, "GET", f"/calls/{call_sid}")
    if answer.status_code != 200:
        return refused(request, answer)
    return page(request, "live_call.html", call=answer.json(), notice=request.query_params.get("notice"))


async def end_call(request: Request) -> Response:
    call_sid = request.path_params["call_sid"]
    answer = await api_of(request).request(console_of(request).principal, "POST", f"/calls/{call_sid}/end")
    if answer.status_code not in (200, 202):
        return refused(request, answer)
    return RedirectResponse(f"{request.scope.get('root_path', '')}/calls/{call_sid}/live?notice=ending", 303)


async def transfer_call(request: Request) -> Response:
    call_sid = request.path_params["call_sid"]
    form = await request.form()
    answer = await api_of(request).request(
        console_of(request).principal, "POST", f"/calls/{call_sid}/transfer", json={"to": str(form.get("to", ""))}
    )
    if answer.status_code not in (200, 202):
        return refused(request, answer)
    return RedirectResponse(f"{request.scope.get('root_path', '')}/calls/{call_sid}/live?notice=transferring", 303)
