"""Approval of credit limits over HTTP: review, four eyes, decisions within the authority
matrix, the committee line, supersession, the recorded steps and their events.

Limits are made as in production: a rating, its confirmation, then the proposal. The proposal
enters an existing debt larger than any capacity, so the formula's credit part is nil and the
staff adjustment (with its reason) is the whole limit: the tests choose the amount exactly."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmkit.clock import business_today
from crmkit.events import validate_payload
from services.rating import approvals
from tests.customer.conftest import Api
from tests.rating.conftest import events_of, financials, known_customer

LIMITS = "/api/v1/credit-limits"
RATINGS = "/api/v1/ratings"
# Every factor of each kind's scorecard a manager enters (deposits and the repayment record
# come from core banking's figures).
RATING_INPUTS: dict[str, dict[str, Any]] = {
    "individual": {
        "annual_income": "100000",
        "net_assets": "500000",
        "debt_ratio": "35",
        "character": "good",
        "work_experience": 7,
        "family": "stable",
        "bank_relationship": "core",
    },
    "farm_household": {
        "annual_income": "60000",
        "net_assets": "200000",
        "debt_ratio": "20",
        "character": "good",
        "farming_experience": 6,
        "family": "ordinary",
        "bank_relationship": "core",
    },
    "corporate": {
        "annual_revenue": "6000000",
        "net_assets": "3000000",
        "debt_ratio": "45",
        "character": "good",
        "business_experience": 6,
        "management": "adequate",
        "bank_relationship": "regular",
    },
}
# A debt beyond any capacity: the formula's credit part is 0, the adjustment is the limit.
LIMIT_INPUTS: dict[str, dict[str, str]] = {
    "individual": {"existing_debt": "900000000"},
    "farm_household": {"existing_debt": "900000000"},
    "corporate": {"operating_cash_flow": "0", "existing_debt": "900000000"},
}
INVESTIGATION = "Visited the customer on 2026-11-20; income verified from payroll records."
RISK = "Stable income; no overdue record; debt ratio 35%."


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


def ok(resp: Any, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def proposed_limit(
    api: Api,
    total: str = "1000000.00",
    *,
    grade: str = "A",
    kind: str = "individual",
    org_unit: str = "/HQ/U01/B01",
    name: str = "Zhang San 张三",
    proposer: str = "manager.li",
    term_months: int = 12,
    customer_id: str | None = None,
) -> dict[str, Any]:
    """A limit of ``total`` CNY proposed by ``proposer`` through the API: the customer rated
    by the proposer, its grade confirmed as ``grade`` by approver.hq, then the proposal."""
    if customer_id is None:
        owner = proposer if proposer.startswith("manager.") else "manager.li"
        business_line = "corporate" if kind == "corporate" else "personal"
        customer_id = known_customer(
            api, kind=kind, org_unit=org_unit, name=name, owner=owner, business_line=business_line
        )
        financials(api, customer_id, "2026-11-28", deposits="60000.00")
        rating = ok(
            api.as_(proposer).post(
                RATINGS, json={"customer_id": customer_id, "inputs": RATING_INPUTS[kind]}
            ),
            201,
        )
        ok(
            api.as_("approver.hq").post(
                f"{RATINGS}/{rating['id']}/confirm",
                json={"decision": "confirm", "grade": grade, "note": "grade set for the test"},
            )
        )
        assessment_id = rating["id"]
    else:
        ratings = ok(api.as_("auditor.chen").get(f"/api/v1/customers/{customer_id}/ratings"))
        assessment_id = next(r["id"] for r in ratings["items"] if r["status"] == "confirmed")
    body = {
        "customer_id": customer_id,
        "assessment_id": assessment_id,
        "inputs": LIMIT_INPUTS[kind],
        "term_months": term_months,
        "adjustment_amount": total,
        "adjustment_reason": "Limit set by the credit plan for the test",
        "investigation_report": INVESTIGATION,
        "risk_analysis": RISK,
    }
    limit = ok(api.as_(proposer).post(LIMITS, json=body), 201)
    assert (limit["status"], limit["total_amount"], limit["grade"]) == ("proposed", total, grade)
    return limit


def review(
    api: Api, limit_id: str, who: str = "approver.hq", recommendation: str = "approve"
) -> Any:
    body = {"opinion": "Income and collateral verified.", "recommendation": recommendation}
    return api.as_(who).post(f"{LIMITS}/{limit_id}/review", json=body)


def reviewed_limit(api: Api, total: str = "1000000.00", **kwargs: Any) -> dict[str, Any]:
    """A limit of ``total`` proposed by manager.li and reviewed by approver.hq."""
    limit = proposed_limit(api, total, **kwargs)
    return ok(review(api, limit["id"]))


def approve(api: Api, limit_id: str, who: str, note: str | None = None) -> Any:
    return api.as_(who).post(f"{LIMITS}/{limit_id}/approve", json={"note": note})


def reject(api: Api, limit_id: str, who: str, reason: str = "Income not verified") -> Any:
    return api.as_(who).post(f"{LIMITS}/{limit_id}/reject", json={"reason": reason})


def steps_of(api: Api, limit_id: str, who: str = "auditor.chen") -> list[dict[str, Any]]:
    page = ok(api.as_(who).get(f"{LIMITS}/{limit_id}/steps"))
    items: list[dict[str, Any]] = page["items"]
    return items


def contract_valid(api: Api, event_type: str) -> list[dict[str, Any]]:
    """The recorded payloads of ``event_type``, each checked against its contract."""
    payloads = events_of(api, event_type)
    for payload in payloads:
        validate_payload(event_type, 1, payload)
    return payloads


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- four eyes ----------------------------------------------------------------------------------
def test_the_proposer_never_reviews_nor_decides_and_the_reviewer_never_decides(api: Api) -> None:
    # The administrator may propose (and is an approver), so only the four-eyes rule stops them.
    limit = proposed_limit(api, "200000.00", proposer="admin")
    err = problem(review(api, limit["id"], who="admin"), 403)
    assert "proposer never reviews" in err["detail"]
    ok(review(api, limit["id"], who="approver.qian"))
    err = problem(approve(api, limit["id"], "admin"), 403)
    assert "proposer never decides" in err["detail"]
    err = problem(reject(api, limit["id"], "admin"), 403)
    assert "proposer never decides" in err["detail"]
    err = problem(approve(api, limit["id"], "approver.qian"), 403)
    assert "reviewer never decides" in err["detail"]
    # A third person within authority decides.
    approved = ok(approve(api, limit["id"], "president.zhao"))
    assert (approved["status"], approved["decided_by"]) == ("approved", "president.zhao")


def test_a_customer_manager_proposes_but_neither_reviews_nor_approves(api: Api) -> None:
    limit = proposed_limit(api, "200000.00")
    err = problem(review(api, limit["id"], who="manager.li"), 403)
    assert "only an approver of the customer's org subtree (/HQ/U01/B01)" in err["detail"]
    ok(review(api, limit["id"]))
    problem(approve(api, limit["id"], "manager.li"), 403)
    problem(approve(api, limit["id"], "teller.wang"), 403)
    problem(approve(api, limit["id"], "auditor.chen"), 403)


def test_an_approver_outside_the_customers_subtree_may_not_review(api: Api) -> None:
    # head.sun heads outlet /HQ/U01/B01; the customer is at /HQ/U01/B02.
    limit = proposed_limit(api, "100000.00", org_unit="/HQ/U01/B02", proposer="manager.zhou")
    err = problem(review(api, limit["id"], who="head.sun"), 403)
    assert "(/HQ/U01/B02)" in err["detail"]


# -- the authority matrix -----------------------------------------------------------------------
def test_approval_beyond_authority_is_refused_naming_the_authority_and_the_amount(
    api: Api,
) -> None:
    limit = reviewed_limit(api, "3000000.00")
    # approver.qian: credit_approver at branch level (/HQ/U01), up to 2,000,000.00.
    err = problem(approve(api, limit["id"], "approver.qian"), 403)
    assert err["detail"] == (
        "the limit of 3,000,000.00 CNY exceeds your authority as Branch credit approver "
        "支行/联社审批人 (credit_approver at branch level): up to 2,000,000.00 CNY"
    )
    assert (err["authority"], err["max_amount"], err["total_amount"]) == (
        "credit_approver@branch",
        "2000000.00",
        "3000000.00",
    )
    # head.sun: outlet_head at outlet level, up to 300,000.00.
    err = problem(approve(api, limit["id"], "head.sun"), 403)
    assert "up to 300,000.00 CNY" in err["detail"]
    # Rejecting is deciding too: the same authority is needed.
    problem(reject(api, limit["id"], "approver.qian"), 403)
    # The administrator holds no delegated credit authority in the matrix.
    err = problem(approve(api, limit["id"], "admin"), 403)
    assert "no delegated credit authority at head_office level" in err["detail"]
    assert events_of(api, "credit_limit.approved") == []
    # president.zhao: branch_president at branch level, up to 5,000,000.00.
    approved = ok(approve(api, limit["id"], "president.zhao", note="Within the credit plan."))
    assert (
        approved["status"] == "approved" and approved["decision_note"] == "Within the credit plan."
    )


def test_approval_within_authority_puts_the_limit_in_force_for_its_term(api: Api) -> None:
    limit = reviewed_limit(api, "300000.00", term_months=12)
    assert limit["status"] == "reviewed" and limit["next_step"] == "approve"
    # The outlet head's authority reaches 300,000.00 exactly (the bound is included).
    approved = ok(approve(api, limit["id"], "head.sun"))
    today = business_today()
    expiry = approvals.expiry_of(today, 12)
    assert approved["start_date"] == today.isoformat()
    assert approved["expiry_date"] == expiry.isoformat()
    assert approved["next_step"] is None and approved["step_due_at"] is None
    assert approved["by_committee"] is False
    [event] = contract_valid(api, "credit_limit.approved")
    assert event == {
        "customer_id": limit["customer_id"],
        "credit_limit_id": limit["id"],
        "grade": "A",
        "total_amount": "300000.00",
        "credit_amount": "0.00",
        "guaranteed_amount": "0.00",
        "secured_amount": "0.00",
        "sub_limits": [],
        "revolving": False,
        "start_date": today.isoformat(),
        "expiry_date": expiry.isoformat(),
        "decided_by": "head.sun",
        "by_committee": False,
    }
    # Decided once: a second decision finds it approved.
    err = problem(approve(api, limit["id"], "president.zhao"), 409)
    assert "is approved; only a reviewed limit is decided" in err["detail"]


def test_the_head_office_approver_decides_up_to_five_million(api: Api) -> None:
    limit = proposed_limit(api, "5000000.00", org_unit="/HQ/U01/B01")
    ok(review(api, limit["id"], who="approver.qian"))
    approved = ok(approve(api, limit["id"], "approver.hq"))
    assert approved["status"] == "approved"


def test_a_limit_is_decided_only_once_reviewed(api: Api) -> None:
    limit = proposed_limit(api, "100000.00")
    err = problem(approve(api, limit["id"], "president.zhao"), 409)
    assert "is proposed; only a reviewed limit is decided" in err["detail"]
    ok(review(api, limit["id"]))
    err = problem(review(api, limit["id"], who="approver.qian"), 409)
    assert "only a proposed limit is reviewed" in err["detail"]
    problem(approve(api, "00000000-0000-0000-0000-000000000000", "president.zhao"), 404)


def test_rejection_records_the_reason(api: Api) -> None:
    limit = reviewed_limit(api, "800000.00")
    rejected = ok(reject(api, limit["id"], "approver.qian", reason="Collateral title unclear"))
    assert (rejected["status"], rejected["decision_note"]) == (
        "rejected",
        "Collateral title unclear",
    )
    assert rejected["start_date"] is None and rejected["expiry_date"] is None
    assert contract_valid(api, "credit_limit.rejected") == [
        {
            "customer_id": limit["customer_id"],
            "credit_limit_id": limit["id"],
            "reason": "Collateral title unclear",
            "decided_by": "approver.qian",
            "by_committee": False,
        }
    ]
    problem(api.as_("approver.qian").post(f"{LIMITS}/{limit['id']}/reject", json={}), 422)


# -- the committee line -------------------------------------------------------------------------
def test_review_refers_a_limit_above_the_committee_line_and_no_single_approver_decides_it(
    api: Api,
) -> None:
    limit = proposed_limit(api, "5000000.01")
    reviewed = ok(review(api, limit["id"], who="approver.qian"))
    assert (reviewed["status"], reviewed["next_step"]) == ("committee", "committee")
    # The committee's deadline: 7 days from the review.
    assert at(reviewed["step_due_at"]) - at(reviewed["reviewed_at"]) == timedelta(days=7)
    err = problem(approve(api, limit["id"], "approver.hq"), 409)
    assert err["detail"] == (
        f"credit limit {limit['id']} is for the credit committee to decide (the limit of "
        "5,000,000.01 CNY is above the committee line of 5,000,000.00 CNY); a single approver "
        "may not"
    )
    problem(reject(api, limit["id"], "approver.hq"), 409)
    assert contract_valid(api, "credit_limit.reviewed")[-1] == {
        "customer_id": limit["customer_id"],
        "credit_limit_id": limit["id"],
        "reviewed_by": "approver.qian",
        "opinion": "Income and collateral verified.",
        "recommendation": "approve",
        "next_step": "committee",
        "step_due_at": reviewed["step_due_at"].replace("Z", "+00:00"),
    }
    assert contract_valid(api, "credit_limit.referred") == [
        {
            "customer_id": limit["customer_id"],
            "credit_limit_id": limit["id"],
            "total_amount": "5000000.01",
            "committee_line": "5000000.00",
            "step_due_at": reviewed["step_due_at"].replace("Z", "+00:00"),
        }
    ]


def test_a_limit_of_grade_b_goes_to_the_committee_whatever_its_amount(api: Api) -> None:
    limit = proposed_limit(api, "50000.00", grade="B")
    reviewed = ok(review(api, limit["id"], recommendation="reject"))
    assert reviewed["status"] == "committee"
    err = problem(approve(api, limit["id"], "president.zhao"), 409)
    assert "limits of grade B go to the credit committee" in err["detail"]
    [event] = contract_valid(api, "credit_limit.reviewed")
    assert (event["recommendation"], event["next_step"]) == ("reject", "committee")


def test_a_limit_at_the_line_is_reviewed_for_a_single_approver(api: Api) -> None:
    limit = proposed_limit(api, "5000000.00")
    reviewed = ok(review(api, limit["id"]))
    assert (reviewed["status"], reviewed["next_step"]) == ("reviewed", "approve")
    # The approver's deadline: 3 days from the review.
    assert at(reviewed["step_due_at"]) - at(reviewed["reviewed_at"]) == timedelta(days=3)
    assert events_of(api, "credit_limit.referred") == []
    [event] = contract_valid(api, "credit_limit.reviewed")
    assert event["next_step"] == "approve"


# -- supersession, steps, readers ---------------------------------------------------------------
def test_a_new_approved_limit_supersedes_the_customers_earlier_one(api: Api) -> None:
    first = reviewed_limit(api, "100000.00")
    ok(approve(api, first["id"], "president.zhao"))
    second = proposed_limit(api, "150000.00", customer_id=first["customer_id"])
    ok(review(api, second["id"]))
    ok(approve(api, second["id"], "approver.qian"))
    limits = ok(api.as_("auditor.chen").get(f"/api/v1/credit-limits/{first['id']}"))
    assert limits["status"] == "superseded"
    assert [s["step"] for s in steps_of(api, first["id"])][-1] == "supersede"
    assert [e["credit_limit_id"] for e in contract_valid(api, "credit_limit.approved")] == [
        first["id"],
        second["id"],
    ]


def test_every_step_is_recorded_with_its_deadline(api: Api) -> None:
    limit = proposed_limit(api, "100000.00")
    reviewed = ok(review(api, limit["id"]))
    ok(approve(api, limit["id"], "approver.qian", note="Agreed."))
    steps = steps_of(api, limit["id"])
    assert [(s["step"], s["actor"]) for s in steps] == [
        ("propose", "manager.li"),
        ("review", "approver.hq"),
        ("approve", "approver.qian"),
    ]
    review_step, approve_step = steps[1], steps[2]
    # The review was due 3 days after the proposal, the decision 3 days after the review.
    assert at(review_step["due_at"]) - at(limit["proposed_at"]) == timedelta(days=3)
    assert review_step["note"] == "approve: Income and collateral verified."
    assert at(approve_step["due_at"]) == at(reviewed["step_due_at"])
    assert approve_step["note"] == "Agreed." and not approve_step["late"]
    page = ok(api.as_("auditor.chen").get(f"{LIMITS}/{limit['id']}/steps?limit=1&offset=1"))
    assert (page["total"], [s["step"] for s in page["items"]]) == (3, ["review"])


def test_readers_of_the_steps(api: Api) -> None:
    limit = proposed_limit(api, "100000.00")
    for reader in ("auditor.chen", "manager.li", "risk.he", "approver.qian", "committee.wu"):
        assert api.as_(reader).get(f"{LIMITS}/{limit['id']}/steps").status_code == 200, reader
    # manager.zhou serves outlet B02 and not this customer; the teller reads no limits.
    err = problem(api.as_("manager.zhou").get(f"{LIMITS}/{limit['id']}/steps"), 403)
    assert "you may not read the limits of customer" in err["detail"]
    problem(api.as_("teller.wang").get(f"{LIMITS}/{limit['id']}/steps"), 403)
    problem(api.as_("auditor.chen").get(f"{LIMITS}/{uuid.uuid4()}/steps"), 404)


def test_the_authority_policy_is_data() -> None:
    policy = approvals.policy_on(business_today())
    assert (policy.id, policy.version) == ("authority", "2026-01-01")
    matrix = {(a.role, a.level): f"{a.max_amount:.2f}" for a in policy.authorities}
    assert matrix == {
        ("outlet_head", "outlet"): "300000.00",
        ("credit_approver", "branch"): "2000000.00",
        ("branch_president", "branch"): "5000000.00",
        ("credit_approver", "head_office"): "5000000.00",
        ("head_office_leader", "head_office"): "10000000.00",
    }
    assert f"{policy.committee.line:.2f}" == "5000000.00"
    assert policy.committee.refer_grades == ["B", "C"]


def test_an_authority_policy_that_breaks_its_rules_is_refused(tmp_path: Path) -> None:
    sample = json.loads((approvals.POLICY_DIR / "2026-01-01.json").read_text(encoding="utf-8"))
    teller = {"role": "teller", "level": "outlet", "max_amount": "1.00", "title": "Teller"}
    bad = {**sample, "authorities": [*sample["authorities"], teller]}
    (tmp_path / "2026-01-01.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(approvals.AuthorityPolicyError, match=r"not approvers: \['teller'\]"):
        approvals.policies(tmp_path)


def test_a_later_policy_version_takes_over_on_its_date(tmp_path: Path) -> None:
    sample = json.loads((approvals.POLICY_DIR / "2026-01-01.json").read_text(encoding="utf-8"))
    later = {**sample, "version": "2027-01-01", "effective_from": "2027-01-01"}
    later["committee"] = {**sample["committee"], "line": "8000000.00", "refer_grades": ["C"]}
    for policy in (sample, later):
        (tmp_path / f"{policy['version']}.json").write_text(json.dumps(policy), encoding="utf-8")
    assert approvals.policy_on(date(2026, 12, 31), tmp_path).version == "2026-01-01"
    in_2027 = approvals.policy_on(date(2027, 1, 1), tmp_path)
    assert (in_2027.version, f"{in_2027.committee.line:.2f}") == ("2027-01-01", "8000000.00")
    with pytest.raises(approvals.AuthorityPolicyError, match="no authority policy in force"):
        approvals.policy_on(date(2025, 12, 31), tmp_path)
