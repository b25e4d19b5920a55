"""Declared http tools on paper: every rule refuses naming its field, the host list is exact, and the
dry run shows the exact request (secret values masked, arguments unable to leave the path)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from tools import CallerIdentity, ToolContext, ToolError
from tools.declared import DeclaredToolResources, HttpDeclaration, build_tool, declaration_json, describe
from tools.declared import parse_declaration as parse
from tools.declared.hosts import parse_allowed_hosts

SECRET = "sk-test-93be1f07c2"
HOSTS = frozenset({"api.example.com", "billing.example.com:8443"})
RESOURCES = DeclaredToolResources(allowed_hosts=HOSTS, secrets={"ORDERS_KEY": SECRET}.get)
UNVERIFIED = ToolContext("CA-http", "support", "+15550101", CallerIdentity(claimed_key="C-1001"))


def order_status(**changes: Any) -> dict[str, Any]:
    """A valid declaration: GET an order of the verified caller, the key in the query."""
    document: dict[str, Any] = {
        "kind": "http",
        "name": "order_status",
        "description": "The status of one of the caller's orders.",
        "url": "https://api.example.com/v1/orders/{order_id}",
        "arguments": [
            {"name": "order_id", "type": "string", "max_length": 20, "required": True},
            {"name": "detail", "type": "enum", "values": ["short", "full"]},
        ],
        "query": ["detail"],
        "identity_param": {"location": "query", "name": "customer_id"},
        "headers": {"X-Api-Key": {"secret": "ORDERS_KEY"}, "X-Client": "switchboard"},
        "returns": ["order.status", "order.eta"],
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


def refused_field(document: dict[str, Any]) -> tuple[str | int, ...]:
    """The field a refusal names (a header value may fail both shapes it could have: same field)."""
    with pytest.raises(ValidationError) as caught:
        parse(document)
    fields = {error["loc"][:2] for error in caught.value.errors()}
    assert len(fields) == 1, caught.value.errors()
    return fields.pop()


def test_a_valid_declaration_round_trips_through_its_json_form() -> None:
    declaration = parse(order_status())
    assert isinstance(declaration, HttpDeclaration)
    assert parse(declaration_json(declaration)) == declaration
    assert declaration.timeout_s == 5.0 and declaration.max_response_bytes == 64 * 1024 and declaration.retries == 0


POST_NOTE = {
    "method": "POST",
    "url": "https://api.example.com/v1/notes",
    "arguments": [{"name": "note", "type": "string", "max_length": 200, "required": True}],
    "query": [],
    "body": ["note"],
}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": "https://user:pass@api.example.com/v1/orders/{order_id}"}, "url"),
        ({"url": "https://api.example.com@evil.example.net/v1/orders/{order_id}"}, "url"),
        ({"url": "https://127.0.0.1/v1/orders/{order_id}"}, "url"),
        ({"url": "https://[::1]/v1/orders/{order_id}"}, "url"),
        ({"url": "https://2130706433/v1/orders/{order_id}"}, "url"),
        ({"url": "https://0x7f.1/v1/orders/{order_id}"}, "url"),
        ({"url": "https://api.example.com./v1/orders/{order_id}"}, "url"),
        ({"url": "http://api.example.com/v1/orders/{order_id}"}, "url"),
        ({"url": "ftp://api.example.com/v1/orders/{order_id}"}, "url"),
        ({"url": "https://{order_id}.example.com/v1/orders"}, "url"),
        ({"url": "https://api.example.com/v1/orders/{order_id}?all=1"}, "url"),
        ({"url": "https://api.example.com/v1/%2e%2e/orders/{order_id}"}, "url"),
        ({"url": "https://api.example.com/v1/../admin/{order_id}"}, "url"),
        ({"url": "https://api.example.com\\@evil.example.net/{order_id}"}, "url"),
        ({"url": "https://api.example.com:0/v1/orders/{order_id}"}, "url"),
        ({"url": "https://api.example.com/v1/orders/{order}"}, "url"),  # not an argument
        ({"url": "https://api.example.com/v1/orders/{order_id}/{detail}"}, "url"),  # optional, and in query
        ({"url": "https://api.example.com/v1/orders"}, "url"),  # order_id sent nowhere
        ({"query": ["detail", "missing"]}, "query"),
        ({"body": ["detail"]}, "body"),  # GET sends no body
        ({"identity_param": None}, "identity_param"),  # scope caller needs one
        ({"scope": "none"}, "identity_param"),  # scope none sends no key
        ({"identity_param": {"location": "query", "name": "order_id"}}, "identity_param"),  # the model sets it
        ({"identity_param": {"location": "body", "name": "customer_id"}}, "identity_param"),  # GET: no body
        ({"identity_param": {"location": "path", "name": "customer_id"}}, "url"),  # no such placeholder
        ({"headers": {"Authorization": "Bearer abc"}}, "headers"),  # a credential in plain text
        ({"headers": {"Host": "evil.example.net"}}, "headers"),
        ({"headers": {"X-Api-Key": {"secret": "orders key"}}}, "headers"),
        ({"headers": {"X-Note": "line\r\nX-Evil: 1"}}, "headers"),
        ({"returns": []}, "returns"),
        ({"returns": ["order..status"]}, "returns"),
        ({"returns": ["order", "order.status"]}, "returns"),  # one contains the other
        ({"retries": 3}, "retries"),
        ({"timeout_s": 11}, "timeout_s"),
        ({"max_response_bytes": 2 * 1024 * 1024}, "max_response_bytes"),
        (
            {
                "arguments": [
                    {"name": "order_id", "type": "string", "max_length": 20, "required": True, "match": "prefix"}
                ]
            },
            "arguments",
        ),
        ({"method": "DELETE"}, "method"),
        ({"verb": "GET"}, "verb"),
    ],
)
def test_an_unsafe_declaration_is_refused_naming_its_field(changes: dict[str, Any], field: str) -> None:
    loc = refused_field(order_status(**changes))
    assert loc[:2] == ("http", field)


def test_writes_are_never_retried() -> None:
    assert parse(order_status(**POST_NOTE)).method == "POST"
    assert refused_field(order_status(**POST_NOTE, retries=1))[:2] == ("http", "retries")


def test_a_host_off_the_list_is_refused_at_build_naming_the_url_and_the_list() -> None:
    for url in (
        "https://evil.example.net/v1/orders/{order_id}",
        "https://evil.api.example.com/v1/orders/{order_id}",  # a subdomain is another host
        "https://api.example.com:8443/v1/orders/{order_id}",  # a port not on the list
        "https://billing.example.com/v1/orders/{order_id}",  # listed with a port only
    ):
        with pytest.raises(ValidationError) as caught:
            build_tool(parse(order_status(url=url)), RESOURCES)
        (error,) = caught.value.errors()
        assert error["loc"] == ("url",)
        assert "is not on the allowed hosts (api.example.com, billing.example.com:8443)" in error["msg"]


def test_an_empty_list_refuses_every_host_and_names_the_setting() -> None:
    with pytest.raises(ValidationError, match="SWITCHBOARD_TOOL_HTTP_ALLOWED_HOSTS"):
        build_tool(parse(order_status()), DeclaredToolResources())


def test_listed_hosts_build_whatever_their_case_and_listed_ports() -> None:
    for url in (
        "https://API.Example.COM/v1/orders/{order_id}",
        "https://api.example.com:443/v1/orders/{order_id}",
        "https://billing.example.com:8443/v1/orders/{order_id}",
    ):
        assert build_tool(parse(order_status(url=url)), RESOURCES).name == "order_status"


def test_the_allowed_hosts_setting_is_parsed_strictly() -> None:
    assert parse_allowed_hosts(" API.example.com , billing.example.com:8443,,") == HOSTS
    assert parse_allowed_hosts("") == frozenset()
    for bad in ("127.0.0.1", "api.example.com.", "*.example.com", "api.example.com:99999", "https://api.example.com"):
        with pytest.raises(ValueError, match="'"):
            parse_allowed_hosts(f"ok.example.com,{bad}")


def test_the_dry_run_shows_the_exact_request_with_secrets_masked() -> None:
    declaration = parse(order_status())
    description = describe(
        declaration, {"order_id": "50001", "detail": "full"}, UNVERIFIED, RESOURCES, customer_key="C-1001"
    )
    assert description == {
        "operation": "http",
        "method": "GET",
        "url": "https://api.example.com/v1/orders/50001",
        "query": {"detail": "full", "customer_id": "C-1001"},
        "body": None,
        "headers": {
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": "switchboard-tool/1",
            "X-Api-Key": "<secret ORDERS_KEY>",
            "X-Client": "switchboard",
        },
        "timeout_s": 5.0,
        "max_response_bytes": 65536,
        "retries": 0,
        "redirects": "not followed",
        "returns": ["order.status", "order.eta"],
    }
    assert SECRET not in json.dumps(description)


def test_the_dry_run_of_a_write_shows_its_body_with_the_callers_key() -> None:
    declaration = parse(order_status(**POST_NOTE, identity_param={"location": "body", "name": "customer_id"}))
    verified = ToolContext("CA-http", "support", "+15550101", CallerIdentity(customer_key="C-1001"))
    description = describe(declaration, {"note": "leave it at the door"}, verified, RESOURCES)
    assert (description["method"], description["url"]) == ("POST", "https://api.example.com/v1/notes")
    assert description["body"] == {"note": "leave it at the door", "customer_id": "C-1001"}


def test_the_dry_run_of_a_caller_tool_needs_a_key() -> None:
    with pytest.raises(ToolError, match="not verified"):
        describe(parse(order_status()), {"order_id": "50001"}, UNVERIFIED, RESOURCES)


def test_the_dry_run_validates_sample_arguments_like_a_call() -> None:
    with pytest.raises(ValidationError):
        describe(parse(order_status()), {"order_id": "50001", "customer_id": "C-1002"}, UNVERIFIED, RESOURCES)


@pytest.mark.parametrize(
    ("order_id", "path"),
    [
        ("a/b?c#d", "/v1/orders/a%2Fb%3Fc%23d"),
        ("@evil.example.net", "/v1/orders/%40evil.example.net"),
        ("%41", "/v1/orders/%2541"),
        ("...", "/v1/orders/..."),
        ("..a", "/v1/orders/..a"),
    ],
)
def test_a_path_argument_stays_inside_its_segment(order_id: str, path: str) -> None:
    description = describe(parse(order_status()), {"order_id": order_id}, UNVERIFIED, RESOURCES, customer_key="C-1")
    assert description["url"] == "https://api.example.com" + path


@pytest.mark.parametrize("order_id", ["..", ".", "", "../admin", "..%2Fadmin", "%2e%2e", "%252e%252e", "a\\..\\b"])
def test_a_path_argument_with_a_dot_segment_is_refused_even_encoded(order_id: str) -> None:
    with pytest.raises(ToolError, match=r"cannot be empty or hold '\.' or '\.\.' path segments"):
        describe(parse(order_status()), {"order_id": order_id}, UNVERIFIED, RESOURCES, customer_key="C-1")


def test_the_callers_key_is_percent_encoded_too() -> None:
    declaration = parse(
        order_status(
            url="https://api.example.com/v1/customers/{customer_id}/orders/{order_id}",
            identity_param={"location": "path", "name": "customer_id"},
        )
    )
    description = describe(declaration, {"order_id": "1"}, UNVERIFIED, RESOURCES, customer_key="C/1001?")
    assert description["url"] == "https://api.example.com/v1/customers/C%2F1001%3F/orders/1"


def test_the_tool_schema_offers_the_model_no_identity_field() -> None:
    tool = build_tool(parse(order_status()), RESOURCES)
    assert set(tool.arguments.model_fields) == {"order_id", "detail"}
    assert tool.timeout_s is not None and tool.timeout_s > 5.0  # its own limit answers first


def test_a_declared_header_replaces_a_default_of_any_case() -> None:
    declaration = parse(order_status(headers={"accept": "application/vnd.orders+json"}))
    headers = describe(declaration, {"order_id": "1"}, UNVERIFIED, RESOURCES, customer_key="C-1")["headers"]
    assert headers == {
        "Accept-Encoding": "identity",
        "User-Agent": "switchboard-tool/1",
        "accept": "application/vnd.orders+json",
    }


def test_a_tool_without_caller_scope_sends_no_key_and_needs_no_verified_caller() -> None:
    declaration = parse(
        order_status(
            scope="none",
            identity_param=None,
            url="https://api.example.com/v1/stores/{store}/hours",
            arguments=[{"name": "store", "type": "enum", "values": ["north", "south"], "required": True}],
            query=[],
        )
    )
    description = describe(declaration, {"store": "north"}, UNVERIFIED, RESOURCES)
    assert (description["url"], description["query"]) == ("https://api.example.com/v1/stores/north/hours", {})
