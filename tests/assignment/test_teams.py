"""Teams 团队维护 over HTTP: the eight cases, compliant teams, validation, events, scoping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from crmkit import devauth
from crmkit.db import utcnow
from services.assignment.models import Base, CustomerProfile
from services.customer.events import CUSTOMER_FINANCIALS_UPDATED
from tests.assignment.test_ownership import assign, events, problem
from tests.assignment.test_rules import ZERO, _record, customer, staff
from tests.customer.conftest import Api

TEAMS = "/api/v1/teams"
VIOLATIONS = f"{TEAMS}/violations"
DESIGNATIONS = f"{TEAMS}/designations"
PROFILES = Base.metadata.tables[CustomerProfile.__tablename__]


@pytest.fixture
def bank(org: Api) -> Api:
    """The test org with leaders and managers of every grade."""
    staff(org, "president.zhao", ["branch_president"], "/HQ/U01")
    staff(org, "leader.he", ["head_office_leader"], "/HQ")
    staff(org, "senior.qin", ["customer_manager"], "/HQ/U01/B01", grade="senior")
    staff(org, "trainee.xu", ["customer_manager"], "/HQ/U01/B01", grade="trainee")
    staff(org, "personal.yu", ["customer_manager"], "/HQ/U01/B01", grade="regular")
    for user, roles, unit in (
        ("dept.wu", ["line_department"], "/HQ/D01"),
        ("ops.bot", ["ops"], "/HQ"),
    ):
        org.tokens[user] = devauth.sign(
            {"sub": user, "name": user, "roles": roles, "org_unit": unit}, org.private_pem
        )
    return org


def owned(api: Api, owner: str = "personal.yu", reason: str = "rule", **kwargs: Any) -> str:
    customer_id = customer(api, **kwargs)
    resp = assign(api, "admin", customer_id, owner, reason=reason)
    assert resp.status_code == 200, resp.text
    return customer_id


def figures(api: Api, customer_id: str, **values: Any) -> None:
    data = {
        "customer_id": customer_id,
        "business_date": "2026-11-28",
        "deposits": ZERO,
        "loans": ZERO,
        "personal_loans": ZERO,
        "aum": ZERO,
        "card_annual_spend": ZERO,
        "custody_margin": ZERO,
        "overdue_amount": ZERO,
        "net_interest_contribution": ZERO,
        "fee_income": ZERO,
        "card_level": None,
        "products": [],
        **values,
    }
    record = _record(CUSTOMER_FINANCIALS_UPDATED, data, customer_id)
    api.client.app.state.runtime.applier.apply_batch([record])  # type: ignore[attr-defined]


def put_team(api: Api, who: str, customer_id: str, *members: tuple[str, str]) -> Any:
    body = {"members": [{"staff_id": s, "role": r} for s, r in members]}
    return api.as_(who).put(f"{TEAMS}/{customer_id}", json=body)


def listed(api: Api, who: str = "admin", **params: Any) -> dict[str, dict[str, Any]]:
    resp = api.as_(who).get(VIOLATIONS, params=params)
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert page["total"] == len(page["items"]) or "limit" in params
    return {v["customer_id"]: v for v in page["items"]}


# -- the eight cases ----------------------------------------------------------------------------
def test_each_case_makes_a_customer_need_a_team(bank: Api) -> None:
    large = owned(bank, value_tier="high")
    great = owned(bank, wealth_layer="layer_1")
    diamond = owned(bank, vip_level="diamond")
    credit = owned(bank, loans="50000.00")
    new_large = owned(bank, reason="marketed", value_tier="high")
    new_product = owned(bank, products=["deposit", "e_banking"])
    anomaly = owned(bank)
    figures(bank, anomaly)  # its profile, which the rating service's flag would set
    with bank.client.app.state.runtime.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            update(PROFILES).where(PROFILES.c.customer_id == anomaly).values(risk_flag="fraud")
        )
    at_risk = owned(bank)
    figures(bank, at_risk, overdue_amount="120.50")
    designated = owned(bank)
    resp = bank.as_("dept.wu").post(
        DESIGNATIONS, json={"customer_id": designated, "reason": "pilot of the new loan product"}
    )
    assert resp.status_code == 201, resp.text
    plain = owned(bank, value_tier="middle", products=["deposit"])
    unowned = customer(bank, loans="10.00")

    got = listed(bank)
    expected = {
        large: ["large_core"],
        great: ["great_value"],
        diamond: ["great_value"],
        credit: ["credit_exposure"],
        new_large: ["large_core", "new_large"],
        new_product: ["new_product"],
        anomaly: ["anomaly"],
        at_risk: ["at_risk"],
        designated: ["designated"],
        unowned: ["credit_exposure"],
    }
    assert {c: v["cases"] for c, v in got.items()} == expected
    assert plain not in got
    assert got[large]["missing"] == ["team", "senior_lead", "accountable_leader"]
    assert got[great]["missing"] == ["team", "accountable_leader"]
    assert got[credit]["missing"] == ["team"]
    assert (got[credit]["owner"], got[credit]["managers"]) == ("personal.yu", 1)
    assert got[unowned]["missing"] == ["first_responsible", "team"]
    assert got[unowned]["owner"] is None
    # Filtered by case; paginated.
    assert set(listed(bank, case="great_value")) == {great, diamond}
    page = bank.as_("admin").get(VIOLATIONS, params={"limit": 3, "offset": 9}).json()
    assert (page["total"], len(page["items"]), page["limit"]) == (10, 1, 3)


def test_the_overdue_amount_follows_the_figures(bank: Api) -> None:
    at_risk = owned(bank)
    figures(bank, at_risk, overdue_amount="0.01")
    assert listed(bank)[at_risk]["cases"] == ["at_risk"]
    figures(bank, at_risk, business_date="2026-11-29", overdue_amount=ZERO)
    assert at_risk not in listed(bank)


def test_a_customer_marketed_long_ago_is_no_longer_newly_developed(bank: Api) -> None:
    old = owned(bank, reason="marketed", value_tier="high")
    with bank.client.app.state.runtime.engine.begin() as conn:  # type: ignore[attr-defined]
        ownerships = Base.metadata.tables["ownerships"]
        conn.execute(
            update(ownerships)
            .where(ownerships.c.customer_id == old)
            .values(started_at=utcnow() - timedelta(days=366))
        )
    assert listed(bank)[old]["cases"] == ["large_core"]


# -- compliant teams ----------------------------------------------------------------------------
def test_a_compliant_team_removes_the_violation(bank: Api) -> None:
    credit = owned(bank, loans="50000.00")
    other = owned(bank, loans="70000.00")
    resp = put_team(
        bank, "head.sun", credit, ("personal.yu", "first_responsible"), ("manager.li", "member")
    )
    assert resp.status_code == 200, resp.text
    team = resp.json()
    assert (team["first_responsible"], team["managers"], team["compliant"]) == (
        "personal.yu",
        2,
        True,
    )
    assert team["cases"] == ["credit_exposure"] and team["missing"] == []
    assert [(m["staff_id"], m["role"]) for m in team["members"]] == [
        ("personal.yu", "first_responsible"),
        ("manager.li", "member"),
    ]
    assert team["members"][1]["added_by"] == "head.sun"
    got = listed(bank)
    assert credit not in got and other in got
    # The member reads the team; a manager who does not serve the customer does not.
    assert bank.as_("manager.li").get(f"{TEAMS}/{credit}").json()["compliant"] is True
    problem(bank.as_("manager.zhou").get(f"{TEAMS}/{credit}"), 404)
    # A member who leaves breaks the team again.
    left = {"status": "left", "version": 1}
    assert bank.as_("admin").patch("/api/v1/staff/manager.li", json=left).status_code == 200
    assert listed(bank)[credit]["missing"] == ["managers"]


def test_a_core_customer_needs_a_senior_lead_and_an_accountable_leader(bank: Api) -> None:
    core = owned(bank, value_tier="high")
    members = [("personal.yu", "first_responsible"), ("manager.li", "member")]
    err = problem(put_team(bank, "admin", core, *members), 422)
    assert {e["reason"] for e in err["errors"]} == {
        "a senior lead is required for this customer",
        "an accountable leader is required for this customer",
    }
    err = problem(put_team(bank, "admin", core, *members, ("trainee.xu", "senior_lead")), 422)
    assert err["errors"][0]["field"] == "members[2].staff_id"
    assert "grade trainee" in err["errors"][0]["reason"]
    full = [*members, ("senior.qin", "senior_lead"), ("president.zhao", "accountable_leader")]
    resp = put_team(bank, "admin", core, *full)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["managers"], resp.json()["missing"]) == (3, [])
    assert core not in listed(bank)
    # The senior lead's grade lapses to regular: the core customer lacks a senior lead.
    regular = {"grade": "regular", "version": 1}
    assert bank.as_("admin").patch("/api/v1/staff/senior.qin", json=regular).status_code == 200
    violation = listed(bank)[core]
    assert (violation["cases"], violation["missing"]) == (["large_core"], ["senior_lead"])


def test_a_high_value_customer_needs_an_accountable_leader(bank: Api) -> None:
    rich = owned(bank, wealth_layer="layer_1")
    members = [("personal.yu", "first_responsible"), ("manager.li", "member")]
    err = problem(put_team(bank, "admin", rich, *members), 422)
    assert err["cases"] == ["great_value"]
    not_a_leader = ("manager.zhou", "accountable_leader")
    err = problem(put_team(bank, "admin", rich, *members, not_a_leader), 422)
    assert "not a leader" in err["errors"][0]["reason"]
    resp = put_team(bank, "admin", rich, *members, ("leader.he", "accountable_leader"))
    assert resp.status_code == 200, resp.text
    assert rich not in listed(bank)
    left = {"status": "left", "version": 1}
    assert bank.as_("admin").patch("/api/v1/staff/leader.he", json=left).status_code == 200
    assert listed(bank)[rich]["missing"] == ["accountable_leader"]


# -- validation ---------------------------------------------------------------------------------
def test_setting_a_team_is_validated(bank: Api) -> None:
    credit = owned(bank, loans="1.00")
    pair = [("personal.yu", "first_responsible"), ("manager.li", "member")]
    problem(put_team(bank, "admin", "0" * 36, *pair), 404)
    problem(put_team(bank, "manager.li", credit, *pair), 403)  # not a head
    far = owned(bank, owner="manager.far", org_unit="/HQ/U02/B01", loans="1.00")
    problem(put_team(bank, "head.sun", far, ("manager.far", "first_responsible")), 403)
    # The first responsible is the owner.
    err = problem(put_team(bank, "admin", credit, ("manager.li", "first_responsible")), 409)
    assert err["current_owner"] == "personal.yu"
    problem(put_team(bank, "admin", customer(bank), *pair), 409)  # no owner yet
    # Two managers at least, one first responsible, each once.
    problem(put_team(bank, "admin", credit, ("personal.yu", "first_responsible")), 422)
    problem(put_team(bank, "admin", credit, ("manager.li", "member")), 422)
    two_firsts = [*pair, ("teller.wang", "first_responsible")]
    problem(put_team(bank, "admin", credit, *two_firsts), 422)
    problem(put_team(bank, "admin", credit, *pair, ("manager.li", "member")), 422)
    # Members are active staff who hold a book.
    err = problem(put_team(bank, "admin", credit, pair[0], ("nobody", "member")), 422)
    assert err["errors"] == [{"field": "members[1].staff_id", "reason": "no staff nobody"}]
    problem(put_team(bank, "admin", credit, pair[0], ("auditor.chen", "member")), 422)
    left = {"status": "left", "version": 1}
    assert bank.as_("admin").patch("/api/v1/staff/teller.wang", json=left).status_code == 200
    problem(put_team(bank, "admin", credit, pair[0], ("teller.wang", "member")), 422)
    problem(bank.as_("admin").put(f"{TEAMS}/{credit}", json={"members": []}), 422)
    assert events(bank, "ownership.assigned")[-1]["role"] == "owner"  # nothing published
    assert bank.as_("admin").get(f"{TEAMS}/{credit}").json()["members"] == [
        {
            "staff_id": "personal.yu",
            "role": "first_responsible",
            "name": "personal.yu",
            "org_unit": "/HQ/U01/B01",
            "status": "active",
            "grade": "regular",
            "added_at": None,
            "added_by": None,
        }
    ]


# -- events -------------------------------------------------------------------------------------
def test_members_added_and_removed_are_announced(bank: Api) -> None:
    credit = owned(bank, loans="1.00")
    first = ("personal.yu", "first_responsible")
    assert put_team(bank, "admin", credit, first, ("manager.li", "member")).status_code == 200
    added = [e for e in events(bank, "ownership.assigned") if e["role"] == "team_member"]
    assert [(e["staff_id"], e["team_role"], e["org_unit"], e["_key"]) for e in added] == [
        ("manager.li", "member", "/HQ/U01/B01", credit)
    ]
    # Setting the same team again changes and announces nothing.
    assert put_team(bank, "admin", credit, first, ("manager.li", "member")).status_code == 200
    assert len([e for e in events(bank, "ownership.assigned") if e["role"] == "team_member"]) == 1
    resp = put_team(
        bank, "admin", credit, first, ("manager.zhou", "member"), ("senior.qin", "senior_lead")
    )
    assert resp.status_code == 200, resp.text
    added = [e for e in events(bank, "ownership.assigned") if e["role"] == "team_member"]
    assert [(e["staff_id"], e["team_role"]) for e in added[1:]] == [
        ("manager.zhou", "member"),
        ("senior.qin", "senior_lead"),
    ]
    released = [e for e in events(bank, "ownership.released") if e["role"] == "team_member"]
    assert [(e["staff_id"], e["team_role"], e["_key"]) for e in released] == [
        ("manager.li", "member", credit)
    ]
    assert all(e["effective_at"] for e in released + added)


# -- designations and scope ---------------------------------------------------------------------
def test_designations_are_made_by_product_and_internal_control_staff(bank: Api) -> None:
    customer_id = owned(bank)
    body = {"customer_id": customer_id, "reason": "internal control: unusual transfers"}
    problem(bank.as_("manager.li").post(DESIGNATIONS, json=body), 403)
    problem(bank.as_("head.sun").post(DESIGNATIONS, json=body), 403)
    unknown = {**body, "customer_id": "1" * 36}
    problem(bank.as_("auditor.chen").post(DESIGNATIONS, json=unknown), 404)
    problem(bank.as_("auditor.chen").post(DESIGNATIONS, json={**body, "reason": ""}), 422)
    resp = bank.as_("auditor.chen").post(DESIGNATIONS, json=body)
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert (made["designated_by"], made["org_unit"], made["closed_at"]) == (
        "auditor.chen",
        "/HQ/U01/B01",
        None,
    )
    err = problem(bank.as_("dept.wu").post(DESIGNATIONS, json=body), 409)
    assert err["existing"] == made["id"]
    assert listed(bank)[customer_id]["cases"] == ["designated"]


def test_violations_are_scoped_to_the_callers_subtree(bank: Api) -> None:
    b01 = owned(bank, loans="1.00")
    b02 = owned(bank, owner="manager.zhou", org_unit="/HQ/U01/B02", loans="1.00")
    u02 = owned(bank, owner="manager.far", org_unit="/HQ/U02/B01", loans="1.00")
    assert set(listed(bank)) == {b01, b02, u02}
    assert set(listed(bank, "president.zhao")) == {b01, b02}
    assert set(listed(bank, "approver.qian")) == {b01, b02}
    assert set(listed(bank, "head.sun")) == {b01}
    assert set(listed(bank, "auditor.chen", org_unit="/HQ/U02")) == {u02}
    assert set(listed(bank, "head.sun", org_unit="/HQ/U02")) == set()  # narrows, never widens
    assert set(listed(bank, "manager.zhou")) == {b02}  # their own book
    assert set(listed(bank, "manager.li")) == set()
    problem(bank.as_("ops.bot").get(VIOLATIONS), 403)


def designate(api: Api, customer_id: str, who: str = "auditor.chen") -> str:
    body = {"customer_id": customer_id, "reason": "internal control: unusual transfers"}
    resp = api.as_(who).post(DESIGNATIONS, json=body)
    assert resp.status_code == 201, resp.text
    designation_id: str = resp.json()["id"]
    return designation_id


def test_closing_a_designation_dissolves_a_team_no_longer_required(bank: Api) -> None:
    customer_id = owned(bank)  # no case of its own
    designation_id = designate(bank, customer_id)
    first = ("personal.yu", "first_responsible")
    team = put_team(bank, "admin", customer_id, first, ("manager.li", "member"))
    assert team.status_code == 200, team.text
    assert (team.json()["cases"], team.json()["designation_id"]) == (["designated"], designation_id)
    close = f"{DESIGNATIONS}/{designation_id}/close"
    reason = {"reason": "review done: transfers explained"}
    problem(bank.as_("manager.li").post(close, json=reason), 403)
    problem(bank.as_("head.sun").post(close, json=reason), 403)  # heads set teams, not this
    problem(bank.as_("dept.wu").post(f"{DESIGNATIONS}/nope/close", json=reason), 404)
    problem(bank.as_("dept.wu").post(close, json={"reason": ""}), 422)

    resp = bank.as_("dept.wu").post(close, json=reason)
    assert resp.status_code == 200, resp.text
    closed = resp.json()
    assert (closed["closed_by"], closed["close_reason"], closed["cases"], closed["released"]) == (
        "dept.wu",
        "review done: transfers explained",
        [],
        ["manager.li"],
    )
    assert closed["closed_at"] is not None
    released = [e for e in events(bank, "ownership.released") if e["role"] == "team_member"]
    assert [(e["customer_id"], e["staff_id"], e["team_role"], e["_key"]) for e in released] == [
        (customer_id, "manager.li", "member", customer_id)
    ]
    after = bank.as_("admin").get(f"{TEAMS}/{customer_id}").json()
    assert [m["staff_id"] for m in after["members"]] == ["personal.yu"]  # the owner stays
    assert (after["cases"], after["designation_id"]) == ([], None)
    assert customer_id not in listed(bank)
    err = problem(bank.as_("dept.wu").post(close, json=reason), 409)
    assert err["closed_by"] == "dept.wu"
    assert designate(bank, customer_id, "dept.wu") != designation_id  # may be named again


def test_a_team_still_required_stays_when_its_designation_closes(bank: Api) -> None:
    credit = owned(bank, loans="1.00")  # credit exposure
    designation_id = designate(bank, credit)
    first = ("personal.yu", "first_responsible")
    assert put_team(bank, "admin", credit, first, ("manager.li", "member")).status_code == 200
    resp = bank.as_("auditor.chen").post(
        f"{DESIGNATIONS}/{designation_id}/close", json={"reason": "no longer needed"}
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["cases"], resp.json()["released"]) == (["credit_exposure"], [])
    assert [e for e in events(bank, "ownership.released") if e["role"] == "team_member"] == []
    team = bank.as_("admin").get(f"{TEAMS}/{credit}").json()
    assert [m["staff_id"] for m in team["members"]] == ["personal.yu", "manager.li"]
    assert (team["cases"], team["compliant"]) == (["credit_exposure"], True)
