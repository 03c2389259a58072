"""The FastAPI application factory every service uses, and the middleware it installs."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crmkit import context, metrics
from crmkit.auth import (
    ROLE_ADMIN,
    ROLE_OPS,
    TokenVerifier,
    get_caller,
    require_roles,
    verifier_from_settings,
)
from crmkit.consumer import replay_dead_letter
from crmkit.db import count_rows
from crmkit.errors import NotFound, install_error_handlers, problem
from crmkit.heap import freeze_startup_heap
from crmkit.logs import configure_logging
from crmkit.outbox import outbox_backlog
from crmkit.runtime import ServiceRuntime
from crmkit.schemas import DeadLetterOut, Page, ReplayResult, ServiceStatus

log = logging.getLogger(__name__)
access_log = logging.getLogger("crm.access")

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_HEADER = "x-correlation-id"
PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc")


class RequestContextMiddleware:
    """Carries request and correlation ids, logs each request as JSON and records HTTP metrics."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        rid = headers.get(REQUEST_ID_HEADER) or str(uuid.uuid4())
        cid = headers.get(CORRELATION_HEADER) or rid
        tokens = (context.request_id.set(rid), context.correlation_id.set(cid))
        started = time.perf_counter()
        status = 500
        started_response = False

        async def send_with_ids(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.encode(), rid.encode()),
                    (CORRELATION_HEADER.encode(), cid.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        except Exception:
            if started_response:
                raise
            # Answer here, where the ids are still known; nothing internal reaches the caller.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status = 500
            response = problem(
                500, "An internal error occurred; it has been logged.", instance=scope["path"]
            )
            await response(scope, receive, send_with_ids)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            metrics.HTTP_LATENCY.labels(self.service, method, template).observe(elapsed)
            if template not in PUBLIC_PATHS:
                access_log.info(
                    "%s %s %d",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "route": template,
                    },
                )
            context.request_id.reset(tokens[0])
            context.correlation_id.reset(tokens[1])


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def get_session(request: Request) -> Iterator[Session]:
    """A session for the request; use cases commit inside themselves, before the response."""
    with get_runtime(request).session_factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


def create_service_app(
    runtime: ServiceRuntime,
    routers: Sequence[APIRouter],
    *,
    title: str,
    description: str,
    verifier: TokenVerifier | None = None,
) -> FastAPI:
    """A service app: lifespan (migrations, workers), errors, auth, health, metrics, admin."""
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(runtime.name, settings.log_level, settings.log_json)
        if settings.run_migrations_on_start:
            runtime.migrate()
        if settings.embedded_workers:
            runtime.start_workers()
        else:
            freeze_startup_heap()
        log.info("service started", extra={"embedded_workers": settings.embedded_workers})
        try:
            yield
        finally:
            runtime.stop_workers()
            runtime.engine.dispose()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.token_verifier = verifier or verifier_from_settings(settings)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=runtime.name)
    app.include_router(health_router())
    authenticated = [Depends(get_caller)]
    for router in routers:
        app.include_router(router, dependencies=authenticated)
    app.include_router(admin_router(runtime.name), dependencies=authenticated)
    return app


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    def healthz(runtime: RuntimeDep) -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @router.get("/readyz", summary="Readiness: database and broker reachable")
    def readyz(runtime: RuntimeDep) -> Response:
        checks = {"database": runtime.database_ready(), "broker": runtime.broker_ready()}
        required = ["database"]
        if runtime.settings.readiness_requires_broker:
            required.append("broker")
        ready = all(checks[name] for name in required)
        body = {
            "status": "ready" if ready else "not ready",
            "service": runtime.name,
            "checks": {k: "ok" if v else "unavailable" for k, v in checks.items()},
        }
        if ready:
            return _json(body, 200)
        return problem(
            503,
            "Not ready: " + ", ".join(k for k, v in checks.items() if not v),
            checks=body["checks"],
            service=runtime.name,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def _json(body: dict[str, Any], status: int) -> Response:
    return JSONResponse(body, status_code=status)


def admin_router(service: str) -> APIRouter:
    """Operations endpoints: dead letters (list, replay) and the event pipeline's status."""
    router = APIRouter(prefix=f"/api/v1/admin/{service}", tags=["admin"])
    operator = require_roles(ROLE_ADMIN, ROLE_OPS)

    @router.get(
        "/dead-letters",
        response_model=Page[DeadLetterOut],
        dependencies=[operator],
        summary="Events this service's consumers could not apply",
    )
    def list_dead_letters(
        runtime: RuntimeDep,
        session: SessionDep,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        pending_only: bool = False,
    ) -> Page[DeadLetterOut]:
        dead = runtime.tables.dead_letters
        query = select(dead)
        if pending_only:
            query = query.where(dead.c.replayed_at.is_(None))
        total = count_rows(session, query)
        rows = session.execute(query.order_by(dead.c.id).limit(limit).offset(offset)).mappings()
        return Page[DeadLetterOut](
            items=[DeadLetterOut.model_validate(dict(r)) for r in rows],
            total=total,
            limit=limit,
            offset=offset,
        )

    @router.post(
        "/dead-letters/{dead_letter_id}/replay",
        response_model=ReplayResult,
        dependencies=[operator],
        summary="Apply a dead letter again",
    )
    def replay(dead_letter_id: int, runtime: RuntimeDep) -> ReplayResult:
        try:
            applied, outcome = replay_dead_letter(runtime.applier, dead_letter_id)
        except LookupError as exc:
            raise NotFound(f"no dead letter {dead_letter_id}") from exc
        return ReplayResult(id=dead_letter_id, applied=applied, outcome=outcome)

    @router.get(
        "/status",
        response_model=ServiceStatus,
        dependencies=[operator],
        summary="Outbox backlog, relay and consumer state",
    )
    def status(runtime: RuntimeDep) -> ServiceStatus:
        backlog, oldest = outbox_backlog(runtime.engine, runtime.tables)
        relay = runtime.relay
        return ServiceStatus(
            service=runtime.name,
            outbox_backlog=backlog,
            outbox_oldest_age_s=round(oldest, 3),
            relay_published=relay.stats.published if relay else 0,
            relay_last_error=relay.stats.last_error if relay else None,
            consumer_topics=runtime.consumer.topics if runtime.consumer else [],
            consumer_assigned=bool(runtime.consumer and runtime.consumer.ready.is_set()),
            consumer_applied=runtime.consumer.applied if runtime.consumer else 0,
        )

    return router
