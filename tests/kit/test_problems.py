"""Every error path answers RFC 9457 problem+json of one shape."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Header
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from crmkit.errors import (
    Conflict,
    PreconditionFailed,
    TooManyRequests,
    install_error_handlers,
)
from crmkit.http import RequestContextMiddleware


class Body(BaseModel):
    name: str = Field(min_length=2)
    amount: int


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service="test")

    @app.post("/things")
    def create(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/conflict")
    def conflict() -> None:
        raise Conflict("a customer with this id number exists", existing="/api/v1/customers/1")

    @app.get("/precondition")
    def precondition(if_match: str = Header()) -> None:
        raise PreconditionFailed(f"version {if_match} is not current")

    @app.get("/limited")
    def limited() -> None:
        raise TooManyRequests("slow down", headers={"Retry-After": "3"})

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


def _is_problem(resp, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:crm:problem:")
    assert body["title"] and body["detail"]
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


def test_404(client: TestClient) -> None:
    assert _is_problem(client.get("/nowhere"), 404)["instance"] == "/nowhere"


def test_405(client: TestClient) -> None:
    assert "DELETE" in _is_problem(client.delete("/things"), 405)["detail"]


def test_409_carries_extensions(client: TestClient) -> None:
    assert _is_problem(client.get("/conflict"), 409)["existing"] == "/api/v1/customers/1"


def test_412(client: TestClient) -> None:
    assert _is_problem(client.get("/precondition", headers={"If-Match": "3"}), 412)


def test_422_lists_every_field_with_its_reason(client: TestClient) -> None:
    body = _is_problem(client.post("/things", json={"name": "x", "amount": "many"}), 422)
    fields = {e["field"]: e["reason"] for e in body["errors"]}
    assert set(fields) == {"name", "amount"}
    assert "at least 2" in fields["name"]


def test_422_for_a_body_that_is_not_json(client: TestClient) -> None:
    resp = client.post("/things", content=b"{", headers={"content-type": "application/json"})
    assert _is_problem(resp, 422)["errors"]


def test_429_keeps_retry_after(client: TestClient) -> None:
    resp = client.get("/limited")
    _is_problem(resp, 429)
    assert resp.headers["retry-after"] == "3"


def test_500_hides_internals(client: TestClient) -> None:
    body = _is_problem(client.get("/boom"), 500)
    assert "hunter2" not in str(body) and "RuntimeError" not in str(body)


def test_request_and_correlation_ids_are_carried(client: TestClient) -> None:
    resp = client.get("/nowhere", headers={"x-request-id": "r-1", "x-correlation-id": "c-1"})
    assert resp.headers["x-request-id"] == "r-1"
    assert resp.headers["x-correlation-id"] == "c-1"
