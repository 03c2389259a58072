"""Org tree, staff and owners over HTTP: one owner per customer, per-role access, events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from services.assignment.rules import OWNERSHIPS
from tests.assignment.conftest import known_customer
from tests.customer.conftest import Api

ASSIGN = "/api/v1/assignments"


def events(api: Api, event_type: str) -> list[dict[str, Any]]:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    outbox = runtime.tables.outbox
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.envelope, outbox.c.key)
            .where(outbox.c.event_type == event_type)
            .order_by(outbox.c.seq)
        ).all()
    return [{**json.loads(envelope)["data"], "_key": key} for envelope, key in rows]


def assign(api: Api, who: str, customer_id: str, staff_id: str, **extra: Any) -> Any:
    body = {"customer_id": customer_id, "staff_id": staff_id, "reason": "rule", **extra}
    return api.as_(who).post(ASSIGN, json=body)


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


# -- org tree and staff -------------------------------------------------------------------------
def test_the_org_tree_is_kept_by_administrators(org: Api) -> None:
    units = org.as_("manager.li").get("/api/v1/org-units", params={"under": "/HQ/U01"}).json()
    assert [u["path"] for u in units["items"]] == ["/HQ/U01", "/HQ/U01/B01", "/HQ/U01/B02"]
    assert units["items"][1]["parent_path"] == "/HQ/U01"
    body = {"path": "/HQ/U01/B03", "name": "Outlet B03", "type": "outlet"}
    problem(org.as_("president.zhao").post("/api/v1/org-units", json=body), 403)
    orphan = {"path": "/HQ/U09/B01", "name": "Orphan", "type": "outlet"}
    err = problem(org.as_("admin").post("/api/v1/org-units", json=orphan), 422)
    assert err["errors"][0]["field"] == "path"
    again = {"path": "/HQ/U01", "name": "Again", "type": "county_union"}
    problem(org.as_("admin").post("/api/v1/org-units", json=again), 409)


def test_heads_manage_the_staff_of_their_subtree(org: Api) -> None:
    head = org.as_("head.sun")
    new = {"id": "manager.wu", "name": "Wu", "roles": ["wealth_manager"], "org_unit": "/HQ/U01/B01"}
    resp = head.post("/api/v1/staff", json=new)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == "/api/v1/staff/manager.wu"
    elsewhere = {**new, "id": "manager.xu", "org_unit": "/HQ/U01/B02"}
    problem(head.post("/api/v1/staff", json=elsewhere), 403)
    # A manager reads their own record, not a colleague's.
    assert org.as_("manager.li").get("/api/v1/staff/manager.li").status_code == 200
    problem(org.as_("manager.li").get("/api/v1/staff/manager.wu"), 404)
    listed = head.get("/api/v1/staff", params={"role": "customer_manager"}).json()
    assert [s["id"] for s in listed["items"]] == ["manager.li"]  # B02 and U02 are outside


def test_a_staff_update_names_the_version_it_read(org: Api) -> None:
    head = org.as_("head.sun")
    url = "/api/v1/staff/manager.li"
    problem(head.patch(url, json={"capacity": 10}), 428)
    problem(head.patch(url, json={"capacity": 10}, headers={"If-Match": '"7"'}), 412)
    resp = head.patch(url, json={"capacity": 10, "status": "leaving"}, headers={"If-Match": '"1"'})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["capacity"], resp.json()["status"], resp.headers["ETag"]) == (
        10,
        "leaving",
        '"2"',
    )
    problem(head.patch(url, json={"capacity": 11, "version": 1}), 409)
    bad = {"grade_certified_on": "2026-05-01", "grade_expires_on": "2026-01-01", "version": 2}
    problem(head.patch(url, json=bad), 422)


def test_the_role_filter_is_applied_before_the_page_is_cut(org: Api) -> None:
    def page(who: str, **params: Any) -> tuple[list[str], int]:
        resp = org.as_(who).get("/api/v1/staff", params=params)
        assert resp.status_code == 200, resp.text
        return [s["id"] for s in resp.json()["items"]], resp.json()["total"]

    both = {"id": "teller.he", "name": "He", "roles": ["teller", "customer_manager"]}
    resp = org.as_("admin").post("/api/v1/staff", json={**both, "org_unit": "/HQ/U01/B01"})
    assert resp.status_code == 201, resp.text
    # Customer managers by id: manager.far, manager.li, manager.zhou, teller.he (4 of 7 staff).
    assert page("admin", role="customer_manager", limit=2) == (["manager.far", "manager.li"], 4)
    assert page("admin", role="customer_manager", limit=2, offset=2) == (
        ["manager.zhou", "teller.he"],
        4,
    )
    assert page("admin", role="teller", limit=1, offset=1) == (["teller.wang"], 2)
    assert page("admin", role="manager") == ([], 0)  # a whole role, not a part of a name
    assert page("admin", role="customer_manager", status="leaving") == ([], 0)
    # Within the caller's subtree: B01's customer managers, one per page.
    assert page("head.sun", role="customer_manager", limit=1, offset=1) == (["teller.he"], 2)
    assert page("head.sun", role="customer_manager", org_unit="/HQ/U01/B02") == ([], 0)
    assert page("president.zhao", role="customer_manager", org_unit="/HQ/U01/B02") == (
        ["manager.zhou"],
        1,
    )


# -- owners -------------------------------------------------------------------------------------
def test_assign_transfer_and_release_keep_one_owner_and_announce_each_change(org: Api) -> None:
    customer_id = known_customer(org)
    resp = assign(org, "head.sun", customer_id, "manager.li", reason="marketed")
    assert resp.status_code == 200, resp.text
    assert resp.json()["owner"]["staff_id"] == "manager.li" and resp.json()["previous"] is None
    # A second assignment does not silently replace the owner.
    err = problem(assign(org, "head.sun", customer_id, "head.sun"), 409)
    assert err["current_owner"] == "manager.li"
    # A transfer names the owner it takes the customer from.
    stale = {"mode": "transfer", "from_staff_id": "teller.wang", "reason": "transfer"}
    problem(assign(org, "head.sun", customer_id, "head.sun", **stale), 409)
    moved = {"mode": "transfer", "from_staff_id": "manager.li", "reason": "customer_choice"}
    resp = assign(org, "head.sun", customer_id, "head.sun", **moved)
    assert resp.status_code == 200, resp.text
    assert resp.json()["previous"]["end_reason"] == "customer_choice"
    owner = org.as_("head.sun").get(f"/api/v1/customers/{customer_id}/owner").json()
    assert owner["owner"]["staff_id"] == "head.sun"
    release = {"customer_id": customer_id, "mode": "release", "from_staff_id": "head.sun"}
    assert org.as_("head.sun").post(ASSIGN, json=release).status_code == 200
    owner = org.as_("head.sun").get(f"/api/v1/customers/{customer_id}/owner").json()
    assert owner["owner"] is None
    history = org.as_("head.sun").get(f"/api/v1/customers/{customer_id}/owner-history").json()
    assert [(s["staff_id"], s["reason"], s["end_reason"]) for s in history] == [
        ("manager.li", "marketed", "customer_choice"),
        ("head.sun", "customer_choice", "transfer"),
    ]
    assert all(s["ended_at"] is not None for s in history)
    assert history[0]["ended_at"] <= history[1]["started_at"]
    assigned = events(org, "ownership.assigned")
    assert [(e["staff_id"], e["role"], e["_key"]) for e in assigned] == [
        ("manager.li", "owner", customer_id)
    ]
    transferred = events(org, "ownership.transferred")
    assert [(e["from_staff_id"], e["to_staff_id"]) for e in transferred] == [
        ("manager.li", "head.sun")
    ]
    assert [e["staff_id"] for e in events(org, "ownership.released")] == ["head.sun"]


def test_only_eligible_staff_with_room_take_customers(org: Api) -> None:
    customers = [known_customer(org) for _ in range(5)]
    err = problem(assign(org, "head.sun", customers[0], "auditor.chen"), 403)
    assert "/HQ" in err["detail"]  # the auditor's unit is above the head's subtree
    err = problem(assign(org, "admin", customers[0], "auditor.chen"), 422)
    assert err["errors"][0]["field"] == "staff_id" and "role" in err["errors"][0]["reason"]
    for customer_id in customers[:3]:  # manager.li's capacity is 3
        assert assign(org, "head.sun", customer_id, "manager.li").status_code == 200
    err = problem(assign(org, "head.sun", customers[3], "manager.li"), 422)
    assert "capacity" in err["errors"][0]["reason"]
    book = org.as_("manager.li").get("/api/v1/staff/manager.li/book").json()
    assert book["total"] == 3 and {e["customer_id"] for e in book["items"]} == set(customers[:3])
    assert book["items"][0]["name"] == "Zhang San"
    assert org.as_("head.sun").get("/api/v1/staff/manager.li").json()["book_size"] == 3
    # Someone who has left takes no customers.
    leaving = {"status": "left", "version": 1}
    assert org.as_("head.sun").patch("/api/v1/staff/teller.wang", json=leaving).status_code == 200
    err = problem(assign(org, "head.sun", customers[4], "teller.wang"), 422)
    assert "left" in err["errors"][0]["reason"]


def test_assignments_stay_within_the_callers_subtree(org: Api) -> None:
    far = known_customer(org, org_unit="/HQ/U02/B01")
    near = known_customer(org)
    problem(assign(org, "head.sun", far, "manager.li"), 403)
    problem(assign(org, "head.sun", near, "manager.far"), 403)
    problem(assign(org, "manager.li", near, "manager.li"), 403)  # managers claim, not assign
    problem(assign(org, "head.sun", "00000000-0000-4000-8000-00000000dead", "manager.li"), 404)
    incomplete = {"customer_id": near, "mode": "transfer", "staff_id": "manager.li"}
    err = problem(org.as_("head.sun").post(ASSIGN, json=incomplete), 422)
    assert err["errors"][0]["field"] == "from_staff_id"
    assert assign(org, "admin", far, "manager.far").status_code == 200


def test_owners_and_books_are_read_by_their_scope(org: Api) -> None:
    customer_id = known_customer(org)
    assert assign(org, "head.sun", customer_id, "manager.li").status_code == 200
    url = f"/api/v1/customers/{customer_id}/owner"
    for who in ("manager.li", "head.sun", "auditor.chen", "president.zhao", "admin"):
        resp = org.as_(who).get(url)
        assert resp.status_code == 200, (who, resp.text)
        assert resp.json()["owner"]["staff_id"] == "manager.li"
    for who in ("manager.zhou", "teller.wang"):
        problem(org.as_(who).get(url), 404)
        problem(org.as_(who).get(f"{url}-history"), 404)
    problem(org.as_("manager.zhou").get("/api/v1/staff/manager.li/book"), 404)
    assert org.as_("auditor.chen").get("/api/v1/staff/manager.li/book").json()["total"] == 1
    assert org.client.get(url).status_code == 401


def test_the_database_holds_one_open_ownership_per_customer(org: Api) -> None:
    customer_id = known_customer(org)
    assert assign(org, "head.sun", customer_id, "manager.li").status_code == 200
    runtime = org.client.app.state.runtime  # type: ignore[attr-defined]
    second = {
        "customer_id": customer_id,
        "staff_id": "head.sun",
        "org_unit": "/HQ/U01/B01",
        "reason": "rule",
        "started_at": datetime.now(UTC),
        "started_by": "test",
    }
    with runtime.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(insert(OWNERSHIPS), [second])
    # A closed span beside the open one is history, which the constraint allows.
    with runtime.engine.begin() as conn:
        conn.execute(insert(OWNERSHIPS), [{**second, "ended_at": datetime.now(UTC)}])


# -- what the rules read of customers ------------------------------------------------------------
def test_profiles_follow_the_customer_events(org: Api) -> None:
    from crmkit.consumer import RawRecord
    from crmkit.events import build_envelope
    from services.assignment.models import CustomerProfile
    from services.customer.events import CUSTOMER_FINANCIALS_UPDATED, CUSTOMER_TIER_CHANGED

    customer_id = known_customer(org)
    runtime = org.client.app.state.runtime  # type: ignore[attr-defined]

    def apply(spec: Any, data: dict[str, Any], offset: int) -> None:
        envelope = build_envelope(spec, data, source="customer", key=customer_id, actor="x")
        runtime.applier.apply_batch([RawRecord("crm.customer", 1, offset, envelope.to_bytes())])

    money = {
        "deposits": "1200000.00",
        "loans": "0.00",
        "personal_loans": "0.00",
        "aum": "1500000.00",
        "card_annual_spend": "0.00",
        "custody_margin": "0.00",
        "overdue_amount": "0.00",
        "net_interest_contribution": "0.00",
        "fee_income": "0.00",
        "card_level": None,
        "products": ["wealth", "deposit"],
    }
    apply(
        CUSTOMER_FINANCIALS_UPDATED,
        {"customer_id": customer_id, "business_date": "2026-11-27", **money},
        1,
    )
    earlier = {**money, "deposits": "5.00"}
    apply(
        CUSTOMER_FINANCIALS_UPDATED,
        {"customer_id": customer_id, "business_date": "2026-11-20", **earlier},
        2,
    )
    apply(
        CUSTOMER_TIER_CHANGED,
        {
            "customer_id": customer_id,
            "policy_version": "2026-01-01",
            "as_of": "2026-11-27",
            "changes": [
                {"dimension": "value_tier", "old": None, "new": "high", "reason": "deposits"}
            ],
            "value_tier": "high",
            "wealth_layer": "layer_2",
            "vip_level": "gold",
        },
        3,
    )
    with runtime.session_factory() as session:
        profile = session.get(CustomerProfile, customer_id)
        assert profile is not None
        assert (profile.value_tier, profile.wealth_layer, profile.vip_level) == (
            "high",
            "layer_2",
            "gold",
        )
        assert str(profile.deposits) == "1200000.00"  # the later day's figures stay
        assert profile.products == ["deposit", "wealth"]
        assert profile.kind == "individual" and profile.segment == "stock"


def test_staff_changes_are_announced_with_the_whole_record(org: Api) -> None:
    head = org.as_("head.sun")
    added = events(org, "staff.changed")
    assert {e["staff_id"] for e in added} >= {"manager.li", "head.sun", "teller.wang"}
    li = next(e for e in added if e["staff_id"] == "manager.li")
    assert (li["version"], li["capacity"], li["status"], li["_key"]) == (
        1,
        3,
        "active",
        "manager.li",
    )
    url = "/api/v1/staff/manager.li"
    resp = head.patch(url, json={"capacity": 9, "business_line": "personal", "version": 1})
    assert resp.status_code == 200, resp.text
    changed = events(org, "staff.changed")[-1]
    assert changed["changed"] == ["business_line", "capacity"]
    assert (changed["version"], changed["capacity"], changed["business_line"]) == (2, 9, "personal")
    # The same values again change nothing: no new version, no event.
    count = len(events(org, "staff.changed"))
    again = head.patch(url, json={"capacity": 9, "version": 2})
    assert again.status_code == 200 and again.json()["version"] == 2
    assert len(events(org, "staff.changed")) == count
