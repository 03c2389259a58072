"""Credit-limit proposals over HTTP: the calculation on a confirmed grade, the staff adjustment
beside it, sub-limits within the total, the review deadline, the VIP pricing hint, and a
re-rating when the guarantees change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.rating.models import CreditLimitStep
from tests.customer.conftest import Api
from tests.rating.conftest import events_of, known_customer, runtime_of
from tests.rating.test_assessments import (
    INDIVIDUAL_INPUTS,
    assess,
    confirmed_assessment,
    problem,
    rated_customer,
)

LIMITS = "/api/v1/credit-limits"

HOUSE = {"type": "house", "appraised_value": "400000.00", "description": "Flat in the county town"}
LI_SI = {"name": "Li Si", "amount": "100000.00", "net_assets": "300000.00", "grade": "A"}


def proposal(customer_id: str, assessment_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "assessment_id": assessment_id,
        "inputs": {"existing_debt": "50000"},
        "collaterals": [HOUSE],
        "guarantors": [LI_SI],
        "sub_limits": [{"product": "operating_loan", "amount": "300000.00"}],
        "revolving": True,
        "term_months": 12,
        "investigation_report": "Visited the household; income from a grocery shop verified.",
        "risk_analysis": "Income steady; the flat covers most of the exposure.",
    }
    return {**body, **changes}


def propose(api: Api, who: str, body: dict[str, Any]) -> Any:
    return api.as_(who).post(LIMITS, json=body)


def graded_customer(api: Api, **kwargs: Any) -> tuple[str, str]:
    """A customer of manager.li graded A (71 points, see test_assessments) and confirmed."""
    customer_id = rated_customer(api, **kwargs)
    return customer_id, confirmed_assessment(api, customer_id)["id"]


def test_a_manager_proposes_a_limit_calculated_step_by_step(api: Api) -> None:
    customer_id, assessment_id = graded_customer(api)
    resp = propose(api, "manager.li", proposal(customer_id, assessment_id))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["Location"] == f"{LIMITS}/{body['id']}"
    # Income 100,000 and net assets 500,000 come from the confirmed assessment; A:
    # min(min(100,000 * 3, 500,000 * 0.5) * 0.8, cap 200,000) = 200,000; - 50,000 = 150,000
    # secured: house 400,000 * 0.70 = 280,000; guaranteed: min(100,000, 300,000 * 0.60)
    # total = 150,000 + 100,000 + 280,000 = 530,000
    assert (body["status"], body["grade"], body["formula_id"]) == ("proposed", "A", "individual")
    assert (body["credit_amount"], body["guaranteed_amount"], body["secured_amount"]) == (
        "150000.00",
        "100000.00",
        "280000.00",
    )
    assert (body["computed_total"], body["adjustment_amount"], body["total_amount"]) == (
        "530000.00",
        "0.00",
        "530000.00",
    )
    assert body["inputs"] == {
        "annual_income": "100000",
        "net_assets": "500000",
        "existing_debt": "50000",
    }
    assert body["calculation"][-1]["value"] == "530000.00"
    assert body["collaterals"][0]["pledge_rate"] == "0.70"
    assert body["sub_limits"] == [
        {"product": "operating_loan", "amount": "300000.00", "note": None}
    ]
    assert (body["revolving"], body["term_months"], body["pricing"]) == (True, 12, None)
    proposed_at = datetime.fromisoformat(body["proposed_at"])
    # The review is due three days after the proposal (the approval rules' deadline).
    assert datetime.fromisoformat(body["step_due_at"]) == proposed_at + timedelta(days=3)
    with runtime_of(api).session_factory() as session:
        steps = session.scalars(
            select(CreditLimitStep).where(CreditLimitStep.credit_limit_id == body["id"])
        ).all()
        assert [(s.step, s.actor, s.due_at) for s in steps] == [("propose", "manager.li", None)]
    [event] = events_of(api, "credit_limit.proposed")
    assert event == {
        "customer_id": customer_id,
        "credit_limit_id": body["id"],
        "assessment_id": assessment_id,
        "grade": "A",
        "org_unit": "/HQ/U01/B01",
        "credit_amount": "150000.00",
        "guaranteed_amount": "100000.00",
        "secured_amount": "280000.00",
        "adjustment_amount": "0.00",
        "total_amount": "530000.00",
        "revolving": True,
        "term_months": 12,
        "step_due_at": event["step_due_at"],
        "proposed_by": "manager.li",
    }
    assert datetime.fromisoformat(event["step_due_at"]) == proposed_at + timedelta(days=3)


def test_without_an_entered_debt_the_banks_loan_balance_counts(api: Api) -> None:
    customer_id, assessment_id = graded_customer(api)  # core banking: no loans
    body = proposal(
        customer_id, assessment_id, inputs={}, collaterals=[], guarantors=[], sub_limits=[]
    )
    limit = propose(api, "manager.li", body).json()
    # 200,000 - 0.00 (this bank's loans) = 200,000
    assert (limit["inputs"]["existing_debt"], limit["credit_amount"]) == ("0.00", "200000.00")


def test_the_staff_adjustment_needs_its_reason_and_stands_beside_the_computed_limit(
    api: Api,
) -> None:
    customer_id, assessment_id = graded_customer(api)
    err = problem(
        propose(
            api, "manager.li", proposal(customer_id, assessment_id, adjustment_amount="-30000.00")
        ),
        422,
    )
    assert err["errors"][0]["field"] == "adjustment_reason"
    err = problem(
        propose(
            api,
            "manager.li",
            proposal(
                customer_id,
                assessment_id,
                adjustment_amount="-530000.01",
                adjustment_reason="Guarantor's business is failing",
            ),
        ),
        422,
    )
    assert err["errors"][0]["field"] == "adjustment_amount"
    resp = propose(
        api,
        "manager.li",
        proposal(
            customer_id,
            assessment_id,
            adjustment_amount="-30000.00",
            adjustment_reason="The guarantor also backs his brother's loan",
        ),
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    # 530,000 computed - 30,000 = 500,000
    assert (body["computed_total"], body["adjustment_amount"], body["total_amount"]) == (
        "530000.00",
        "-30000.00",
        "500000.00",
    )
    assert body["adjustment_reason"] == "The guarantor also backs his brother's loan"
    event = events_of(api, "credit_limit.proposed")[0]
    assert (event["adjustment_amount"], event["total_amount"]) == ("-30000.00", "500000.00")


def test_sub_limits_may_not_exceed_the_total(api: Api) -> None:
    customer_id, assessment_id = graded_customer(api)
    over = [
        {"product": "operating_loan", "amount": "300000.00"},
        {"product": "consumer_loan", "amount": "230000.01"},
    ]
    err = problem(
        propose(api, "manager.li", proposal(customer_id, assessment_id, sub_limits=over)), 422
    )
    assert "530000.01" in err["detail"] and "530000.00" in err["detail"]
    repeated = [{"product": "operating_loan", "amount": "1.00"}] * 2
    problem(
        propose(api, "manager.li", proposal(customer_id, assessment_id, sub_limits=repeated)), 422
    )
    exact = [
        {"product": "operating_loan", "amount": "300000.00"},
        {"product": "consumer_loan", "amount": "230000.00"},
    ]
    resp = propose(api, "manager.li", proposal(customer_id, assessment_id, sub_limits=exact))
    assert resp.status_code == 201, resp.text
    assert events_of(api, "credit_limit.proposed")[0]["total_amount"] == "530000.00"


def test_a_limit_rests_on_the_customers_confirmed_grade(api: Api) -> None:
    customer_id = rated_customer(api)
    open_one = assess(api, "manager.li", customer_id, INDIVIDUAL_INPUTS).json()["id"]
    err = problem(propose(api, "manager.li", proposal(customer_id, open_one)), 409)
    assert "assessed" in err["detail"]
    other_id, other_assessment = graded_customer(api)
    problem(propose(api, "manager.li", proposal(customer_id, other_assessment)), 409)
    problem(propose(api, "manager.li", proposal(customer_id, customer_id)), 409)
    # Once a newer grade is confirmed, the older one no longer carries a limit.
    first = confirmed_assessment(api, other_id)["id"]
    problem(propose(api, "manager.li", proposal(other_id, other_assessment)), 409)
    assert propose(api, "manager.li", proposal(other_id, first)).status_code == 201
    assert len(events_of(api, "credit_limit.proposed")) == 1


def test_missing_limit_inputs_are_listed(api: Api) -> None:
    customer_id = rated_customer(api, kind="corporate", business_line="corporate")
    corporate = {
        "annual_revenue": "8000000",
        "net_assets": "12000000",
        "debt_ratio": "55",
        "character": "excellent",
        "business_experience": "12",
        "management": "adequate",
        "bank_relationship": "regular",
    }
    assessment_id = confirmed_assessment(api, customer_id, corporate)["id"]
    err = problem(propose(api, "manager.li", proposal(customer_id, assessment_id)), 422)
    assert err["missing"] == ["operating_cash_flow"]
    body = proposal(
        customer_id,
        assessment_id,
        inputs={"operating_cash_flow": "1500000", "existing_debt": "1200000"},
    )
    limit = propose(api, "manager.li", body).json()
    # Graded 9 + 12 + 5 + 2 (deposits 60,000) + 6 (no loans) + 15 + 8 + 6 + 5 = 68 → BBB;
    # min(min(1,500,000 * 3, 12,000,000 * 0.6) * 0.6 = 2,700,000, cap 2,000,000) - 1,200,000
    assert (limit["grade"], limit["credit_amount"]) == ("BBB", "800000.00")


def test_only_the_owner_or_serving_manager_proposes_and_who_reads(api: Api) -> None:
    customer_id, assessment_id = graded_customer(api)
    body = proposal(customer_id, assessment_id)
    for who in ("manager.zhou", "approver.qian", "head.sun", "auditor.chen", "teller.wang"):
        err = problem(propose(api, who, body), 403)
        assert "owner" in err["detail"], who
    ids = [propose(api, "manager.li", body).json()["id"] for _ in range(3)]
    for who in ("auditor.chen", "approver.qian", "manager.li", "risk.he"):
        page = api.as_(who).get(f"/api/v1/customers/{customer_id}/credit-limits?limit=2").json()
        assert page["total"] == 3 and [x["id"] for x in page["items"]] == [ids[2], ids[1]], who
        assert api.as_(who).get(f"{LIMITS}/{ids[0]}").status_code == 200, who
    problem(api.as_("manager.zhou").get(f"{LIMITS}/{ids[0]}"), 403)
    problem(api.as_("manager.zhou").get(f"/api/v1/customers/{customer_id}/credit-limits"), 403)
    problem(api.as_("auditor.chen").get(f"{LIMITS}/{customer_id}"), 404)


def test_members_see_the_vip_pricing_hint_others_do_not(api: Api) -> None:
    customer_id, assessment_id = graded_customer(api, vip_level="platinum")
    limit = propose(api, "manager.li", proposal(customer_id, assessment_id)).json()
    assert limit["pricing"]["vip_level"] == "platinum"
    assert limit["pricing"]["monthly_discount_permille"] == "0.3"
    assert limit["pricing"]["annual_discount_percentage_points"] == "0.36"
    plain_id, plain_assessment = graded_customer(api)
    assert (
        propose(api, "manager.li", proposal(plain_id, plain_assessment)).json()["pricing"] is None
    )


def test_a_guarantor_who_is_a_rated_customer_bears_by_its_grade_here(api: Api) -> None:
    guarantor_id = rated_customer(api)
    confirmed_assessment(api, guarantor_id, {**INDIVIDUAL_INPUTS, "character": "poor"})  # BBB
    customer_id, assessment_id = graded_customer(api)
    backer = {**LI_SI, "grade": "AAA", "customer_id": guarantor_id}
    limit = propose(
        api, "manager.li", proposal(customer_id, assessment_id, guarantors=[backer])
    ).json()
    # BBB here, not the AAA entered: min(100,000, 300,000 * 0.50 = 150,000) = 100,000 still, so
    # a smaller standing shows it: net assets 150,000 * 0.50 = 75,000
    assert limit["guarantors"][0]["grade"] == "BBB"
    backer = {**backer, "net_assets": "150000.00"}
    limit = propose(
        api, "manager.li", proposal(customer_id, assessment_id, guarantors=[backer])
    ).json()
    assert limit["guaranteed_amount"] == "75000.00"


def test_a_changed_guarantee_set_proposes_a_re_rating(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "services.rating.rerating.on_inputs_changed",
        lambda session, cid, trigger: (
            calls.append((cid, trigger)) if trigger == "guarantees" else None
        ),
    )
    customer_id, assessment_id = graded_customer(api)
    body = proposal(customer_id, assessment_id)
    assert propose(api, "manager.li", body).status_code == 201
    assert calls == []  # the first limit: nothing to change from
    described = {**HOUSE, "description": "The same flat, described better"}
    assert propose(api, "manager.li", {**body, "collaterals": [described]}).status_code == 201
    assert calls == []  # the same guarantees
    wang = {"name": "Wang Wu", "amount": "50000.00", "net_assets": "400000.00", "grade": "AA"}
    assert propose(api, "manager.li", {**body, "guarantors": [LI_SI, wang]}).status_code == 201
    assert calls == [(customer_id, "guarantees")]
    fewer = {**body, "guarantors": [LI_SI, wang], "collaterals": []}
    assert propose(api, "manager.li", fewer).status_code == 201
    assert calls == [(customer_id, "guarantees")] * 2


def test_unknown_customers_and_bad_bodies(api: Api) -> None:
    customer_id, assessment_id = graded_customer(api)
    stranger = "00000000-0000-0000-0000-000000000000"
    problem(propose(api, "admin", proposal(stranger, assessment_id)), 404)
    problem(propose(api, "manager.li", proposal(customer_id, assessment_id, term_months=0)), 422)
    bad = {**HOUSE, "type": "racehorse"}
    problem(
        propose(api, "manager.li", proposal(customer_id, assessment_id, collaterals=[bad])), 422
    )
    problem(
        propose(api, "manager.li", proposal(customer_id, assessment_id, investigation_report="")),
        422,
    )
    assert known_customer(api) and events_of(api, "credit_limit.proposed") == []
