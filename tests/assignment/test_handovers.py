"""Handovers 离岗交接 over HTTP: frozen books, audits, the reassignment plan, approval, events;
and the auditors' spot-checks."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from crmkit import devauth
from crmkit.consumer import RawRecord
from crmkit.events import build_envelope
from services.customer.events import CUSTOMER_CREATED
from tests.assignment.conftest import known_customer
from tests.assignment.test_ownership import assign, events, problem
from tests.customer.conftest import Api

HANDOVERS = "/api/v1/handovers"
_offsets = itertools.count()


def customer(api: Api, org_unit: str = "/HQ/U01/B01", market_segment: str | None = None) -> str:
    """A customer known from a ``customer.created`` event carrying its market segment."""
    if market_segment is None:
        return known_customer(api, org_unit)
    customer_id = str(uuid.uuid4())
    data = {
        "customer_id": customer_id,
        "kind": "individual",
        "name": "Farmer",
        "org_unit": org_unit,
        "business_line": "agricultural",
        "status": "active",
        "segment": "stock",
        "market_segment": market_segment,
    }
    envelope = build_envelope(CUSTOMER_CREATED, data, source="customer", key=customer_id, actor="x")
    record = RawRecord("crm.customer", 7, next(_offsets), envelope.to_bytes())
    api.client.app.state.runtime.applier.apply_batch([record])  # type: ignore[attr-defined]
    return customer_id


def staff(
    api: Api, staff_id: str, unit: str, capacity: int | None, role: str = "customer_manager"
) -> None:
    body: dict[str, Any] = {"id": staff_id, "name": staff_id, "roles": [role], "org_unit": unit}
    if capacity is not None:
        body["capacity"] = capacity
    resp = api.as_("admin").post("/api/v1/staff", json=body)
    assert resp.status_code == 201, resp.text


def set_capacity(api: Api, staff_id: str, capacity: int) -> None:
    url = f"/api/v1/staff/{staff_id}"
    version = api.as_("admin").get(url).json()["version"]
    resp = api.as_("admin").patch(url, json={"capacity": capacity, "version": version})
    assert resp.status_code == 200, resp.text


def book_of(api: Api, staff_id: str, n: int, unit: str = "/HQ/U01/B01", **kw: Any) -> list[str]:
    ids = [customer(api, unit, **kw) for _ in range(n)]
    for customer_id in ids:
        assert assign(api, "admin", customer_id, staff_id).status_code == 200
    return ids


def start(api: Api, who: str, staff_id: str, cause: str = "departure") -> dict[str, Any]:
    resp = api.as_(who).post(HANDOVERS, json={"staff_id": staff_id, "cause": cause})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"{HANDOVERS}/{resp.json()['id']}"
    body: dict[str, Any] = resp.json()
    return body


def audit(api: Api, handover_id: str, customer_id: str, finding: str = "clear", **kw: Any) -> Any:
    body = {"customer_id": customer_id, "finding": finding, **kw}
    return api.as_("auditor.chen").post(f"{HANDOVERS}/{handover_id}/audits", json=body)


def as_token(api: Api, sub: str, roles: list[str], org_unit: str) -> dict[str, str]:
    claims = {"sub": sub, "name": sub, "roles": roles, "org_unit": org_unit}
    return {"Authorization": f"Bearer {devauth.sign(claims, api.private_pem)}"}


def owners(api: Api, customer_ids: list[str]) -> dict[str, str]:
    out = {}
    for customer_id in customer_ids:
        owner = api.as_("admin").get(f"/api/v1/customers/{customer_id}/owner").json()["owner"]
        out[customer_id] = owner["staff_id"]
    return out


# -- end to end -----------------------------------------------------------------------------------
def test_a_departure_freezes_the_book_until_every_customer_is_audited_clear_and_moved(
    org: Api,
) -> None:
    book = book_of(org, "manager.li", 3)
    handover = start(org, "head.sun", "manager.li")
    hid = handover["id"]
    assert handover["status"] == "open" and handover["cause"] == "departure"
    assert sorted(c["customer_id"] for c in handover["customers"]) == sorted(book)
    assert sorted(handover["unaudited"]) == sorted(book) and handover["unplanned"] == []
    assert org.as_("admin").get("/api/v1/staff/manager.li").json()["status"] == "leaving"
    err = problem(
        org.as_("president.zhao").post(
            HANDOVERS, json={"staff_id": "manager.li", "cause": "rotation"}
        ),
        409,
    )
    assert hid in err["existing"]
    # The book is frozen: nothing moves out of it, nothing new comes in.
    moved = {"mode": "transfer", "from_staff_id": "manager.li"}
    err = problem(assign(org, "head.sun", book[0], "teller.wang", **moved), 409)
    assert err["handover"] == hid
    err = problem(assign(org, "head.sun", known_customer(org), "manager.li"), 422)
    assert "frozen" in err["errors"][-1]["reason"]
    # Unaudited customers block the approval, and so does an issue.
    err = problem(org.as_("head.sun").post(f"{HANDOVERS}/{hid}/approve"), 409)
    assert sorted(err["unaudited"]) == sorted(book)
    assert audit(org, hid, book[0]).status_code == 200
    assert audit(org, hid, book[1]).status_code == 200
    err = problem(audit(org, hid, book[2], "issue"), 422)
    assert err["errors"][0]["field"] == "remedy"
    resp = audit(org, hid, book[2], "issue", remedy="Collateral papers missing; file them")
    assert resp.status_code == 200 and resp.json()["audited_by"] == "auditor.chen"
    problem(audit(org, hid, known_customer(org)), 422)  # not in the handed-over book
    err = problem(org.as_("head.sun").post(f"{HANDOVERS}/{hid}/approve", json={}), 409)
    assert (err["issues"], err["unaudited"]) == ([book[2]], [])
    # A later finding replaces the earlier one.
    resp = audit(org, hid, book[2], "clear")
    assert (resp.json()["finding"], resp.json()["remedy"]) == ("clear", None)
    plan = org.as_("auditor.chen").get(f"{HANDOVERS}/{hid}").json()
    planned = {c["customer_id"]: c["receiver_id"] for c in plan["customers"]}
    assert plan["unaudited"] == plan["issues"] == plan["unplanned"] == []

    resp = org.as_("head.sun").post(f"{HANDOVERS}/{hid}/approve")
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert done["status"] == "completed" and done["completed_by"] == "head.sun"
    assert {c["customer_id"]: c["moved_to"] for c in done["customers"]} == planned
    assert owners(org, book) == planned
    transferred = events(org, "ownership.transferred")
    assert sorted((e["customer_id"], e["to_staff_id"], e["reason"]) for e in transferred) == sorted(
        (c, s, "handover") for c, s in planned.items()
    )
    [started] = events(org, "handover.started")
    assert (started["handover_id"], started["customer_count"]) == (hid, 3)
    [completed] = events(org, "handover.completed")
    assert (completed["staff_id"], completed["staff_status"], completed["_key"]) == (
        "manager.li",
        "left",
        "manager.li",
    )
    assert org.as_("admin").get("/api/v1/staff/manager.li").json()["status"] == "left"
    assert org.as_("admin").get("/api/v1/staff/manager.li/book").json()["total"] == 0
    problem(org.as_("head.sun").post(f"{HANDOVERS}/{hid}/approve"), 409)  # already completed
    listed = org.as_("head.sun").get(HANDOVERS, params={"status": "completed"}).json()
    assert [h["id"] for h in listed["items"]] == [hid] and listed["total"] == 1
    assert org.as_("manager.zhou").get(HANDOVERS).json()["total"] == 0
    assert org.as_("manager.li").get(HANDOVERS).json()["total"] == 1  # their own


# -- the plan -------------------------------------------------------------------------------------
def test_the_plan_fills_the_same_outlet_up_to_capacity_and_approval_resumes(org: Api) -> None:
    staff(org, "manager.old", "/HQ/U01/B01", None)
    set_capacity(org, "head.sun", 0)  # full
    set_capacity(org, "teller.wang", 1)  # manager.li: 3
    book = book_of(org, "manager.old", 6)
    handover = start(org, "head.sun", "manager.old", cause="rotation")
    hid = handover["id"]
    plan = {c["customer_id"]: (c["receiver_id"], c["plan_basis"]) for c in handover["customers"]}
    receivers = [r for r, _ in plan.values()]
    assert (receivers.count("manager.li"), receivers.count("teller.wang")) == (3, 1)
    assert {basis for r, basis in plan.values() if r} == {"same_unit"}
    unplanned = sorted(c for c, (r, _) in plan.items() if r is None)
    assert len(unplanned) == 2 and sorted(handover["unplanned"]) == unplanned
    for customer_id in book:
        assert audit(org, hid, customer_id).status_code == 200
    err = problem(org.as_("head.sun").post(f"{HANDOVERS}/{hid}/approve"), 409)
    assert sorted(err["unplanned"]) == unplanned and err["unaudited"] == []
    # The president of the union overrides the plan; one receiver turns out to be full.
    first, second = unplanned
    overrides = {first: "manager.zhou", second: "head.sun"}
    president = org.as_("president.zhao")
    err = problem(president.post(f"{HANDOVERS}/{hid}/approve", json={"overrides": overrides}), 422)
    assert "capacity" in err["errors"][0]["reason"]
    state = {c["customer_id"]: c for c in president.get(f"{HANDOVERS}/{hid}").json()["customers"]}
    assert state[second]["moved_to"] is None
    moved_before = {c for c in book if c < second}
    assert {c for c, row in state.items() if row["moved_to"]} == moved_before
    # Approving again moves the rest, once each.
    overrides = {second: "manager.zhou"}
    resp = president.post(f"{HANDOVERS}/{hid}/approve", json={"overrides": overrides})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed"
    final = owners(org, book)
    expected = {c: r for c, (r, _) in plan.items() if r} | {first: "manager.zhou"}
    assert final == expected | {second: "manager.zhou"}
    assert len(events(org, "ownership.transferred")) == 6
    assert org.as_("admin").get("/api/v1/staff/manager.old").json()["status"] == "active"
    # After a rotation the book is no longer frozen: the manager takes customers again.
    assert assign(org, "head.sun", known_customer(org), "manager.old").status_code == 200
    assert org.as_("admin").get("/api/v1/staff/manager.li").json()["book_size"] == 3


def test_the_plan_prefers_the_same_parent_then_the_industry(org: Api) -> None:
    set_capacity(org, "manager.zhou", 0)
    staff(org, "manager.old", "/HQ/U01/B02", None)
    staff(org, "manager.a", "/HQ/U01/B02", 5)
    staff(org, "manager.b", "/HQ/U01/B02", 5)
    book_of(org, "manager.a", 1, "/HQ/U01/B02", market_segment="dairy")
    book_of(org, "manager.b", 1, "/HQ/U01/B02", market_segment="orchard")
    [orchard] = book_of(org, "manager.old", 1, "/HQ/U01/B02", market_segment="orchard")
    [dairy] = book_of(org, "manager.old", 1, "/HQ/U01/B02", market_segment="dairy")
    handover = start(org, "president.zhao", "manager.old", cause="long_leave")
    plan = {c["customer_id"]: (c["receiver_id"], c["plan_basis"]) for c in handover["customers"]}
    assert plan == {orchard: ("manager.b", "same_unit"), dairy: ("manager.a", "same_unit")}
    # With the outlet full, the plan looks to the other outlets of the union.
    set_capacity(org, "manager.a", 1)
    set_capacity(org, "manager.b", 1)
    resp = org.as_("president.zhao").post(f"{HANDOVERS}/{handover['id']}/plan")
    assert resp.status_code == 200, resp.text
    plan = {c["customer_id"]: (c["receiver_id"], c["plan_basis"]) for c in resp.json()["customers"]}
    # head.sun holds no capacity: the most room; manager.far (another union) is out of scope.
    assert plan == {orchard: ("head.sun", "same_parent"), dairy: ("head.sun", "same_parent")}


# -- who may do what ------------------------------------------------------------------------------
def test_only_auditors_of_the_subtree_audit_and_only_heads_start_and_approve(org: Api) -> None:
    [customer_id] = book_of(org, "manager.li", 1)
    problem(
        org.as_("manager.li").post(
            HANDOVERS, json={"staff_id": "manager.li", "cause": "departure"}
        ),
        404,
    )
    problem(
        org.as_("auditor.chen").post(
            HANDOVERS, json={"staff_id": "manager.li", "cause": "departure"}
        ),
        403,
    )
    problem(
        org.as_("head.sun").post(
            HANDOVERS, json={"staff_id": "manager.zhou", "cause": "departure"}
        ),
        404,
    )
    hid = start(org, "head.sun", "manager.li", cause="transfer")["id"]
    body = {"customer_id": customer_id, "finding": "clear"}
    for who in ("head.sun", "president.zhao", "manager.li", "approver.qian"):
        problem(org.as_(who).post(f"{HANDOVERS}/{hid}/audits", json=body), 403)
    far = as_token(org, "auditor.far", ["auditor"], "/HQ/U02")
    problem(org.client.post(f"{HANDOVERS}/{hid}/audits", json=body, headers=far), 404)
    problem(org.client.get(f"{HANDOVERS}/{hid}", headers=far), 404)
    assert audit(org, hid, customer_id).status_code == 200
    problem(org.as_("auditor.chen").post(f"{HANDOVERS}/{hid}/approve"), 403)
    problem(org.as_("manager.zhou").post(f"{HANDOVERS}/{hid}/approve"), 404)
    assert org.as_("head.sun").post(f"{HANDOVERS}/{hid}/approve").status_code == 200
    assert org.as_("admin").get("/api/v1/staff/manager.li").json()["status"] == "active"


# -- spot-checks ----------------------------------------------------------------------------------
def test_spot_checks_draw_random_or_least_recently_checked_samples(org: Api) -> None:
    book = set(book_of(org, "manager.li", 3))
    auditor = org.as_("auditor.chen")

    def draw(**body: Any) -> dict[str, Any]:
        resp = auditor.post("/api/v1/spot-checks", json={"staff_id": "manager.li", **body})
        assert resp.status_code == 201, resp.text
        out: dict[str, Any] = resp.json()
        return out

    one = draw(size=2, seed=42)
    assert len(one["customer_ids"]) == 2 and set(one["customer_ids"]) <= book
    assert draw(size=2, seed=42)["customer_ids"] == one["customer_ids"]  # seedable
    everyone = draw(size=10, mode="random")
    assert (everyone["size"], set(everyone["customer_ids"])) == (3, book)
    # Scheduled: the least recently checked first.
    first = draw(size=1, mode="scheduled")["customer_ids"]
    second = draw(size=1, mode="scheduled")["customer_ids"]
    third = draw(size=1, mode="scheduled")["customer_ids"]
    assert set(first + second + third) == book
    assert draw(size=1, mode="scheduled")["customer_ids"] == first
    got = auditor.get(f"/api/v1/spot-checks/{one['id']}").json()
    assert (got["auditor"], got["customer_ids"]) == ("auditor.chen", one["customer_ids"])
    # Auditors of the subtree only.
    body = {"staff_id": "manager.li", "size": 1}
    problem(org.as_("head.sun").post("/api/v1/spot-checks", json=body), 403)
    far = as_token(org, "auditor.far", ["auditor"], "/HQ/U02")
    problem(org.client.post("/api/v1/spot-checks", json=body, headers=far), 404)
    problem(org.client.get(f"/api/v1/spot-checks/{one['id']}", headers=far), 404)
    problem(auditor.post("/api/v1/spot-checks", json={**body, "size": 0}), 422)
