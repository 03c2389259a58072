"""Per-request and per-event context carried through logs, HTTP calls and events."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
# The id of the event being handled: events recorded while handling it name it as their cause.
causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)
