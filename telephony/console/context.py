"""What every console page reaches: the API bridge, the visitor's session and key, and one way to show a refusal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from telephony.console.render import page

if TYPE_CHECKING:
    from telephony.console.api_bridge import ApiBridge
    from telephony.console.guard import Console


def api_of(request: Request) -> ApiBridge:
    return request.app.state.console.bridge  # type: ignore[no-any-return]


def console_of(request: Request) -> Console:
    return request.scope["state"]["console"]  # type: ignore[no-any-return]


def refused(request: Request, answer: Any) -> Response:
    """The API's refusal (403 without the scope, 404, 409...) as a page with the same status."""
    try:
        detail = answer.json().get("detail")
    except ValueError:
        detail = answer.text[:500]
    return page(request, "error.html", status=answer.status_code, status_code=answer.status_code, detail=detail)
