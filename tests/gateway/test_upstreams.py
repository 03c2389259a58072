"""Readiness over the real services, and the merged OpenAPI document of the suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from crmkit.errors import PROBLEM_JSON
from crmkit.settings import KafkaSettings
from gateway.routes import SERVICES
from tests.gateway.conftest import ServerThread

pytestmark = pytest.mark.integration


def get(server: ServerThread, path: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", trust_env=False, timeout=30)


def iter_refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` value in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from iter_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_refs(item)


def assert_refs_resolve(document: dict[str, Any]) -> None:
    refs = set(iter_refs(document))
    assert refs, "the document has no references at all"
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in document["components"]["schemas"], f"dangling {ref}"


def operations(document: dict[str, Any], path: str) -> list[dict[str, Any]]:
    item = document["paths"][path]
    return [op for method, op in item.items() if method in {"get", "post", "patch", "put"}]


@pytest.fixture
def all_services(
    start_service: Callable[..., ServerThread], kafka_settings: KafkaSettings
) -> dict[str, str]:
    """The five services, ready (real broker): upstream settings of a gateway."""
    return {f"upstream_{name}": start_service(name, kafka=kafka_settings).url for name in SERVICES}


def test_readyz_lists_each_upstream_when_some_are_down(
    start_service: Callable[..., ServerThread],
    start_gateway: Callable[..., ServerThread],
    kafka_settings: KafkaSettings,
) -> None:
    customer = start_service("customer", kafka=kafka_settings)
    gateway = start_gateway(upstream_customer=customer.url)
    response = get(gateway, "/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["upstreams"] == {
        "customer": "ready",
        "rating": "unreachable",
        "assignment": "unreachable",
        "visits": "unreachable",
        "notify": "unreachable",
    }
    assert "rating (unreachable)" in body["detail"]
    assert "customer" not in body["detail"]


def test_readyz_reports_an_upstream_that_is_up_but_not_ready(
    customer: ServerThread, start_gateway: Callable[..., ServerThread]
) -> None:
    gateway = start_gateway(upstream_customer=customer.url)
    body = get(gateway, "/readyz").json()
    assert body["upstreams"]["customer"] == "not ready"  # no broker behind it


def test_readyz_ready_when_every_upstream_is(
    all_services: dict[str, str], start_gateway: Callable[..., ServerThread]
) -> None:
    gateway = start_gateway(**all_services)
    response = get(gateway, "/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "upstreams": dict.fromkeys(SERVICES, "ready"),
    }


def test_merged_openapi_with_only_customer_up(gateway: ServerThread) -> None:
    response = get(gateway, "/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document["x-unavailable"] == ["rating", "assignment", "visits", "notify"]
    paths = document["paths"]
    for path in ("/api/v1/customers", "/api/v1/customers/{customer_id}", "/api/v1/me"):
        assert path in paths
    assert "/api/v1/auth/token" in paths
    assert "/api/v1/admin/customer/status" in paths
    assert not {"/healthz", "/readyz", "/metrics"} & set(paths)
    for operation in operations(document, "/api/v1/customers"):
        assert operation["tags"] == ["customer", "customers"]
    assert operations(document, "/api/v1/me")[0]["tags"] == ["gateway", "auth"]
    assert {"customer", "gateway"} <= {tag["name"] for tag in document["tags"]}
    assert "CustomerCreate" in document["components"]["schemas"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    assert_refs_resolve(document)


def test_merged_openapi_of_the_whole_suite(
    all_services: dict[str, str], start_gateway: Callable[..., ServerThread]
) -> None:
    gateway = start_gateway(**all_services)
    document = get(gateway, "/api/v1/openapi.json").json()
    assert document["x-unavailable"] == []
    for service in SERVICES:
        status = f"/api/v1/admin/{service}/status"
        assert status in document["paths"]
        assert operations(document, status)[0]["tags"][0] == service
    # The kit's schemas are the same in every service: defined once, not renamed.
    schemas = document["components"]["schemas"]
    assert "ServiceStatus" in schemas
    assert not [name for name in schemas if name.startswith(tuple(s + "_" for s in SERVICES))]
    operation_ids = [
        op["operationId"] for path in document["paths"] for op in operations(document, path)
    ]
    assert len(operation_ids) == len(set(operation_ids))
    assert_refs_resolve(document)
