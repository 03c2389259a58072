"""Forwarding a request to the service that owns it and streaming the answer back.

One shared ``httpx.AsyncClient`` (created in the app's lifespan) carries every upstream call. The
request keeps its method, raw path, query, body and end-to-end headers; hop-by-hop headers and
``host`` are dropped, the request and correlation ids of the gateway's context are sent on and
``x-forwarded-*`` headers are added. A request that could not even reach its service is retried
once when its method is safe (GET, HEAD, OPTIONS).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated

import anyio
import httpx
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from crmkit import context
from crmkit.auth import get_caller
from crmkit.errors import DomainError, NotFound, ServiceUnavailable
from crmkit.http import CORRELATION_HEADER, REQUEST_ID_HEADER
from gateway.routes import ROUTES
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "trailers", "upgrade"}
)
# Replaced by the gateway's own values rather than copied.
REQUEST_REPLACED = frozenset({"host", REQUEST_ID_HEADER, CORRELATION_HEADER, "x-forwarded-for"})
# The gateway's server and its context middleware set these on the way out.
RESPONSE_REPLACED = frozenset({"date", "server", REQUEST_ID_HEADER, CORRELATION_HEADER})
PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READY, NOT_READY, UNREACHABLE = "ready", "not ready", "unreachable"


class UpstreamUnavailableError(ServiceUnavailable):
    """The owning service could not be reached (connection refused, connect timeout)."""


class UpstreamTimeoutError(DomainError):
    """The owning service accepted the request but did not answer in time."""

    status, slug, title = 504, "timeout", "Upstream timed out"


class BadGatewayError(DomainError):
    """The owning service broke off the exchange or answered something that is not HTTP."""

    status, slug, title = 502, "bad-gateway", "Bad gateway"


def new_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """The shared upstream client: pooled connections, timeouts, no environment proxies."""
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.upstream_timeout_s, connect=settings.upstream_connect_timeout_s
        ),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_keepalive,
        ),
        follow_redirects=False,
        trust_env=False,
    )
    # Pass the caller's own values through: no compression or agent the caller did not ask for.
    del client.headers["accept-encoding"]
    del client.headers["user-agent"]
    return client


def get_client(request: Request) -> httpx.AsyncClient:
    """The shared upstream client of the running app."""
    client: httpx.AsyncClient = request.app.state.http
    return client


ClientDep = Annotated[httpx.AsyncClient, Depends(get_client)]


def context_headers() -> dict[str, str]:
    """The request and correlation ids of the work in hand, as headers for an upstream call."""
    headers: dict[str, str] = {}
    rid, cid = context.request_id.get(), context.correlation_id.get()
    if rid:
        headers[REQUEST_ID_HEADER] = rid
    if cid:
        headers[CORRELATION_HEADER] = cid
    return headers


def _connection_tokens(headers: Mapping[str, str]) -> set[str]:
    """Header names the ``Connection`` header declares hop-by-hop (RFC 9110 §7.6.1)."""
    value = headers.get("connection", "")
    return {token.strip().lower() for token in value.split(",") if token.strip()}


def _is_hop_by_hop(name: str, extra: set[str]) -> bool:
    return name in HOP_BY_HOP or name in extra or name.startswith("proxy-")


def forward_headers(request: Request) -> list[tuple[str, str]]:
    """The headers sent upstream: end-to-end ones, context ids and ``x-forwarded-*``."""
    extra = _connection_tokens(request.headers)
    headers = [
        (name, value)
        for name, value in request.headers.items()
        if not _is_hop_by_hop(name, extra) and name not in REQUEST_REPLACED
    ]
    headers.extend(context_headers().items())
    chain = forwarded_for(request)
    if chain:
        headers.append(("x-forwarded-for", chain))
    if "x-forwarded-proto" not in request.headers:
        headers.append(("x-forwarded-proto", request.url.scheme))
    if "x-forwarded-host" not in request.headers and "host" in request.headers:
        headers.append(("x-forwarded-host", request.headers["host"]))
    return headers


def forwarded_for(request: Request) -> str:
    """The ``x-forwarded-for`` chain with the caller's address appended.

    A server that trusts its peer as a proxy (uvicorn's ``--forwarded-allow-ips``) already took
    the caller's address from the end of the chain; it is not appended twice.
    """
    chain = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    client_host = request.client.host if request.client else None
    if client_host and (not chain or chain[-1] != client_host):
        chain.append(client_host)
    return ", ".join(chain)


def upstream_url(base_url: str, request: Request) -> str:
    """The upstream address of the request: its raw (still encoded) path and query string."""
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    url = base_url + raw_path.decode("latin-1")
    query: bytes = request.scope.get("query_string", b"")
    return f"{url}?{query.decode('latin-1')}" if query else url


async def request_body(request: Request, *, buffered: bool) -> bytes | AsyncIterator[bytes] | None:
    """The body to send on: None without one, bytes when it may be resent, else a stream."""
    if "content-length" not in request.headers and "transfer-encoding" not in request.headers:
        return None
    if buffered:
        return await request.body()
    return request.stream()


def upstream_error(exc: httpx.TransportError, service: str) -> DomainError:
    """The problem the caller gets when the exchange with ``service`` failed."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return UpstreamUnavailableError(
            f"The {service} service is not reachable.", upstream=service
        )
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeoutError(
            f"The {service} service did not answer in time.", upstream=service
        )
    return BadGatewayError(f"The {service} service broke off the exchange.", upstream=service)


async def send_upstream(
    client: httpx.AsyncClient, upstream_request: httpx.Request, service: str, *, retry: bool
) -> httpx.Response:
    """Send and return the response with its body still unread; retry once on connect errors."""
    attempts = 2 if retry else 1
    for attempt in range(1, attempts + 1):
        try:
            return await client.send(upstream_request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if attempt < attempts:
                log.info("retrying %s after a connect error", service, extra={"upstream": service})
                continue
            raise _logged(upstream_error(exc, service), exc, upstream_request) from exc
        except httpx.TransportError as exc:
            raise _logged(upstream_error(exc, service), exc, upstream_request) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _logged(error: DomainError, exc: Exception, upstream_request: httpx.Request) -> DomainError:
    log.warning(
        "upstream call failed: %s %s: %r",
        upstream_request.method,
        upstream_request.url,
        exc,
        extra={"upstream": error.extensions.get("upstream"), "status": error.status},
    )
    return error


def response_headers(upstream: httpx.Response) -> list[tuple[bytes, bytes]]:
    """The upstream's end-to-end response headers, every value kept (``set-cookie``)."""
    extra = _connection_tokens(upstream.headers)
    out: list[tuple[bytes, bytes]] = []
    for raw_name, raw_value in upstream.headers.raw:
        name = raw_name.decode("latin-1").lower()
        if not _is_hop_by_hop(name, extra) and name not in RESPONSE_REPLACED:
            out.append((name.encode("latin-1"), raw_value))
    return out


async def _close(upstream: httpx.Response) -> None:
    with anyio.CancelScope(shield=True):
        await upstream.aclose()


async def relay_body(upstream: httpx.Response, service: str) -> AsyncIterator[bytes]:
    """The upstream body as it arrives, undecoded; the upstream response is closed at the end."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.TransportError:
        log.warning("upstream %s broke off its response", service, extra={"upstream": service})
        raise
    finally:
        await _close(upstream)


def stream_back(upstream: httpx.Response, service: str) -> StreamingResponse:
    """A response relaying the upstream's status, headers and body."""
    response = StreamingResponse(
        relay_body(upstream, service),
        status_code=upstream.status_code,
        background=BackgroundTask(_close, upstream),
    )
    response.raw_headers = response_headers(upstream)
    return response


def _reject_dot_segments(path: str) -> None:
    if any(segment in {".", ".."} for segment in path.split("/")):
        raise NotFound(f"No resource at {path}.")


async def forward(
    request: Request, service: str, base_url: str, client: httpx.AsyncClient
) -> Response:
    """Forward ``request`` to ``service`` at ``base_url`` and stream its answer back."""
    _reject_dot_segments(request.url.path)
    retry = request.method in RETRYABLE_METHODS
    upstream_request = client.build_request(
        request.method,
        upstream_url(base_url, request),
        headers=forward_headers(request),
        content=await request_body(request, buffered=retry),
    )
    upstream = await send_upstream(client, upstream_request, service, retry=retry)
    return stream_back(upstream, service)


ProxyEndpoint = Callable[[Request, httpx.AsyncClient], Awaitable[Response]]


def _endpoint(service: str, base_url: str) -> ProxyEndpoint:
    async def proxy(request: Request, client: ClientDep) -> Response:
        return await forward(request, service, base_url, client)

    proxy.__doc__ = f"Forward the request to the {service} service."
    return proxy


def proxy_router(upstreams: Mapping[str, str]) -> APIRouter:
    """Routes for every prefix of the route table; the caller's token is verified first."""
    router = APIRouter(dependencies=[Depends(get_caller)])
    for prefix, service in ROUTES:
        endpoint = _endpoint(service, upstreams[service])
        for path in (prefix, prefix + "/{rest:path}"):
            router.add_api_route(
                path,
                endpoint,
                methods=PROXY_METHODS,
                include_in_schema=False,
                name=f"proxy-{service}",
            )
    return router


async def probe(client: httpx.AsyncClient, base_url: str, timeout_s: float) -> str:
    """Readiness of one upstream: ready, not ready (other answer, or none in time), unreachable."""
    try:
        response = await client.get(
            f"{base_url}/readyz", timeout=timeout_s, headers=context_headers()
        )
    except (httpx.ConnectError, httpx.ConnectTimeout):
        return UNREACHABLE
    except httpx.HTTPError:
        return NOT_READY
    return READY if response.status_code == 200 else NOT_READY


async def probe_all(
    client: httpx.AsyncClient, upstreams: Mapping[str, str], timeout_s: float
) -> dict[str, str]:
    """Readiness of every upstream, probed in parallel."""
    states = await asyncio.gather(*(probe(client, url, timeout_s) for url in upstreams.values()))
    return dict(zip(upstreams, states, strict=True))
