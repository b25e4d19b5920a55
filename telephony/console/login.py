"""The login form: an API key in, a signed session cookie out (the key itself is never stored or echoed)."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from telephony.console.render import page
from telephony.console.session import COOKIE_NAME
from telephony.console.state import ConsoleState

LOGIN_CSRF_COOKIE = "switchboard_console_login"
"""Double-submit token for the login form itself (no session exists yet to carry one)."""
MAX_KEY_CHARS = 512


def _state(request: Request) -> ConsoleState:
    return request.app.state.console  # type: ignore[no-any-return]


def _safe_next(request: Request, target: str | None) -> str:
    """Only a path inside the console: never another site (no open redirect)."""
    prefix = request.scope.get("root_path", "")
    if target and target.startswith(prefix + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{prefix}/"


async def login_form(request: Request) -> Response:
    token = secrets.token_urlsafe(18)
    response = page(request, "login.html", login_csrf=token, next=request.query_params.get("next", ""), error=None)
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def login(request: Request) -> Response:
    state = _state(request)
    address = request.client.host if request.client else "unknown"
    form = await request.form()
    posted = str(form.get("login_csrf", ""))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(posted.encode(), expected.encode()):
        return _again(request, "The form expired; please try again.", 403)
    if state.login_limit.blocked(address):
        return _again(request, "Too many failed logins; wait a minute.", 429)
    key = str(form.get("api_key", ""))[:MAX_KEY_CHARS].strip()
    principal = state.keys().principal(key)
    if principal is None:
        state.login_limit.failed(address)
        return _again(request, "That key is not valid.", 401)
    state.login_limit.succeeded(address)
    signer = state.signer()
    assert signer is not None  # the guard answered 503 otherwise
    cookie, _ = signer.issue(principal.key_id)
    response = RedirectResponse(_safe_next(request, str(form.get("next", ""))), status_code=303)
    _set_cookie(request, response, COOKIE_NAME, cookie, max_age=int(signer.lifetime_s))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=request.scope.get("root_path", "") or "/")
    return response


async def logout(request: Request) -> Response:
    prefix = request.scope.get("root_path", "")
    response = RedirectResponse(f"{prefix}/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path=prefix or "/")
    return response


def _again(request: Request, error: str, status: int) -> Response:
    token = secrets.token_urlsafe(18)
    response = page(request, "login.html", status=status, login_csrf=token, next="", error=error)
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=request.scope.get("root_path", "") or "/",
        secure=_state(request).secure_cookie,
        httponly=True,
        samesite="strict",
    )
