"""The route table: whole-segment prefix matching to the owning service."""

from __future__ import annotations

import pytest

from gateway.routes import ROUTES, SERVICES, resolve


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/api/v1/customers", "customer"),
        ("/api/v1/customers/", "customer"),
        ("/api/v1/customers/c1/profile", "customer"),
        ("/api/v1/credit-limits/l1", "rating"),
        ("/api/v1/risk-flags", "rating"),
        ("/api/v1/risk-watchlist", "rating"),
        ("/api/v1/ratings/r1/confirm", "rating"),
        ("/api/v1/scorecards", "rating"),
        ("/api/v1/rating-campaigns/k1", "rating"),
        ("/api/v1/customers/c1/ratings", "rating"),
        ("/api/v1/customers/c1/credit-limits", "rating"),
        ("/api/v1/customers/c1/risk", "rating"),
        ("/api/v1/handovers/h1/accept", "assignment"),
        ("/api/v1/org-units", "assignment"),
        # A sub-resource another service owns, matched before its parent resource.
        ("/api/v1/customers/c1/owner", "assignment"),
        ("/api/v1/customers/c1/owner-history", "assignment"),
        ("/api/v1/customers/c1/ownerX", "customer"),
        ("/api/v1/customers//owner", "customer"),
        ("/api/v1/assignments", "assignment"),
        ("/api/v1/staff/s1/agenda", "visits"),
        ("/api/v1/staff/s1/day-plans/2026-11-30", "visits"),
        ("/api/v1/staff/s1", "assignment"),
        ("/api/v1/customers/c1/visits", "visits"),
        ("/api/v1/followups/overdue", "visits"),
        ("/api/v1/leads", "visits"),
        ("/api/v1/leads/l1", "visits"),
        ("/api/v1/leads/areas", "assignment"),
        ("/api/v1/leads/areas/a1", "assignment"),
        ("/api/v1/reports/visits", "visits"),
        ("/api/v1/reports/responsibility", "assignment"),
        ("/api/v1/enquiries/e1", "visits"),
        ("/api/v1/consents", "notify"),
        ("/api/v1/admin/visits/dead-letters/3/replay", "visits"),
        ("/api/v1/admin/notify", "notify"),
    ],
)
def test_owner_by_prefix(path: str, service: str) -> None:
    assert resolve(path) == service


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customersX",
        "/api/v1/customers-archive/1",
        "/api/v1/admin/customerX/status",
        "/api/v1/admin/billing",
        "/api/v1/admin",
        "/api/v1",
        "/api/v2/customers",
        "/customers",
        "/api/v1/me",
        "/api/v1/risk",
    ],
)
def test_no_owner(path: str) -> None:
    assert resolve(path) is None


def test_every_service_has_routes_and_prefixes_are_unique() -> None:
    prefixes = [prefix for prefix, _ in ROUTES]
    assert len(prefixes) == len(set(prefixes))
    assert {service for _, service in ROUTES} == set(SERVICES)
