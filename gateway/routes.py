"""The route table: which service owns which path prefix under ``/api/v1``.

A prefix matches whole path segments only: ``/api/v1/customers`` owns ``/api/v1/customers`` and
``/api/v1/customers/...`` but not ``/api/v1/customersX``. A ``*`` segment matches any one segment,
so that a service can own a sub-resource of another's resource (``customers/*/owner``); those
routes are tried first, then longer prefixes before shorter ones (``leads/areas`` before
``leads``). Each service also owns its operations routes under
``/api/v1/admin/<service>``.
"""

from __future__ import annotations

API_PREFIX = "/api/v1"

SERVICES: tuple[str, ...] = ("customer", "rating", "assignment", "visits", "notify")

RESOURCES: dict[str, tuple[str, ...]] = {
    "customer": ("customers", "reports/segmentation", "reports/register"),
    "rating": (
        "customers/*/ratings",
        "customers/*/credit-limits",
        "customers/*/risk",
        "scorecards",
        "ratings",
        "credit-limits",
        "rating-campaigns",
        "risk-flags",
        "risk-watchlist",
    ),
    "assignment": (
        "customers/*/owner",
        "customers/*/owner-history",
        "assignments",
        "assignment-runs",
        "claims",
        "spot-checks",
        "target-lists",
        "reports/responsibility",
        "reports/lead-funnel",
        "reports/maintainers",
        "upgrade-proposals",
        "org-units",
        "staff",
        "ownerships",
        "teams",
        "leads/areas",
        "handovers",
    ),
    "visits": (
        "customers/*/visits",
        "customers/*/care",
        "staff/*/agenda",
        "staff/*/day-plans",
        "visits",
        "visit-plans",
        "service-plans",
        "followups",
        "enquiries",
        "appointments",
        "complaints",
        "surveys",
        "leads",
        "marketing-events",
        "reports/visits",
        "reports/activity",
        "reports/teller-register",
        "reports/complaints",
    ),
    "notify": ("messages", "templates", "consents", "campaigns"),
}


def route_table() -> list[tuple[str, str]]:
    """Every ``(path prefix, service)`` pair the gateway proxies, resource routes first."""
    table = [
        (f"{API_PREFIX}/{resource}", service)
        for service, resources in RESOURCES.items()
        for resource in resources
    ]
    # Sub-resources before their resource, and longer prefixes before shorter ones.
    table.sort(key=lambda route: ("*" not in route[0], -route[0].count("/")))
    table += [(f"{API_PREFIX}/admin/{service}", service) for service in SERVICES]
    return table


ROUTES: tuple[tuple[str, str], ...] = tuple(route_table())


def prefix_matches(prefix: str, path: str) -> bool:
    """True when ``path`` is ``prefix`` itself or lies below it (whole segments only; a ``*``
    segment of the prefix matches any one segment)."""
    if "*" not in prefix:
        return path == prefix or path.startswith(prefix + "/")
    wanted = prefix.split("/")
    parts = path.split("/")
    if len(parts) < len(wanted):
        return False
    return all((w == "*" and p != "") or w == p for w, p in zip(wanted, parts, strict=False))


def resolve(path: str) -> str | None:
    """The service owning ``path``, or None when no route matches."""
    for prefix, service in ROUTES:
        if prefix_matches(prefix, path):
            return service
    return None
