"""The gateway in front of the real customer service: tokens, proxying, errors, request ids."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from crmkit import devauth
from crmkit.errors import PROBLEM_JSON
from tests.customer.conftest import resident_id
from tests.gateway.conftest import ServerThread

pytestmark = pytest.mark.integration

NEW_CUSTOMER = {
    "kind": "farm_household",
    "name": "Zhang San",
    "org_unit": "/HQ/U01/B01",
    "business_line": "agricultural",
    "id_number": resident_id("19720815", 312),
}


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    """The response is a problem+json of ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    return body


def login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/token", json={"username": username, "password": devauth.DEV_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# -- tokens and the caller -------------------------------------------------------------------


def test_token_for_seeded_user_works_at_me(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/auth/token", json={"username": "manager.li", "password": devauth.DEV_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 8 * 3600

    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json() == {
        "subject": "manager.li",
        "name": devauth.seeded_users()["manager.li"].name,
        "roles": ["customer_manager"],
        "org_unit": "/HQ/U01/B01",
    }


@pytest.mark.parametrize(
    ("username", "password"),
    [("manager.li", "wrong"), ("nobody", devauth.DEV_PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_bad_credentials_get_401(client: httpx.Client, username: str, password: str) -> None:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    body = assert_problem(response, 401)
    assert body["detail"] == "The username or password is not valid."


def test_token_request_validated(client: httpx.Client) -> None:
    response = client.post("/api/v1/auth/token", json={"username": "admin"})
    body = assert_problem(response, 422)
    assert body["errors"] == [{"field": "password", "reason": "Field required", "location": "body"}]


def test_me_lists_roles_sorted(client: httpx.Client, auth_header: Callable[..., dict[str, str]]):
    me = client.get("/api/v1/me", headers=auth_header("admin"))
    assert me.json()["roles"] == ["admin", "ops"]


def test_token_endpoint_absent_when_issuer_disabled(
    start_gateway: Callable[..., ServerThread],
) -> None:
    gateway = start_gateway(dev_issuer_enabled=False)
    response = httpx.post(
        f"{gateway.url}/api/v1/auth/token",
        json={"username": "admin", "password": devauth.DEV_PASSWORD},
        trust_env=False,
    )
    assert_problem(response, 404)


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/customers", "/api/v1/admin/rating/status"])
def test_token_required(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    body = assert_problem(response, 401)
    assert body["detail"] == "a bearer token is required"
    assert response.headers["www-authenticate"] == "Bearer"


def test_invalid_token_rejected_at_gateway(client: httpx.Client) -> None:
    response = client.get("/api/v1/customers", headers={"Authorization": "Bearer not-a-jwt"})
    body = assert_problem(response, 401)
    assert str(body["detail"]).startswith("the token is not valid")


# -- proxying ----------------------------------------------------------------------------------


def test_create_then_read_customer_through_gateway(client: httpx.Client) -> None:
    headers = login(client, "manager.li")
    created = client.post("/api/v1/customers", json=NEW_CUSTOMER, headers=headers)
    assert created.status_code == 201, created.text
    customer = created.json()
    assert customer["name"] == "Zhang San"

    read = client.get(f"/api/v1/customers/{customer['id']}", headers=headers)
    assert read.status_code == 200
    assert read.json() == customer

    page = client.get("/api/v1/customers", params={"limit": 5, "offset": 0}, headers=headers)
    assert page.status_code == 200
    assert page.json()["limit"] == 5
    assert [c["id"] for c in page.json()["items"]] == [customer["id"]]


def test_upstream_problems_pass_through(client: httpx.Client, auth_header) -> None:
    response = client.post(
        "/api/v1/customers", json={**NEW_CUSTOMER, "kind": "alien"}, headers=auth_header()
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "kind"  # type: ignore[index]


def test_admin_route_reaches_its_service(client: httpx.Client, auth_header) -> None:
    response = client.get("/api/v1/admin/customer/status", headers=auth_header("admin"))
    assert response.status_code == 200, response.text
    assert response.json()["service"] == "customer"


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing", "/api/v1/customersX", "/api/v1/admin/billing/status", "/nope"]
)
def test_unknown_route_is_404_problem(client: httpx.Client, auth_header, path: str) -> None:
    body = assert_problem(client.get(path, headers=auth_header()), 404)
    assert body["instance"] == path


def test_dot_segments_are_not_forwarded(gateway: ServerThread, auth_header) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    connection.request("GET", "/api/v1/customers/../admin/customer/status", headers=auth_header())
    response = connection.getresponse()
    assert response.status == 404
    assert response.getheader("content-type", "").startswith(PROBLEM_JSON)
    connection.close()


def test_method_not_allowed_on_gateway_routes(client: httpx.Client, auth_header) -> None:
    assert_problem(client.post("/api/v1/me", headers=auth_header()), 405)


# -- upstream failures -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_upstream_down_is_503_naming_it(
    start_gateway: Callable[..., ServerThread], auth_header, method: str
) -> None:
    gateway = start_gateway()
    response = httpx.request(
        method,
        f"{gateway.url}/api/v1/customers",
        json=NEW_CUSTOMER if method == "POST" else None,
        headers=auth_header(),
        trust_env=False,
    )
    body = assert_problem(response, 503)
    assert body["upstream"] == "customer"
    assert "customer" in str(body["detail"])


@pytest.fixture
def silent_upstream() -> Iterator[str]:
    """An address that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_upstream_timeout_is_504(
    start_gateway: Callable[..., ServerThread], silent_upstream: str, auth_header
) -> None:
    gateway = start_gateway(upstream_rating=silent_upstream, upstream_timeout_s=0.5)
    response = httpx.get(f"{gateway.url}/api/v1/ratings/r1", headers=auth_header(), trust_env=False)
    body = assert_problem(response, 504)
    assert body["upstream"] == "rating"


# -- request and correlation ids ---------------------------------------------------------------


def test_request_id_reaches_the_upstream(client: httpx.Client, auth_header) -> None:
    headers = {**auth_header(), "x-request-id": "req-gw-1", "x-correlation-id": "corr-gw-1"}
    response = client.get("/api/v1/customers/no-such-customer", headers=headers)
    body = assert_problem(response, 404)
    assert body["request_id"] == "req-gw-1"  # set by the customer service from what it got
    assert response.headers.get_list("x-request-id") == ["req-gw-1"]
    assert response.headers.get_list("x-correlation-id") == ["corr-gw-1"]


def test_generated_request_id_is_sent_upstream(client: httpx.Client, auth_header) -> None:
    response = client.get("/api/v1/customers/no-such-customer", headers=auth_header())
    body = assert_problem(response, 404)
    assert body["request_id"] == response.headers["x-request-id"]


# -- public endpoints --------------------------------------------------------------------------


def test_health_metrics_and_docs(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "service": "gateway"}
    client.get("/api/v1/me")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'crm_http_requests_total{method="GET",route="/api/v1/me",service="gateway"' in (
        metrics.text
    )
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/api/v1/openapi.json" in docs.text
    assert client.get("/api/v1/gateway/openapi.json").json()["info"]["title"] == (
        "Bank CRM gateway"
    )
    assert_problem(client.get("/openapi.json"), 404)
