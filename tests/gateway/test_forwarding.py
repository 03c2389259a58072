"""What the gateway sends upstream and relays back, seen by a generic echo upstream.

The echo app stands in for no service of ours: it only reports the request it received, so the
headers, path, query and body the gateway forwards can be checked exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.proxy import UpstreamUnavailableError, send_upstream
from tests.gateway.conftest import ServerThread


async def echo(request: Request) -> Response:
    body = await request.body()
    report = {
        "method": request.method,
        "raw_path": request.scope["raw_path"].decode(),
        "query": request.scope["query_string"].decode(),
        "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
        "body": body.decode(),
    }
    response = Response(json.dumps(report), media_type="application/json")
    response.headers.append("set-cookie", "a=1")
    response.headers.append("set-cookie", "b=2")
    response.headers["x-request-id"] = "echo-own-id"
    response.headers["x-upstream"] = "echo"
    return response


ECHO = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "DELETE"])])


@pytest.fixture
def echo_gateway(
    serve: Callable[[Starlette], ServerThread], start_gateway: Callable[..., ServerThread]
) -> ServerThread:
    """A gateway whose notify upstream is the echo app."""
    return start_gateway(upstream_notify=serve(ECHO).url)


def headers_of(report: dict[str, object]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in report["headers"]:  # type: ignore[attr-defined]
        out.setdefault(name, []).append(value)
    return out


def test_request_forwarded_end_to_end(echo_gateway: ServerThread, auth_header) -> None:
    headers = {
        **auth_header(),
        "x-request-id": "rid-echo",
        "x-correlation-id": "cid-echo",
        "x-forwarded-for": "203.0.113.9, 10.0.0.7",
        "connection": "keep-alive, x-hop",
        "x-hop": "dropped",
        "keep-alive": "timeout=5",
        "proxy-authorization": "Basic c2VjcmV0",
        "x-custom": "kept",
    }
    response = httpx.post(
        f"{echo_gateway.url}/api/v1/messages/a%2Fb/send?to=1&to=2&q=%E4%BD%A0",
        content=b'{"text": "hello"}',
        headers=headers,
        trust_env=False,
    )
    assert response.status_code == 200
    report = response.json()
    assert report["method"] == "POST"
    assert report["raw_path"] == "/api/v1/messages/a%2Fb/send"
    assert report["query"] == "to=1&to=2&q=%E4%BD%A0"
    assert report["body"] == '{"text": "hello"}'
    sent = headers_of(report)
    assert sent["authorization"] == [headers["Authorization"]]
    assert sent["x-request-id"] == ["rid-echo"]
    assert sent["x-correlation-id"] == ["cid-echo"]
    # uvicorn trusts the loopback peer as a proxy: the caller is the chain's last address.
    assert sent["x-forwarded-for"] == ["203.0.113.9, 10.0.0.7"]
    assert sent["x-custom"] == ["kept"]
    assert sent["content-length"] == ["17"]
    assert sent["host"] != [echo_gateway.url.removeprefix("http://")]
    assert not {"x-hop", "keep-alive", "proxy-authorization"} & set(sent)


def test_response_relayed(echo_gateway: ServerThread, auth_header) -> None:
    response = httpx.get(
        f"{echo_gateway.url}/api/v1/templates",
        headers={**auth_header(), "x-request-id": "rid-2"},
        trust_env=False,
    )
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.headers["x-upstream"] == "echo"
    assert response.headers.get_list("x-request-id") == ["rid-2"]
    assert len(response.headers.get_list("server")) <= 1
    sent = headers_of(response.json())
    assert sent["x-forwarded-for"] == ["127.0.0.1"]
    assert sent["x-forwarded-proto"] == ["http"]
    assert "content-length" not in sent and "transfer-encoding" not in sent


class FlakyTransport(httpx.AsyncBaseTransport):
    """Refuses the first ``failures`` connections, then answers 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, content=b"ok")


@pytest.mark.parametrize(
    ("method", "failures", "attempts", "ok"),
    [("GET", 1, 2, True), ("GET", 2, 2, False), ("POST", 1, 1, False), ("OPTIONS", 1, 2, True)],
)
def test_retry_once_on_connect_errors_for_safe_methods(
    method: str, failures: int, attempts: int, ok: bool
) -> None:
    transport = FlakyTransport(failures)
    outcome = asyncio.run(attempt(transport, method))
    assert outcome == ("ok" if ok else "rating unavailable")
    assert transport.attempts == attempts


async def attempt(transport: httpx.AsyncBaseTransport, method: str) -> str:
    async with httpx.AsyncClient(transport=transport) as client:
        request = client.build_request(method, "http://rating.invalid/api/v1/ratings")
        retry = method in {"GET", "HEAD", "OPTIONS"}
        try:
            response = await send_upstream(client, request, "rating", retry=retry)
        except UpstreamUnavailableError as exc:
            return f"{exc.extensions['upstream']} unavailable"
        await response.aread()
        await response.aclose()
        return response.text


def test_chunked_upload_and_large_body_streamed(echo_gateway: ServerThread, auth_header) -> None:
    chunks = [bytes([65 + i % 26]) * 16384 for i in range(64)]
    response = httpx.post(
        f"{echo_gateway.url}/api/v1/campaigns/c1/recipients",
        content=iter(chunks),
        headers=auth_header(),
        trust_env=False,
    )
    assert response.status_code == 200
    report = response.json()
    assert report["body"].encode() == b"".join(chunks)
    assert "chunked" in headers_of(report)["transfer-encoding"]


def test_head_relayed_without_body(echo_gateway: ServerThread, auth_header) -> None:
    response = httpx.head(
        f"{echo_gateway.url}/api/v1/consents/c1", headers=auth_header(), trust_env=False
    )
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0
