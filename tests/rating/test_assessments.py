"""Credit-grade assessments over HTTP: scored with the explanation, missing inputs listed,
adjustments with their reason, four-eyes confirmation within the approver's subtree."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from crmkit.auth import Caller
from crmkit.clock import business_today
from crmkit.errors import Conflict
from crmkit.runtime import ServiceRuntime
from services.rating import ratings
from services.rating.app import create_app
from services.rating.models import Assessment
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.rating.conftest import (
    events_of,
    financials,
    known_customer,
    rating_settings,
    runtime_of,
)

RATINGS = "/api/v1/ratings"

# The individual card with every manual factor entered (the system knows deposits and the
# repayment record from core banking's figures):
#   annual_income 100000     → 60,000 to below 120,000       9
#   net_assets 500000        → 300,000 to below 800,000      9
#   debt_ratio 35            → 30% to below 50%              7
#   deposit_balance 60000.00 → 50,000 to below 200,000       6  (system)
#   repayment_record         → no loans: no_history          6  (system)
#   character good                                          11
#   work_experience 7        → 5 to below 10 years           6
#   family stable                                            9
#   bank_relationship core                                   8
#   total 9+9+7+6+6+11+6+9+8 = 71 → A (70 ≤ 71 < 80)
INDIVIDUAL_INPUTS: dict[str, Any] = {
    "annual_income": "100000",
    "net_assets": "500000",
    "debt_ratio": "35",
    "character": "good",
    "work_experience": 7,
    "family": "stable",
    "bank_relationship": "core",
}


def assess(api: Api, who: str, customer_id: str, inputs: dict[str, Any], **extra: Any) -> Any:
    return api.as_(who).post(RATINGS, json={"customer_id": customer_id, "inputs": inputs, **extra})


def decide(api: Api, who: str, assessment_id: str, decision: str = "confirm", **extra: Any) -> Any:
    body = {"decision": decision, **extra}
    return api.as_(who).post(f"{RATINGS}/{assessment_id}/confirm", json=body)


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


def rated_customer(api: Api, **kwargs: Any) -> str:
    """A customer of manager.li with core banking's figures: 60,000 deposits, no loans."""
    customer_id = known_customer(api, **kwargs)
    financials(api, customer_id, "2026-11-28", deposits="60000.00")
    return customer_id


def confirmed_assessment(api: Api, customer_id: str, inputs: dict[str, Any] | None = None) -> Any:
    """An assessment of manager.li confirmed by approver.qian."""
    resp = assess(api, "manager.li", customer_id, inputs or INDIVIDUAL_INPUTS)
    assert resp.status_code == 201, resp.text
    resp = decide(api, "approver.qian", resp.json()["id"])
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_a_manager_assesses_a_customer_and_sees_each_factor(api: Api) -> None:
    customer_id = rated_customer(api)
    resp = assess(api, "manager.li", customer_id, INDIVIDUAL_INPUTS)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["Location"] == f"{RATINGS}/{body['id']}"
    assert (body["score"], body["computed_grade"], body["status"]) == ("71.00", "A", "assessed")
    assert (body["scorecard_id"], body["scorecard_version"]) == ("individual", "2026-01-01")
    assert body["missing"] == [] and body["final_grade"] is None
    lines = {line["code"]: line for line in body["explanation"]}
    assert [(c, lines[c]["points"]) for c in lines] == [
        ("annual_income", "9.00"),
        ("net_assets", "9.00"),
        ("debt_ratio", "7.00"),
        ("deposit_balance", "6.00"),
        ("repayment_record", "6.00"),
        ("character", "11.00"),
        ("work_experience", "6.00"),
        ("family", "9.00"),
        ("bank_relationship", "8.00"),
    ]
    assert lines["deposit_balance"]["value"] == "60000.00"
    assert lines["deposit_balance"]["bin"] == "50,000 to below 200,000"
    assert lines["annual_income"]["max_points"] == "15.00"
    assert lines["repayment_record"]["value"] == "no_history"
    assert body["inputs"]["deposit_balance"] == "60000.00"
    assert events_of(api, "rating.assessed") == [
        {
            "customer_id": customer_id,
            "assessment_id": body["id"],
            "kind": "individual",
            "org_unit": "/HQ/U01/B01",
            "scorecard_id": "individual",
            "scorecard_version": "2026-01-01",
            "score": "71.00",
            "computed_grade": "A",
            "proposed_grade": None,
            "status": "assessed",
            "missing": [],
            "trigger": "manual",
            "campaign_id": None,
        }
    ]


def test_the_system_knows_deposits_and_repayment_and_its_values_win(api: Api) -> None:
    customer_id = known_customer(api)
    financials(
        api,
        customer_id,
        "2026-11-28",
        deposits="600000.00",
        loans="20000.00",
        overdue_amount="500.00",
    )
    # The manager's entries of system factors do not count while the system knows them:
    # deposits 600,000 → 500,000 and above 10 (not the entered 1,000 → 2), overdue → 0 (not 10).
    # 71 - 6 + 10 (deposits) - 6 + 0 (repayment: overdue) = 69 → BBB
    inputs = {**INDIVIDUAL_INPUTS, "deposit_balance": "1000", "repayment_record": "normal"}
    body = assess(api, "manager.li", customer_id, inputs).json()
    assert (body["score"], body["computed_grade"]) == ("69.00", "BBB")
    assert body["inputs"]["deposit_balance"] == "600000.00"
    assert body["inputs"]["repayment_record"] == "overdue"


def test_without_figures_the_managers_entry_of_a_system_factor_is_used(api: Api) -> None:
    customer_id = known_customer(api)  # core banking has sent nothing yet
    # 71 - 6 + 4 (deposits 20,000: 10,000 to below 50,000) - 6 + 10 (normal) = 73 → A
    inputs = {**INDIVIDUAL_INPUTS, "deposit_balance": "20000", "repayment_record": "normal"}
    body = assess(api, "manager.li", customer_id, inputs).json()
    assert (body["score"], body["computed_grade"]) == ("73.00", "A")


def test_missing_inputs_are_listed_and_no_grade_is_guessed(api: Api) -> None:
    customer_id = rated_customer(api)
    inputs = {k: v for k, v in INDIVIDUAL_INPUTS.items() if k not in {"character", "family"}}
    resp = assess(api, "manager.li", customer_id, {**inputs, "family": ""})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    # 71 - 11 (character) - 9 (family) = 51 points so far, but no grade while inputs are missing
    assert (body["status"], body["computed_grade"], body["score"]) == ("incomplete", None, "51.00")
    assert body["missing"] == ["character", "family"]
    lines = {line["code"]: line for line in body["explanation"]}
    assert (lines["character"]["value"], lines["character"]["points"]) == (None, "0.00")
    assert events_of(api, "rating.assessed")[0]["status"] == "incomplete"
    err = problem(decide(api, "approver.qian", body["id"]), 409)
    assert err["missing"] == ["character", "family"]


def test_a_proposed_grade_needs_a_reason_and_is_what_the_approver_confirms(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = rated_customer(api)
    err = problem(
        assess(api, "manager.li", customer_id, INDIVIDUAL_INPUTS, proposed_grade="AA"), 422
    )
    assert err["errors"][0]["field"] == "adjustment_reason"
    blank = assess(
        api,
        "manager.li",
        customer_id,
        INDIVIDUAL_INPUTS,
        proposed_grade="AA",
        adjustment_reason="  ",
    )
    problem(blank, 422)
    resp = assess(
        api,
        "manager.li",
        customer_id,
        INDIVIDUAL_INPUTS,
        proposed_grade="AA",
        adjustment_reason="Second house not yet in the net assets",
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["computed_grade"], body["proposed_grade"]) == ("A", "AA")
    assert body["adjustment_reason"] == "Second house not yet in the net assets"
    calls: list[tuple[str, str | None, str]] = []
    monkeypatch.setattr(
        "services.rating.risk.on_grade_confirmed",
        lambda session, cid, previous, grade: calls.append((cid, previous, grade)),
    )
    confirmed = decide(api, "approver.qian", body["id"]).json()
    assert (confirmed["status"], confirmed["final_grade"]) == ("confirmed", "AA")
    assert calls == [(customer_id, None, "AA")]
    event = events_of(api, "rating.confirmed")[0]
    assert (event["grade"], event["computed_grade"], event["adjusted"]) == ("AA", "A", True)


def test_confirming_sets_the_grade_for_a_year_and_names_the_grade_before(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str | None, str]] = []
    monkeypatch.setattr(
        "services.rating.risk.on_grade_confirmed",
        lambda session, cid, previous, grade: calls.append((cid, previous, grade)),
    )
    customer_id = rated_customer(api)
    first = confirmed_assessment(api, customer_id)
    assert (first["status"], first["final_grade"], first["decided_by"]) == (
        "confirmed",
        "A",
        "approver.qian",
    )
    assert first["valid_until"] == ratings.valid_until(business_today()).isoformat()
    # Later the character turns poor: 71 - 11 = 60 → BBB, a downgrade from A.
    second = confirmed_assessment(api, customer_id, {**INDIVIDUAL_INPUTS, "character": "poor"})
    assert (second["score"], second["final_grade"]) == ("60.00", "BBB")
    assert calls == [(customer_id, None, "A"), (customer_id, "A", "BBB")]
    confirmed = events_of(api, "rating.confirmed")
    assert confirmed == [
        {
            "customer_id": customer_id,
            "assessment_id": first["id"],
            "grade": "A",
            "computed_grade": "A",
            "adjusted": False,
            "previous_grade": None,
            "valid_until": first["valid_until"],
            "decided_by": "approver.qian",
        },
        {
            "customer_id": customer_id,
            "assessment_id": second["id"],
            "grade": "BBB",
            "computed_grade": "BBB",
            "adjusted": False,
            "previous_grade": "A",
            "valid_until": second["valid_until"],
            "decided_by": "approver.qian",
        },
    ]
    problem(decide(api, "approver.qian", first["id"]), 409)  # decided already


def test_another_grade_than_computed_or_proposed_needs_a_note(api: Api) -> None:
    customer_id = rated_customer(api)
    assessment_id = assess(api, "manager.li", customer_id, INDIVIDUAL_INPUTS).json()["id"]
    err = problem(decide(api, "approver.qian", assessment_id, grade="BBB"), 422)
    assert err["errors"][0]["field"] == "note"
    resp = decide(api, "approver.qian", assessment_id, grade="BBB", note="Income is seasonal")
    assert resp.status_code == 200, resp.text
    assert (resp.json()["final_grade"], resp.json()["decision_note"]) == (
        "BBB",
        "Income is seasonal",
    )
    assert events_of(api, "rating.confirmed")[0]["adjusted"] is True


def test_a_rejection_needs_its_reason_and_closes_the_assessment(api: Api) -> None:
    customer_id = rated_customer(api)
    assessment_id = assess(api, "manager.li", customer_id, INDIVIDUAL_INPUTS).json()["id"]
    problem(decide(api, "approver.qian", assessment_id, "reject"), 422)
    resp = decide(api, "approver.qian", assessment_id, "reject", note="Income not evidenced")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "rejected"
    assert events_of(api, "rating.rejected") == [
        {
            "customer_id": customer_id,
            "assessment_id": assessment_id,
            "reason": "Income not evidenced",
            "decided_by": "approver.qian",
        }
    ]
    problem(decide(api, "approver.qian", assessment_id), 409)
    assert events_of(api, "rating.confirmed") == []


def test_assessing_again_supersedes_the_open_assessment(api: Api) -> None:
    customer_id = rated_customer(api)
    first = assess(api, "manager.li", customer_id, INDIVIDUAL_INPUTS).json()
    second = assess(api, "manager.li", customer_id, INDIVIDUAL_INPUTS).json()
    assert api.as_("manager.li").get(f"{RATINGS}/{first['id']}").json()["status"] == "superseded"
    assert second["status"] == "assessed"
    problem(decide(api, "approver.qian", first["id"]), 409)
    assert decide(api, "approver.qian", second["id"]).status_code == 200


def test_the_assessor_may_not_confirm_their_own_assessment(api: Api) -> None:
    # An administrator may assess and may decide, but never both on one assessment.
    customer_id = rated_customer(api)
    assessment_id = assess(api, "admin", customer_id, INDIVIDUAL_INPUTS).json()["id"]
    err = problem(decide(api, "admin", assessment_id), 403)
    assert err["detail"] == "the assessor may not confirm their own assessment"
    problem(decide(api, "admin", assessment_id, "reject", note="mine"), 403)
    assert decide(api, "approver.qian", assessment_id).status_code == 200


def test_an_outlet_head_who_assessed_a_customer_he_owns_may_not_confirm_it(api: Api) -> None:
    # Heads own high-tier customers under the assignment rules: they investigate and propose
    # for them like a customer manager, and someone else decides.
    customer_id = rated_customer(api, owner="head.sun")
    resp = assess(api, "head.sun", customer_id, INDIVIDUAL_INPUTS)
    assert resp.status_code == 201, resp.text
    assessment_id = resp.json()["id"]
    err = problem(decide(api, "head.sun", assessment_id), 403)
    assert err["detail"] == "the assessor may not confirm their own assessment"
    assert decide(api, "president.zhao", assessment_id).status_code == 200


def test_a_teller_who_serves_a_customer_does_not_assess_it(api: Api) -> None:
    customer_id = rated_customer(api, owner="teller.wang")
    err = problem(assess(api, "teller.wang", customer_id, INDIVIDUAL_INPUTS), 403)
    assert "as a customer manager or head" in err["detail"]


def test_an_approver_outside_the_customers_subtree_may_not_decide(api: Api) -> None:
    customer_id = rated_customer(api, org_unit="/HQ/U01/B02")
    assessment_id = assess(api, "manager.li", customer_id, INDIVIDUAL_INPUTS).json()["id"]
    err = problem(decide(api, "head.sun", assessment_id), 403)  # head of /HQ/U01/B01
    assert "/HQ/U01/B02" in err["detail"]
    problem(decide(api, "manager.li", assessment_id), 403)  # a manager never decides
    problem(decide(api, "risk.he", assessment_id), 403)
    other = rated_customer(api, org_unit="/HQ/U02/B01")
    other_id = assess(api, "manager.li", other, INDIVIDUAL_INPUTS).json()["id"]
    problem(decide(api, "approver.qian", other_id), 403)  # approver of /HQ/U01
    assert decide(api, "approver.hq", other_id).status_code == 200  # head office


def test_only_the_owner_or_serving_manager_assesses(api: Api) -> None:
    customer_id = rated_customer(api)
    err = problem(assess(api, "manager.zhou", customer_id, INDIVIDUAL_INPUTS), 403)
    assert "owner" in err["detail"]
    problem(assess(api, "teller.wang", customer_id, INDIVIDUAL_INPUTS), 403)
    problem(assess(api, "approver.qian", customer_id, INDIVIDUAL_INPUTS), 403)
    problem(assess(api, "auditor.chen", customer_id, INDIVIDUAL_INPUTS), 403)
    assert events_of(api, "rating.assessed") == []
    problem(assess(api, "admin", "00000000-0000-0000-0000-000000000000", {}), 404)


def test_readers_of_a_customers_assessments(api: Api) -> None:
    customer_id = rated_customer(api)
    ids = [assess(api, "manager.li", customer_id, INDIVIDUAL_INPUTS).json()["id"] for _ in range(3)]
    for who in ("auditor.chen", "approver.qian", "risk.he", "manager.li", "admin"):
        page = api.as_(who).get(f"/api/v1/customers/{customer_id}/ratings?limit=2").json()
        assert page["total"] == 3 and page["limit"] == 2, who
        assert [a["id"] for a in page["items"]] == [ids[2], ids[1]], who  # newest first
    rest = api.as_("auditor.chen").get(f"/api/v1/customers/{customer_id}/ratings?limit=2&offset=2")
    assert [a["id"] for a in rest.json()["items"]] == [ids[0]]
    assert api.as_("auditor.chen").get(f"{RATINGS}/{ids[0]}").json()["status"] == "superseded"
    problem(api.as_("manager.zhou").get(f"/api/v1/customers/{customer_id}/ratings"), 403)
    problem(api.as_("manager.zhou").get(f"{RATINGS}/{ids[0]}"), 403)
    problem(api.as_("teller.wang").get(f"{RATINGS}/{ids[0]}"), 403)
    problem(api.as_("auditor.chen").get(f"{RATINGS}/{customer_id}"), 404)


def test_inputs_a_factor_cannot_read_are_refused(api: Api) -> None:
    customer_id = rated_customer(api)
    err = problem(
        assess(api, "manager.li", customer_id, {**INDIVIDUAL_INPUTS, "shoe_size": 42}), 422
    )
    assert err["errors"] == [{"field": "inputs.shoe_size", "reason": "no such factor"}]
    err = problem(
        assess(api, "manager.li", customer_id, {**INDIVIDUAL_INPUTS, "annual_income": "lots"}), 422
    )
    assert err["errors"][0]["field"] == "inputs.annual_income"
    err = problem(
        assess(api, "manager.li", customer_id, {**INDIVIDUAL_INPUTS, "family": "huge"}), 422
    )
    assert err["errors"][0]["field"] == "inputs.family"
    assert events_of(api, "rating.assessed") == []


def test_a_grade_from_the_banks_credit_system_is_recorded_and_confirmed(api: Api) -> None:
    customer_id = rated_customer(api)
    problem(
        api.as_("manager.li").post(
            RATINGS, json={"customer_id": customer_id, "imported_grade": "AA"}
        ),
        422,
    )
    resp = api.as_("manager.li").post(
        RATINGS, json={"customer_id": customer_id, "imported_grade": "AA", "source": "CRS"}
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["status"], body["computed_grade"], body["scorecard_id"]) == (
        "assessed",
        "AA",
        "imported:CRS",
    )
    assert body["explanation"][0]["value"] == "AA"
    assert events_of(api, "rating.assessed")[0]["scorecard_id"] == "imported:CRS"
    problem(decide(api, "manager.li", body["id"]), 403)
    confirmed = decide(api, "approver.qian", body["id"]).json()
    assert (confirmed["status"], confirmed["final_grade"]) == ("confirmed", "AA")


def test_the_scorecards_are_listed_with_factors_and_scale(api: Api) -> None:
    cards = api.as_("manager.li").get("/api/v1/scorecards").json()
    assert sorted((c["id"], c["version"]) for c in cards) == [
        ("corporate", "2026-01-01"),
        ("farm_household", "2026-01-01"),
        ("individual", "2026-01-01"),
    ]
    individual = api.as_("auditor.chen").get("/api/v1/scorecards/individual").json()
    assert individual["kinds"] == ["individual", "individual_business"]
    assert [(g["grade"], g["min_score"]) for g in individual["scale"]] == [
        ("AAA", "90.00"),
        ("AA", "80.00"),
        ("A", "70.00"),
        ("BBB", "60.00"),
        ("BB", "50.00"),
        ("B", "40.00"),
        ("C", "0.00"),
    ]
    sources = {f["code"]: f["source"] for f in individual["factors"]}
    assert sources["deposit_balance"] == "system" and sources["character"] == "manual"
    problem(api.as_("auditor.chen").get("/api/v1/scorecards/nope"), 404)
    assert api.client.get("/api/v1/scorecards").status_code == 401


# -- at once (PostgreSQL: SQLite serialises writers) ------------------------------------------
@pytest.fixture
def pg_api(pg_databases: Databases, dev_keys: tuple[str, Path]) -> Iterator[Api]:
    with TestClient(create_app(rating_settings(pg_databases, dev_keys[1]))) as client:
        yield Api(client, {}, dev_keys[0])


def race(runtime: ServiceRuntime, calls: list[Callable[..., str]]) -> Counter[str]:
    """Run every ``call(session, recorder)`` at once, each in its own session (a barrier lines
    them up), committing its work; count the outcomes, a Conflict as "conflict"."""
    barrier = threading.Barrier(len(calls))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(call: Callable[..., str]) -> None:
        with runtime.session_factory() as session:
            barrier.wait()
            try:
                outcome = call(session, runtime.recorder)
                session.commit()
            except Conflict:
                outcome = "conflict"
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


APPROVERS = [
    Caller("approver.qian", "Qian", frozenset({"credit_approver"}), "/HQ/U01"),
    Caller("approver.hq", "Ma", frozenset({"credit_approver"}), "/HQ"),
    Caller("president.zhao", "Zhao", frozenset({"branch_president"}), "/HQ/U01"),
    Caller("head.sun", "Sun", frozenset({"outlet_head"}), "/HQ/U01/B01"),
]


@pytest.mark.postgres
def test_of_four_approvers_confirming_at_once_one_decides(pg_api: Api) -> None:
    customer_id = rated_customer(pg_api)
    assessment_id = assess(pg_api, "manager.li", customer_id, INDIVIDUAL_INPUTS).json()["id"]

    def confirm_as(caller: Caller) -> Callable[..., str]:
        return lambda session, recorder: (
            ratings.confirm(session, recorder, assessment_id, caller=caller).status
        )

    outcomes = race(runtime_of(pg_api), [confirm_as(caller) for caller in APPROVERS])
    assert outcomes == Counter({"confirmed": 1, "conflict": 3})
    assert len(events_of(pg_api, "rating.confirmed")) == 1


@pytest.mark.postgres
def test_of_five_assessments_at_once_one_stays_open(pg_api: Api) -> None:
    customer_id = rated_customer(pg_api)

    def assess_once(session: Any, recorder: Any) -> str:
        return ratings.assess(
            session,
            recorder,
            customer_id=customer_id,
            inputs=INDIVIDUAL_INPUTS,
            actor="manager.li",
            trigger="manual",
        ).status

    assert race(runtime_of(pg_api), [assess_once] * 5) == Counter({"assessed": 5})
    with runtime_of(pg_api).session_factory() as session:
        statuses = session.scalars(
            select(Assessment.status).where(Assessment.customer_id == customer_id)
        ).all()
    assert Counter(statuses) == Counter({"assessed": 1, "superseded": 4})
