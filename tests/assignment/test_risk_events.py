"""The rating service's risk flags (``risk.flagged`` / ``risk.cleared``) make a customer need a
team (the ``anomaly`` case) until no flag stays open."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from crmkit.consumer import RawRecord
from crmkit.events import EventSpec, build_envelope
from services.assignment.models import CustomerProfile
from services.rating.events import RISK_CLEARED, RISK_FLAGGED
from tests.assignment.conftest import known_customer
from tests.assignment.test_ownership import assign
from tests.customer.conftest import Api

VIOLATIONS = "/api/v1/teams/violations"
_offsets = itertools.count()


def deliver(api: Api, spec: EventSpec, data: dict[str, Any]) -> None:
    """One rating event through the service's own consumer path."""
    key = data["customer_id"]
    envelope = build_envelope(spec, data, source="rating", key=key, actor="system")
    record = RawRecord("crm.rating", 0, next(_offsets), envelope.to_bytes())
    api.client.app.state.runtime.applier.apply_batch([record])  # type: ignore[attr-defined]


def flagged(api: Api, customer_id: str, level: str, risk_status: str) -> str:
    flag_id = str(uuid.uuid4())
    deliver(
        api,
        RISK_FLAGGED,
        {
            "customer_id": customer_id,
            "flag_id": flag_id,
            "org_unit": "/HQ/U01/B01",
            "level": level,
            "source": "signal",
            "signal": "overdue",
            "reason": "Overdue 逾期 of 1200.00 on 2026-11-28",
            "flagged_by": "system",
            "risk_status": risk_status,
        },
    )
    return flag_id


def cleared(api: Api, customer_id: str, flag_id: str, risk_status: str) -> None:
    deliver(
        api,
        RISK_CLEARED,
        {
            "customer_id": customer_id,
            "flag_id": flag_id,
            "org_unit": "/HQ/U01/B01",
            "reason": "Overdue repaid",
            "cleared_by": "system",
            "risk_status": risk_status,
        },
    )


def violations(api: Api, who: str = "admin") -> dict[str, dict[str, Any]]:
    resp = api.as_(who).get(VIOLATIONS, params={"case": "anomaly"})
    assert resp.status_code == 200, resp.text
    return {v["customer_id"]: v for v in resp.json()["items"]}


def risk_flag_of(api: Api, customer_id: str) -> str | None:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        profile = session.get(CustomerProfile, customer_id)
        return profile.risk_flag if profile is not None else None


def test_a_risk_flag_requires_a_team_until_no_flag_stays_open(org: Api) -> None:
    customer_id = known_customer(org)
    assert assign(org, "admin", customer_id, "manager.li").status_code == 200
    assert customer_id not in violations(org)

    overdue = flagged(org, customer_id, "warning", "warning")
    assert risk_flag_of(org, customer_id) == "warning"
    got = violations(org)[customer_id]
    assert (got["cases"], got["missing"], got["owner"]) == (["anomaly"], ["team"], "manager.li")
    assert customer_id in violations(org, "manager.li")  # its owner sees it too
    team = org.as_("manager.li").get(f"/api/v1/teams/{customer_id}").json()
    assert (team["cases"], team["compliant"]) == (["anomaly"], False)

    # A second flag, then the first cleared while the second stays open: still required.
    manual = flagged(org, customer_id, "severe", "severe")
    cleared(org, customer_id, overdue, "severe")
    assert risk_flag_of(org, customer_id) == "severe"
    assert customer_id in violations(org)

    cleared(org, customer_id, manual, "none")
    assert risk_flag_of(org, customer_id) is None
    assert customer_id not in violations(org)
    team = org.as_("manager.li").get(f"/api/v1/teams/{customer_id}").json()
    assert team["cases"] == []


def test_a_flag_of_a_customer_not_known_yet_is_not_dropped(org: Api) -> None:
    stranger = str(uuid.uuid4())
    with pytest.raises(LookupError, match="not known"):
        flagged(org, stranger, "watch", "watch")
