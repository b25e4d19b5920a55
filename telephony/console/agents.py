"""Agents: list, create, edit (the API's validation errors beside the fields), versions with a diff and rollback,
and each agent's tools with the dry run of a declared tool (the exact bounded query it would issue)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agents.config import AgentConfig
from telephony.console.context import api_of, console_of, refused
from telephony.console.render import page

FORM_FIELDS: list[tuple[str, str]] = [
    ("id", "text"),
    ("greeting", "text"),
    ("system_prompt", "textarea"),
    ("voice", "text"),
    ("tools", "list"),
    ("transfer_number", "text"),
    ("tenant", "text"),
    ("record", "bool"),
    ("recording_consent", "text"),
    ("retention_days", "number"),
    ("max_call_seconds", "number"),
]
"""The fields an operator edits most, as form fields; every other setting is in the "advanced" JSON box."""
FORM_FIELDS = [(name, kind) for name, kind in FORM_FIELDS if name in AgentConfig.model_fields]
FIELD_NAMES = frozenset(name for name, _ in FORM_FIELDS)
CLEARABLE = frozenset({"voice", "transfer_number", "tenant", "recording_consent", "retention_days"})
"""Optional settings an empty field unsets (the others fall back to their defaults)."""
MAX_DIFF_ROWS = 500


async def list_agents(request: Request) -> Response:
    answer = await api_of(request).request(console_of(request).principal, "GET", "/agents", params={"limit": 200})
    if answer.status_code != 200:
        return refused(request, answer)
    return page(request, "agents.html", agents=answer.json()["items"])


async def new_agent(request: Request) -> Response:
    defaults = AgentConfig.model_validate({"id": "new-agent"}).model_dump(mode="json")
    defaults["id"] = ""
    return _form(request, defaults, version=None, errors={})


async def create_agent(request: Request) -> Response:
    config, errors = _config_from_form(await request.form())
    if errors:
        return _form(request, config, version=None, errors=errors, status=422)
    answer = await api_of(request).request(console_of(request).principal, "POST", "/agents", json=config)
    if answer.status_code in (201, 200):
        return RedirectResponse(f"{request.scope.get('root_path', '')}/agents/{answer.json()['id']}", status_code=303)
    if answer.status_code in (409, 422):
        return _form(request, config, version=None, errors=_field_errors(answer), status=answer.status_code)
    return refused(request, answer)


async def show_agent(request: Request) -> Response:
    agent_id = request.path_params["agent_id"]
    api, principal = api_of(request), console_of(request).principal
    answer = await api.request(principal, "GET", f"/agents/{agent_id}")
    if answer.status_code != 200:
        return refused(request, answer)
    agent = answer.json()
    return _form(request, agent["config"], version=agent["version"], errors={}, tools=await _tools(request, agent))


async def update_agent(request: Request) -> Response:
    agent_id = request.path_params["agent_id"]
    form = await request.form()
    config, errors = _config_from_form(form)
    config["id"] = agent_id
    version = int(str(form.get("version", "0")) or 0) or None
    if errors:
        return _form(request, config, version=version, errors=errors, status=422)
    answer = await api_of(request).request(
        console_of(request).principal,
        "PUT",
        f"/agents/{agent_id}",
        json=config,
        params={"expected_version": version} if version else None,
    )
    if answer.status_code == 200:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/agents/{agent_id}?saved=1", status_code=303)
    if answer.status_code in (409, 422):
        return _form(request, config, version=version, errors=_field_errors(answer), status=answer.status_code)
    return refused(request, answer)


async def versions(request: Request) -> Response:
    agent_id = request.path_params["agent_id"]
    api, principal = api_of(request), console_of(request).principal
    listed = await api.request(principal, "GET", f"/agents/{agent_id}/versions")
    if listed.status_code != 200:
        return refused(request, listed)
    numbers: list[int] = listed.json()["versions"]
    newer = _int(request.query_params.get("b")) or numbers[0]
    older = _int(request.query_params.get("a")) or (numbers[1] if len(numbers) > 1 else numbers[0])
    configs = {}
    for number in {older, newer}:
        answer = await api.request(principal, "GET", f"/agents/{agent_id}/versions/{number}")
        if answer.status_code != 200:
            return refused(request, answer)
        configs[number] = answer.json()["config"]
    return page(
        request,
        "agent_versions.html",
        agent_id=agent_id,
        versions=numbers,
        current=numbers[0],
        older=older,
        newer=newer,
        diff=diff(configs[older], configs[newer]),
    )


async def rollback(request: Request) -> Response:
    """Make an old version current again (as a new version, so the history keeps what happened)."""
    agent_id = request.path_params["agent_id"]
    form = await request.form()
    version, current = _int(str(form.get("version", ""))), _int(str(form.get("current", "")))
    api, principal = api_of(request), console_of(request).principal
    old = await api.request(principal, "GET", f"/agents/{agent_id}/versions/{version}")
    if old.status_code != 200:
        return refused(request, old)
    answer = await api.request(
        principal,
        "PUT",
        f"/agents/{agent_id}",
        json=old.json()["config"],
        params={"expected_version": current} if current else None,
    )
    if answer.status_code != 200:
        return refused(request, answer)
    return RedirectResponse(f"{request.scope.get('root_path', '')}/agents/{agent_id}/versions", status_code=303)


async def dry_run(request: Request) -> Response:
    agent_id, name = request.path_params["agent_id"], request.path_params["name"]
    form = await request.form()
    api, principal = api_of(request), console_of(request).principal
    try:
        arguments = json.loads(str(form.get("arguments", "") or "{}"))
    except ValueError as exc:
        arguments, problem = None, f"arguments are not JSON: {exc}"
    body: dict[str, Any] = {"arguments": arguments}
    if str(form.get("customer_key", "")).strip():
        body["customer_key"] = str(form.get("customer_key")).strip()
    agent = await api.request(principal, "GET", f"/agents/{agent_id}")
    if agent.status_code != 200:
        return refused(request, agent)
    result: dict[str, Any] = {"tool": name, "arguments": form.get("arguments", "")}
    if arguments is None:
        result["error"] = problem
    else:
        answer = await api.request(principal, "POST", f"/tools/{name}/dry-run", json=body)
        if answer.status_code == 200:
            result["issued"] = answer.json()["issued"]
        elif answer.status_code in (403, 404, 422):
            result["error"] = _problem_text(answer)
        else:
            return refused(request, answer)
    agent_json = agent.json()
    return _form(
        request,
        agent_json["config"],
        version=agent_json["version"],
        errors={},
        tools=await _tools(request, agent_json),
        dry_run=result,
    )


def _form(
    request: Request,
    config: dict[str, Any],
    *,
    version: int | None,
    errors: dict[str, list[str]],
    status: int = 200,
    tools: list[dict[str, Any]] | None = None,
    dry_run: dict[str, Any] | None = None,
) -> Response:
    advanced = {key: value for key, value in config.items() if key not in FIELD_NAMES}
    return page(
        request,
        "agent_form.html",
        status=status,
        config=config,
        fields=FORM_FIELDS,
        advanced=json.dumps(advanced, indent=2, sort_keys=True),
        version=version,
        errors=errors,
        tools=tools or [],
        dry_run=dry_run,
        saved=request.query_params.get("saved") == "1",
    )


def _config_from_form(form: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The form as the API's body; values are passed as typed so the API's own validation judges them."""
    errors: dict[str, list[str]] = {}
    try:
        config = json.loads(str(form.get("advanced", "") or "{}"))
        if not isinstance(config, dict):
            raise ValueError("must be a JSON object")
    except ValueError as exc:
        config, errors["advanced"] = {}, [f"not a JSON object: {exc}"]
    for name, kind in FORM_FIELDS:
        raw = form.get(name)
        if kind == "bool":
            config[name] = raw is not None
        elif kind == "list":
            config[name] = [part.strip() for part in str(raw or "").replace("\n", ",").split(",") if part.strip()]
        elif raw is None or str(raw).strip() == "":
            if name in CLEARABLE:
                config[name] = None
            elif name == "id":
                config[name] = ""
            else:
                config.pop(name, None)  # the default applies
        else:
            config[name] = str(raw) if kind != "number" else _number(str(raw))
    return config, errors


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # the API says what is wrong with it


def _field_errors(answer: Any) -> dict[str, list[str]]:
    """The API's 422/409 detail, by form field: a body location's first part, else the advanced box."""
    detail = answer.json().get("detail")
    if isinstance(detail, str):
        return {"form": [detail]}
    errors: dict[str, list[str]] = {}
    for item in detail or []:
        location = [part for part in item.get("loc", []) if part != "body"]
        field = str(location[0]) if location else "form"
        message = str(item.get("msg", "invalid"))
        if field not in FIELD_NAMES:
            message, field = f"{'.'.join(map(str, location)) or 'config'}: {message}", "advanced"
            if location and location[0] in ("query", "expected_version"):
                field = "form"
        elif len(location) > 1:
            message = f"{'.'.join(map(str, location[1:]))}: {message}"
        errors.setdefault(field, []).append(message)
    return errors


def _problem_text(answer: Any) -> str:
    detail = answer.json().get("detail")
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail)


async def _tools(request: Request, agent: dict[str, Any]) -> list[dict[str, Any]]:
    """Each tool the agent uses: a declared one with its declaration (for the dry run), or a built-in."""
    api, principal = api_of(request), console_of(request).principal
    tools = []
    for reference in agent["config"].get("tools", []):
        name = str(reference).split("@")[0]
        answer = await api.request(principal, "GET", f"/tools/{name}")
        declared = answer.json() if answer.status_code == 200 else None
        tools.append({"reference": reference, "name": name, "declared": declared})
    return tools


def diff(older: dict[str, Any], newer: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(setting, old value, new value) for every setting that differs, nested settings by dotted path."""
    flat_old, flat_new = _flatten(older), _flatten(newer)
    rows = [
        (key, _shown(flat_old.get(key, _MISSING)), _shown(flat_new.get(key, _MISSING)))
        for key in sorted(set(flat_old) | set(flat_new))
        if flat_old.get(key, _MISSING) != flat_new.get(key, _MISSING)
    ]
    return rows[:MAX_DIFF_ROWS]


_MISSING = object()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _shown(value: Any) -> str:
    return "(unset)" if value is _MISSING else json.dumps(value, default=str)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
