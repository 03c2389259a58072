"""Domain errors and their one mapping to RFC 9457 problem+json.

Every error leaving any service or the gateway has the same shape::

    {"type": "urn:crm:problem:validation", "title": "...", "status": 422, "detail": "...",
     "instance": "/api/v1/...", "request_id": "...", "errors": [{"field": "...", "reason": "..."}]}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from crmkit import context

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:crm:problem:"


class DomainError(Exception):
    """Base of the errors a use case raises; each carries its HTTP status and problem type."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class ValidationFailed(DomainError):
    status, slug, title = 422, "validation", "The request is not valid"


class PreconditionRequired(DomainError):
    status, slug, title = 428, "precondition-required", "Precondition required"


class PolicyViolation(DomainError):
    status, slug, title = 422, "policy-violation", "The request breaks a bank policy"


class TooManyRequests(DomainError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "unavailable", "Service unavailable"


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation", "The request is not valid"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal", "Internal error"),
    502: ("bad-gateway", "Bad gateway"),
    503: ("unavailable", "Service unavailable"),
    504: ("timeout", "Upstream timed out"),
}


def problem(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response."""
    default_slug, default_title = _STATUS_SLUGS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    rid = context.request_id.get()
    if rid:
        body["request_id"] = rid
    if errors is not None:
        body["errors"] = errors
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{field, reason, location}``: the field path without its location."""
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "body"
        path = loc[1:] if loc and loc[0] in {"body", "query", "path", "header", "cookie"} else loc
        out.append(
            {
                "field": ".".join(path) or where,
                "reason": err.get("msg", "invalid"),
                "location": where,
            }
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Map every error path of an app to problem+json."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(
            exc.status,
            exc.detail,
            instance=request.url.path,
            slug=exc.slug,
            title=exc.title,
            errors=exc.errors,
            headers=exc.headers,
            **exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(
            422,
            "One or more fields are not valid.",
            instance=request.url.path,
            errors=field_errors(exc),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No resource at {request.url.path}."
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        return problem(
            exc.status_code, detail, instance=request.url.path, headers=dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500, "An internal error occurred; it has been logged.", instance=request.url.path
        )
