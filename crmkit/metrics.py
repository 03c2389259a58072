"""Prometheus metrics of the suite, labelled by service (one process may host several in tests)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "crm_http_requests_total", "HTTP requests served", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "crm_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OUTBOX_BACKLOG = Gauge("crm_outbox_backlog", "Outbox rows not yet acknowledged", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "crm_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
OUTBOX_PUBLISHED = Counter("crm_outbox_published_total", "Outbox rows acknowledged", ["service"])
OUTBOX_REPUBLISHED = Counter(
    "crm_outbox_republished_total",
    "Rows published again after the broker came back empty",
    ["service"],
)
OUTBOX_RELAY_ERRORS = Counter("crm_outbox_relay_errors_total", "Relay loop errors", ["service"])
EVENTS_PROCESSED = Counter(
    "crm_events_processed_total", "Events applied by a consumer", ["service", "consumer", "type"]
)
EVENTS_DUPLICATE = Counter(
    "crm_events_duplicate_total", "Redelivered events skipped by the inbox", ["service", "consumer"]
)
EVENTS_FAILED = Counter(
    "crm_events_failed_total", "Failed attempts to apply an event", ["service", "consumer"]
)
EVENTS_DEAD_LETTERED = Counter(
    "crm_events_dead_lettered_total",
    "Events sent to the dead-letter topic",
    ["service", "consumer"],
)
CONSUMER_LAG = Gauge(
    "crm_consumer_lag",
    "Approximate records behind the partition end",
    ["service", "consumer", "topic"],
)
