"""The gateway application: ``uvicorn --factory gateway.app:create_app``.

Public: ``/healthz``, ``/readyz`` (every upstream ready), ``/metrics``, ``/docs`` and
``/api/v1/openapi.json`` (the merged document), and ``POST /api/v1/auth/token`` while the
development issuer is enabled. Everything else under ``/api/v1`` needs a bearer token: ``/me``
answers from the token, the rest is proxied to the owning service by the route table.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from crmkit.auth import verifier_from_settings
from crmkit.errors import install_error_handlers, problem
from crmkit.http import RequestContextMiddleware
from crmkit.logs import configure_logging
from gateway.auth import DevIssuer, dev_issuer_router, me_router
from gateway.openapi import GATEWAY, docs_router
from gateway.proxy import READY, get_client, new_client, probe_all, proxy_router
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _lifespan(settings: GatewaySettings) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(GATEWAY, settings.log_level, settings.log_json)
        app.state.http = new_client(settings)
        log.info("gateway started", extra={"upstreams": settings.upstreams()})
        try:
            yield
        finally:
            await app.state.http.aclose()

    return lifespan


def health_router(settings: GatewaySettings) -> APIRouter:
    """Liveness, readiness over every upstream, and Prometheus metrics (all public)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": GATEWAY}

    @router.get("/readyz", summary="Readiness: every upstream service is ready")
    async def readyz(request: Request) -> Response:
        states = await probe_all(
            get_client(request), settings.upstreams(), settings.probe_timeout_s
        )
        all_ready = all(state == READY for state in states.values())
        if all_ready or not settings.readiness_requires_all_upstreams:
            status = "ready" if all_ready else "degraded"
            return JSONResponse({"status": status, "upstreams": states})
        down = ", ".join(f"{name} ({state})" for name, state in states.items() if state != READY)
        return problem(503, f"Not ready: {down}", instance=request.url.path, upstreams=states)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app; settings from the environment unless given."""
    settings = settings or GatewaySettings()
    app = FastAPI(
        title="Bank CRM gateway",
        description="The front door of the bank CRM suite.",
        version="1.0.0",
        lifespan=_lifespan(settings),
        openapi_url="/api/v1/gateway/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.token_verifier = verifier_from_settings(settings)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=GATEWAY)
    app.include_router(health_router(settings))
    app.include_router(docs_router(settings))
    if settings.dev_issuer_enabled:
        issuer = DevIssuer(settings.dev_issuer_key_file, settings.dev_token_ttl_s)
        app.include_router(dev_issuer_router(issuer))
    app.include_router(me_router())
    app.include_router(proxy_router(settings.upstreams()))
    return app
