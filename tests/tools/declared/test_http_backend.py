"""Declared http tools against a fake backend on loopback, through the executor (acceptance 4): the
allowed host answers with only the declared fields for the verified caller; other hosts, redirects,
oversize, slow and non-JSON answers are refused with a clear error; GET is retried on 503 and a
write never is; path arguments cannot leave their segment; the secret header reaches the backend and
nothing else (audit, logs, results)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from agents.loopback import LoopbackServer
from tests.support.fake_http_backend import API_KEY, FakeHttpBackend
from tools import CallerIdentity, InMemoryToolAudit, ToolCall, ToolContext, ToolExecutor, ToolOutcome
from tools.declared import DeclaredToolResources, build_tool, parse_declaration

VERIFIED = ToolContext("CA-http", "support", "+15550101", CallerIdentity(customer_key="C-1001"))
ORDER_ID = {"name": "order_id", "type": "string", "max_length": 40, "required": True}
UNVERIFIED = ToolContext("CA-http", "support", "+15550101", CallerIdentity(claimed_key="C-1001"))


@dataclass
class Backend:
    fake: FakeHttpBackend
    origin: str
    """`http://localhost:<port>`: loopback by name (IP literals are refused)."""
    host: str
    """`localhost:<port>`, as the allow-list names it."""

    def declaration(self, path: str = "/orders/{order_id}", **changes: Any) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": "http",
            "name": "order_status",
            "description": "The status of one of the caller's orders.",
            "url": self.origin + path,
            "arguments": [ORDER_ID],
            "identity_param": {"location": "query", "name": "customer_id"},
            "headers": {"X-Api-Key": {"secret": "ORDERS_KEY"}},
            "returns": ["order.status", "order.eta"],
            "timeout_s": 5,
        }
        document.update(changes)
        if "{order_id}" not in document["url"] and document["arguments"] == [ORDER_ID]:
            document["query"] = ["order_id"]
        return document

    def executor(
        self, document: dict[str, Any], audit: InMemoryToolAudit | None = None, **resources: Any
    ) -> ToolExecutor:
        options: dict[str, Any] = {"allowed_hosts": frozenset({self.host}), "secrets": {"ORDERS_KEY": API_KEY}.get}
        tool = build_tool(parse_declaration(document), DeclaredToolResources(**{**options, **resources}))
        return ToolExecutor([tool], audit)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    fake = FakeHttpBackend()
    server = LoopbackServer(fake.app)
    async with server:
        try:
            yield Backend(fake, f"http://localhost:{server.port}", f"localhost:{server.port}")
        finally:
            fake.release.set()


async def call(
    executor: ToolExecutor, arguments: dict[str, Any], context: ToolContext = VERIFIED
) -> tuple[ToolOutcome, dict[str, Any]]:
    outcome = await executor.turn(context).run(ToolCall("call-1", "order_status", json.dumps(arguments)))
    return outcome, json.loads(outcome.content)


async def test_the_allowed_host_answers_with_only_the_declared_fields_for_the_verified_caller(backend: Backend) -> None:
    outcome, content = await call(backend.executor(backend.declaration()), {"order_id": "50001"})
    assert outcome.ok, content
    assert content == {"order": {"status": "shipped"}}  # no id, customer, internal note, served_by
    (seen,) = backend.fake.requests
    assert (seen.method, seen.raw_path, seen.query) == ("GET", "/orders/50001", "customer_id=C-1001")
    assert seen.headers["x-api-key"] == API_KEY


async def test_the_default_secret_lookup_reads_the_environment(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_TOOL_SECRET_ORDERS_KEY", API_KEY)
    _, content = await call(backend.executor(backend.declaration(), secrets=None), {"order_id": "50001"})
    assert content == {"order": {"status": "shipped"}}
    monkeypatch.delenv("SWITCHBOARD_TOOL_SECRET_ORDERS_KEY")
    _, content = await call(backend.executor(backend.declaration(), secrets=None), {"order_id": "50001"})
    assert content == {
        "error": "order_status is not configured (secret ORDERS_KEY is not set); tell the caller "
        "you cannot check right now"
    }
    assert backend.fake.hits["order"] == 1


async def test_another_customers_order_is_out_of_reach(backend: Backend) -> None:
    executor = backend.executor(backend.declaration())
    outcome, content = await call(executor, {"order_id": "50004"})  # C-1002's order
    assert not outcome.ok and content == {
        "error": "order_status found nothing (HTTP 404); check the details with the caller"
    }
    outcome, content = await call(executor, {"order_id": "50004", "customer_id": "C-1002"})
    assert outcome.error == "invalid_arguments" and "customer_id is not a field" in content["error"]
    outcome, content = await call(executor, {"order_id": "50001"}, UNVERIFIED)
    assert outcome.error == "refused" and "not verified" in content["error"]
    assert [seen.query for seen in backend.fake.requests] == ["customer_id=C-1001"]


async def test_a_top_level_array_becomes_items_of_the_declared_fields(backend: Backend) -> None:
    document = backend.declaration("/orders", arguments=[], returns=["id", "status"])
    _, content = await call(backend.executor(document), {})
    assert content == {"items": [{"id": "50001", "status": "shipped"}]}


async def test_another_host_is_refused_at_build(backend: Backend) -> None:
    for url in ("http://localhost:1/orders/{order_id}", "https://evil.example.net/orders/{order_id}"):
        with pytest.raises(ValidationError) as caught:
            backend.executor(backend.declaration(url=url))
        assert caught.value.errors()[0]["loc"] == ("url",)
        assert f"is not on the allowed hosts ({backend.host})" in str(caught.value)
    with pytest.raises(ValidationError, match="IP addresses are not allowed"):
        backend.executor(
            backend.declaration(url=backend.origin.replace("localhost", "127.0.0.1") + "/orders/{order_id}")
        )
    assert not backend.fake.requests


@pytest.mark.parametrize("target", ["https://evil.example.net/steal", "/admin"])
async def test_a_redirect_is_never_followed(backend: Backend, target: str) -> None:
    backend.fake.redirect_to = target if target.startswith("https") else backend.origin + target
    _, content = await call(backend.executor(backend.declaration("/redirect", retries=2)), {"order_id": "1"})
    assert content == {"error": "order_status: the backend redirected (HTTP 302) and redirects are not followed"}
    assert backend.fake.hits == {"redirect": 1}


@pytest.mark.parametrize("path", ["/big", "/big-declared"])  # streamed without a length; a declared length
async def test_an_oversize_answer_is_refused(backend: Backend, path: str) -> None:
    outcome, content = await call(backend.executor(backend.declaration(path)), {"order_id": "1"})
    assert outcome.error == "refused"
    assert content == {"error": "order_status: response larger than 65536 bytes"}


async def test_a_larger_cap_admits_the_same_answer(backend: Backend) -> None:
    document = backend.declaration("/big", max_response_bytes=1024 * 1024)
    _, content = await call(backend.executor(document), {"order_id": "1"})
    assert content == {"order": {"status": "shipped"}}  # the padding is not a declared field


async def test_a_slow_answer_times_out_with_a_clear_error(backend: Backend) -> None:
    outcome, content = await call(backend.executor(backend.declaration("/slow", timeout_s=0.3)), {"order_id": "1"})
    assert outcome.error == "refused"
    assert content == {
        "error": "order_status: the backend did not answer within 0.3 s; tell the caller you cannot check right now"
    }


async def test_an_answer_that_is_not_json_is_refused(backend: Backend) -> None:
    _, content = await call(backend.executor(backend.declaration("/text")), {"order_id": "1"})
    assert content == {
        "error": "order_status: the backend's answer is not JSON; tell the caller you cannot check right now"
    }


async def test_get_is_retried_on_503(backend: Backend) -> None:
    _, content = await call(backend.executor(backend.declaration("/flaky", retries=2)), {"order_id": "1"})
    assert content == {"order": {"status": "shipped"}}
    assert backend.fake.hits["flaky"] == 3


async def test_get_gives_up_after_its_retries(backend: Backend) -> None:
    _, content = await call(backend.executor(backend.declaration("/flaky", retries=1)), {"order_id": "1"})
    assert content == {
        "error": "order_status: the backend answered HTTP 503; tell the caller you cannot check right now"
    }
    assert backend.fake.hits["flaky"] == 2


async def test_a_write_is_never_retried(backend: Backend) -> None:
    document = backend.declaration(
        "/notes",
        method="POST",
        arguments=[{"name": "note", "type": "string", "max_length": 200, "required": True}],
        body=["note"],
        identity_param={"location": "body", "name": "customer_id"},
    )
    _, content = await call(backend.executor(document), {"note": "leave it at the door"})
    assert content == {
        "error": "order_status: the backend answered HTTP 503; tell the caller you cannot check right now"
    }
    (seen,) = backend.fake.requests
    assert json.loads(seen.body) == {"note": "leave it at the door", "customer_id": "C-1001"}
    with pytest.raises(ValidationError, match="only GET is retried"):
        backend.executor({**document, "retries": 1})


async def test_a_path_argument_stays_inside_its_segment(backend: Backend) -> None:
    outcome, _ = await call(backend.executor(backend.declaration()), {"order_id": "A/1?x=1#y"})
    assert outcome.error == "refused"  # the backend has no such order
    assert [seen.raw_path for seen in backend.fake.requests] == ["/orders/A%2F1%3Fx%3D1%23y"]


@pytest.mark.parametrize("order_id", ["..", "../admin", "..%2Fadmin", "%2e%2e", "%2e%2e%2fadmin", "..\\admin"])
async def test_path_traversal_is_refused_before_any_request(backend: Backend, order_id: str) -> None:
    outcome, content = await call(backend.executor(backend.declaration()), {"order_id": order_id})
    assert outcome.error == "refused" and "cannot be empty or hold '.' or '..' path segments" in content["error"]
    assert not backend.fake.requests


async def test_the_secret_reaches_the_backend_and_nothing_else(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    audit = InMemoryToolAudit()
    contents = []
    for path, arguments in [
        ("/orders/{order_id}", {"order_id": "50001"}),  # found
        ("/orders/{order_id}", {"order_id": "50004"}),  # 404
        ("/echo", {"order_id": "1"}),  # a backend that echoes the headers in a returned field
        ("/redirect", {"order_id": "1"}),
        ("/text", {"order_id": "1"}),
        ("/slow", {"order_id": "1"}),
    ]:
        document = backend.declaration(path, returns=["order.status", "order.note"], timeout_s=0.3)
        outcome, _ = await call(backend.executor(document, audit), arguments)
        contents.append(outcome.content)
    assert all(seen.headers["x-api-key"] == API_KEY for seen in backend.fake.requests)
    assert len(backend.fake.requests) == 6 and len(audit.entries) == 6
    echoed = json.loads(contents[2])["order"]["note"]
    assert "<secret ORDERS_KEY>" in echoed and API_KEY not in echoed
    assert caplog.records  # httpx and the tools did log
    for text in [*contents, caplog.text, *(repr(entry.as_dict()) for entry in audit.entries)]:
        assert API_KEY not in text
