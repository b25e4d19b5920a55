"""Jinja2 templates for the console's server-rendered pages (autoescaped; no page builds HTML by hand)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).with_name("templates")
environment = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), enable_async=False
)


def _when(value: Any) -> str:
    """ISO times from the API, shown to the second in UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else ""


environment.filters["when"] = _when
environment.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True, default=str)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page with the session's CSRF token, the key's scopes (to hide controls it cannot use) and the nonce."""
    state = request.scope.get("state", {})
    console = state.get("console")
    body = environment.get_template(template).render(
        request=request,
        prefix=request.scope.get("root_path", ""),
        csrf=console.session.csrf if console else "",
        can=console.principal.allows if console else (lambda scope: False),
        key_id=console.principal.key_id if console else "",
        nonce=state.get("nonce", ""),
        **context,
    )
    return HTMLResponse(body, status_code=status)
