"""Re-rating 重新评级: a rated customer's new figures, status or guarantees propose a new
assessment (without piling up proposals on unchanged figures), and the yearly sweep proposes one
for every grade past its date, once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from crmkit.clock import business_today
from services.customer.events import CUSTOMER_UPDATED
from services.rating import rerating
from services.rating.models import Assessment
from tests.customer.conftest import Api
from tests.rating.conftest import (
    deliver,
    events_of,
    financials,
    known_customer,
    runtime_of,
    status_changed,
)

RATINGS = "/api/v1/ratings"

# The individual card with every manual factor entered; core banking says 60,000 deposits and
# no loans:
#   annual_income 100000     → 60,000 to below 120,000       9
#   net_assets 500000        → 300,000 to below 800,000      9
#   debt_ratio 35            → 30% to below 50%              7
#   deposit_balance 60000.00 → 50,000 to below 200,000       6  (system)
#   repayment_record         → no loans: no_history          6  (system)
#   character good                                          11
#   work_experience 7        → 5 to below 10 years           6
#   family stable                                            9
#   bank_relationship core                                   8
#   total 71 → A. With 600,000 deposits (500,000 and above: 10) it is 71 - 6 + 10 = 75 → A.
INDIVIDUAL_INPUTS: dict[str, Any] = {
    "annual_income": "100000",
    "net_assets": "500000",
    "debt_ratio": "35",
    "character": "good",
    "work_experience": 7,
    "family": "stable",
    "bank_relationship": "core",
}


def assess(api: Api, customer_id: str) -> dict[str, Any]:
    resp = api.as_("manager.li").post(
        RATINGS, json={"customer_id": customer_id, "inputs": INDIVIDUAL_INPUTS}
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def decide(api: Api, assessment_id: str, decision: str = "confirm", **extra: Any) -> None:
    resp = api.as_("approver.qian").post(
        f"{RATINGS}/{assessment_id}/confirm", json={"decision": decision, **extra}
    )
    assert resp.status_code == 200, resp.text


def rated(api: Api) -> str:
    """A customer of manager.li with 60,000 deposits and a confirmed grade A (71.00)."""
    customer_id = known_customer(api)
    financials(api, customer_id, "2026-11-27", deposits="60000.00")
    decide(api, assess(api, customer_id)["id"])
    return customer_id


def history(api: Api, customer_id: str) -> list[Assessment]:
    """The customer's assessments, oldest first."""
    with runtime_of(api).session_factory() as session:
        return list(
            session.scalars(
                select(Assessment)
                .where(Assessment.customer_id == customer_id)
                .order_by(Assessment.assessed_at, Assessment.id)
            ).all()
        )


def automatic(api: Api, customer_id: str) -> list[Assessment]:
    return [a for a in history(api, customer_id) if a.assessed_by == "system"]


def closed(api: Api, customer_id: str) -> None:
    """The customer service closes the customer: its copy, then the status change."""
    deliver(
        api,
        CUSTOMER_UPDATED,
        {
            "customer_id": customer_id,
            "kind": "individual",
            "name": "Zhang San",
            "org_unit": "/HQ/U01/B01",
            "business_line": "personal",
            "status": "closed",
            "segment": "stock",
            "changed": ["status"],
        },
        key=customer_id,
        actor="manager.li",
    )
    status_changed(api, customer_id, "active", "closed")


def test_a_new_snapshot_proposes_a_new_assessment_for_a_rated_customer(api: Api) -> None:
    customer_id = rated(api)
    financials(api, customer_id, "2026-11-28", deposits="600000.00")
    (proposal,) = automatic(api, customer_id)
    assert (proposal.trigger, proposal.status) == ("financials", "assessed")
    assert (proposal.score, proposal.computed_grade) == (Decimal("75.00"), "A")
    # The manager's entries carried over; the figure is the new one.
    assert proposal.inputs["character"] == "good" and proposal.inputs["annual_income"] == "100000"
    assert proposal.inputs["deposit_balance"] == "600000.00"
    event = events_of(api, "rating.assessed")[-1]
    assert (event["assessment_id"], event["trigger"], event["score"]) == (
        proposal.id,
        "financials",
        "75.00",
    )
    # The grade in force stays until an approver confirms the proposal.
    assert [a.status for a in history(api, customer_id)] == ["confirmed", "assessed"]


def test_an_unrated_customer_is_not_re_rated(api: Api) -> None:
    never = known_customer(api)
    financials(api, never, "2026-11-27", deposits="60000.00")
    financials(api, never, "2026-11-28", deposits="600000.00")
    assert history(api, never) == []
    # An assessment waiting for its approver is no grade either.
    waiting = known_customer(api)
    financials(api, waiting, "2026-11-27", deposits="60000.00")
    assess(api, waiting)
    financials(api, waiting, "2026-11-28", deposits="600000.00")
    assert [a.assessed_by for a in history(api, waiting)] == ["manager.li"]


def test_unchanged_figures_pile_up_no_proposals(api: Api) -> None:
    customer_id = rated(api)
    # Another day in the same deposit bin: the score would not move.
    financials(api, customer_id, "2026-11-28", deposits="61000.00", loans="0.00")
    assert automatic(api, customer_id) == []
    financials(api, customer_id, "2026-11-29", deposits="600000.00")
    financials(api, customer_id, "2026-11-30", deposits="650000.00")  # same bin as yesterday
    financials(api, customer_id, "2026-12-01", deposits="700000.00")
    (proposal,) = automatic(api, customer_id)
    assert proposal.status == "assessed" and proposal.score == Decimal("75.00")
    # Back to the old bin: the open proposal is stale and is replaced.
    financials(api, customer_id, "2026-12-02", deposits="60000.00")
    stale, fresh = automatic(api, customer_id)
    assert (stale.status, fresh.status, fresh.score) == ("superseded", "assessed", Decimal("71"))


def test_a_staff_members_open_assessment_is_not_superseded_by_new_figures(api: Api) -> None:
    customer_id = rated(api)
    mine = assess(api, customer_id)
    financials(api, customer_id, "2026-11-28", deposits="600000.00")
    assert automatic(api, customer_id) == []
    assert history(api, customer_id)[-1].id == mine["id"]
    decide(api, mine["id"])  # confirmed at 71 with yesterday's figures
    financials(api, customer_id, "2026-11-29", deposits="610000.00")
    (proposal,) = automatic(api, customer_id)
    assert proposal.score == Decimal("75.00")


def test_a_status_change_proposes_a_review_whatever_the_score(api: Api) -> None:
    customer_id = rated(api)
    status_changed(api, customer_id, "active", "dormant")
    (proposal,) = automatic(api, customer_id)
    assert (proposal.trigger, proposal.score, proposal.status) == (
        "status",
        Decimal("71.00"),
        "assessed",
    )
    # A second change while that review is open adds nothing.
    status_changed(api, customer_id, "dormant", "active")
    assert len(automatic(api, customer_id)) == 1


def test_a_closed_customer_is_reviewed_once_and_then_left(api: Api) -> None:
    customer_id = rated(api)
    closed(api, customer_id)
    (review,) = automatic(api, customer_id)
    assert review.trigger == "status"
    decide(api, review.id, "reject", note="closed: the limit is withdrawn")
    financials(api, customer_id, "2026-11-28", deposits="600000.00")
    assert len(automatic(api, customer_id)) == 1


def test_changed_guarantees_propose_a_review(api: Api) -> None:
    customer_id = rated(api)
    runtime = runtime_of(api)
    with runtime.session_factory() as session:
        rerating.on_inputs_changed(session, customer_id, "guarantees")
        session.commit()
    (review,) = automatic(api, customer_id)
    assert (review.trigger, review.score) == ("guarantees", Decimal("71.00"))


def _expire(api: Api, customer_id: str, days_ago: int = 1) -> None:
    """The customer's confirmed grade held until ``days_ago`` days ago."""
    past = business_today() - timedelta(days=days_ago)
    with runtime_of(api).session_factory() as session:
        session.execute(
            update(Assessment)
            .where(Assessment.customer_id == customer_id, Assessment.status == "confirmed")
            .values(valid_until=past)
        )
        session.commit()


def test_the_yearly_sweep_proposes_once_per_grade_past_its_date(api: Api) -> None:
    runtime = runtime_of(api)
    due, valid, busy, gone = rated(api), rated(api), rated(api), rated(api)
    for customer_id in (due, busy, gone):
        _expire(api, customer_id)
    assess(api, busy)  # an assessment is open already
    closed(api, gone)  # reviewed on closing; not re-rated yearly
    assert rerating.sweep_yearly(runtime, chunk_size=1) == 1
    (yearly,) = [a for a in automatic(api, due) if a.trigger == "yearly"]
    assert (yearly.status, yearly.score, yearly.inputs["family"]) == (
        "assessed",
        Decimal("71.00"),
        "stable",
    )
    assert automatic(api, valid) == [] and automatic(api, busy) == []
    assert [a.trigger for a in automatic(api, gone)] == ["status"]
    # Idempotent: a second sweep, or one after the proposal was rejected, proposes nothing.
    assert rerating.sweep_yearly(runtime) == 0
    decide(api, yearly.id, "reject", note="figures under review")
    assert rerating.sweep_yearly(runtime) == 0
    assert len(automatic(api, due)) == 1
    # A new grade confirmed and past its date in turn is due again.
    decide(api, assess(api, due)["id"])
    _expire(api, due)
    assert rerating.sweep_yearly(runtime) == 1
