"""Claims 认领 over HTTP: the first valid claim wins, the others wait for a head."""

from __future__ import annotations

from typing import Any

from tests.assignment.conftest import known_customer
from tests.assignment.test_ownership import assign, events, problem
from tests.customer.conftest import Api

CLAIMS = "/api/v1/claims"


def claim(api: Api, who: str, customer_id: str, note: str | None = "met at the market") -> Any:
    return api.as_(who).post(CLAIMS, json={"customer_id": customer_id, "note": note})


def decide(api: Api, who: str, claim_id: str, decision: str, reason: str | None = None) -> Any:
    body = {"decision": decision, "reason": reason}
    return api.as_(who).post(f"{CLAIMS}/{claim_id}/decide", json=body)


def owner(api: Api, customer_id: str) -> str | None:
    body = api.as_("admin").get(f"/api/v1/customers/{customer_id}/owner").json()
    return body["owner"]["staff_id"] if body["owner"] else None


def test_the_first_claim_wins_and_later_claims_wait_for_a_head(org: Api) -> None:
    customer_id = known_customer(org)
    resp = claim(org, "manager.li", customer_id)
    assert resp.status_code == 201, resp.text
    first = resp.json()
    assert resp.headers["Location"] == f"{CLAIMS}/{first['id']}"
    assert (first["status"], first["claimant_id"], first["owner_at_claim"]) == (
        "granted",
        "manager.li",
        None,
    )
    assert first["decided_at"] is not None and first["org_unit"] == "/HQ/U01/B01"
    assert owner(org, customer_id) == "manager.li"
    history = org.as_("admin").get(f"/api/v1/customers/{customer_id}/owner-history").json()
    assert [(s["reason"], s["started_by"], s["note"]) for s in history] == [
        ("claimed", "manager.li", "met at the market")
    ]
    assert [(e["staff_id"], e["reason"]) for e in events(org, "ownership.assigned")] == [
        ("manager.li", "claimed")
    ]
    problem(claim(org, "manager.li", customer_id), 409)  # they own it already
    # A manager of another outlet may know the customer too: their claim waits.
    resp = claim(org, "manager.zhou", customer_id)
    assert resp.status_code == 202, resp.text
    contested = resp.json()
    assert (contested["status"], contested["owner_at_claim"]) == ("contested", "manager.li")
    assert contested["decided_at"] is None
    err = problem(claim(org, "manager.zhou", customer_id), 409)
    assert err["existing"] == f"{CLAIMS}/{contested['id']}"
    assert claim(org, "teller.wang", customer_id).status_code == 202
    assert owner(org, customer_id) == "manager.li"
    assert len(events(org, "ownership.assigned")) == 1


def test_a_head_grants_one_contested_claim_and_the_others_are_refused(org: Api) -> None:
    customer_id = known_customer(org)
    assert claim(org, "manager.li", customer_id).status_code == 201
    zhou = claim(org, "manager.zhou", customer_id).json()
    wang = claim(org, "teller.wang", customer_id).json()
    problem(decide(org, "manager.zhou", zhou["id"], "grant"), 403)  # their own: read, not decide
    problem(decide(org, "manager.li", zhou["id"], "grant"), 404)  # not theirs, not a head
    resp = decide(org, "head.sun", zhou["id"], "grant", "he keeps the family's accounts")
    assert resp.status_code == 200, resp.text
    granted = resp.json()
    assert (granted["status"], granted["decided_by"], granted["decision_reason"]) == (
        "granted",
        "head.sun",
        "he keeps the family's accounts",
    )
    assert owner(org, customer_id) == "manager.zhou"
    refused = org.as_("teller.wang").get(f"{CLAIMS}/{wang['id']}").json()
    assert (refused["status"], refused["decided_by"], refused["decision_reason"]) == (
        "refused",
        "head.sun",
        "another claim was granted",
    )
    transfers = events(org, "ownership.transferred")
    assert [(e["from_staff_id"], e["to_staff_id"], e["reason"]) for e in transfers] == [
        ("manager.li", "manager.zhou", "claimed")
    ]
    history = org.as_("admin").get(f"/api/v1/customers/{customer_id}/owner-history").json()
    assert [(s["staff_id"], s["started_by"], s["end_reason"]) for s in history] == [
        ("manager.li", "manager.li", "claimed"),
        ("manager.zhou", "head.sun", None),
    ]
    problem(decide(org, "head.sun", zhou["id"], "refuse", "too late"), 409)
    problem(decide(org, "head.sun", wang["id"], "grant"), 409)


def test_a_refusal_says_why_and_leaves_the_owner(org: Api) -> None:
    customer_id = known_customer(org)
    assert claim(org, "manager.li", customer_id).status_code == 201
    zhou = claim(org, "manager.zhou", customer_id).json()
    err = problem(decide(org, "head.sun", zhou["id"], "refuse"), 422)
    assert err["errors"] == [{"field": "reason", "reason": "required to refuse"}]
    problem(org.as_("head.sun").post(f"{CLAIMS}/{zhou['id']}/decide", json={"decision": "x"}), 422)
    resp = decide(org, "president.zhao", zhou["id"], "refuse", "manager.li serves them well")
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["decided_by"]) == ("refused", "president.zhao")
    assert owner(org, customer_id) == "manager.li"
    # Refused, the claimant may claim again.
    assert claim(org, "manager.zhou", customer_id).status_code == 202


def test_a_pending_claim_holds_a_released_customer_for_the_head(org: Api) -> None:
    customer_id = known_customer(org)
    assert claim(org, "manager.li", customer_id).status_code == 201
    zhou = claim(org, "manager.zhou", customer_id).json()
    release = {"customer_id": customer_id, "mode": "release", "from_staff_id": "manager.li"}
    assert org.as_("head.sun").post("/api/v1/assignments", json=release).status_code == 200
    # No owner, but a claim is pending: the next claim waits as well.
    resp = claim(org, "teller.wang", customer_id)
    assert resp.status_code == 202 and resp.json()["owner_at_claim"] is None
    assert decide(org, "admin", zhou["id"], "grant").status_code == 200
    assert owner(org, customer_id) == "manager.zhou"
    assert [e["staff_id"] for e in events(org, "ownership.assigned")] == [
        "manager.li",
        "manager.zhou",
    ]


def test_only_eligible_staff_claim_known_customers(org: Api) -> None:
    customer_id = known_customer(org)
    problem(claim(org, "auditor.chen", customer_id), 403)  # holds no book
    problem(claim(org, "president.zhao", customer_id), 403)  # no staff record here
    problem(claim(org, "manager.li", "00000000-0000-4000-8000-00000000dead"), 404)
    problem(org.as_("manager.li").post(CLAIMS, json={"customer_id": "short"}), 422)
    assert org.client.post(CLAIMS, json={"customer_id": customer_id}).status_code == 401
    for other in [known_customer(org) for _ in range(3)]:  # manager.li's capacity is 3
        assert claim(org, "manager.li", other).status_code == 201
    err = problem(claim(org, "manager.li", customer_id), 422)
    assert "capacity" in err["errors"][0]["reason"]
    left = {"status": "left", "version": 1}
    assert org.as_("head.sun").patch("/api/v1/staff/teller.wang", json=left).status_code == 200
    err = problem(claim(org, "teller.wang", customer_id), 422)
    assert "left" in err["errors"][0]["reason"]
    assert org.as_("admin").get(CLAIMS).json()["total"] == 3  # refused claims are not stored
    assert owner(org, customer_id) is None


def test_a_grant_rechecks_the_claimants_room(org: Api) -> None:
    customer_id = known_customer(org)
    assert claim(org, "manager.zhou", customer_id).status_code == 201
    li = claim(org, "manager.li", customer_id).json()
    for other in [known_customer(org) for _ in range(3)]:
        assert assign(org, "head.sun", other, "manager.li").status_code == 200
    err = problem(decide(org, "head.sun", li["id"], "grant"), 422)
    assert "capacity" in err["errors"][0]["reason"]
    assert org.as_("head.sun").get(f"{CLAIMS}/{li['id']}").json()["status"] == "contested"
    assert owner(org, customer_id) == "manager.zhou"


def test_claims_are_read_by_the_claimant_and_the_heads_of_the_subtree(org: Api) -> None:
    near = known_customer(org)
    far = known_customer(org, org_unit="/HQ/U02/B01")
    li = claim(org, "manager.li", near).json()
    zhou = claim(org, "manager.zhou", near).json()
    far_claim = claim(org, "manager.zhou", far).json()  # zhou knows a customer of U02
    assert far_claim["status"] == "granted"

    def ids(who: str, **params: Any) -> list[str]:
        resp = org.as_(who).get(CLAIMS, params=params)
        assert resp.status_code == 200, resp.text
        return [c["id"] for c in resp.json()["items"]]

    assert ids("manager.li") == [li["id"]]
    assert ids("manager.zhou") == [zhou["id"], far_claim["id"]]
    assert ids("head.sun") == [li["id"], zhou["id"]]  # the far customer is outside B01
    assert ids("president.zhao") == [li["id"], zhou["id"]]
    assert ids("admin") == [li["id"], zhou["id"], far_claim["id"]]
    assert ids("admin", status="contested") == [zhou["id"]]
    assert ids("admin", customer_id=far) == [far_claim["id"]]
    assert ids("auditor.chen") == []
    page = org.as_("admin").get(CLAIMS, params={"limit": 1, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
    assert [c["id"] for c in page["items"]] == [zhou["id"]]
    problem(org.as_("admin").get(CLAIMS, params={"status": "maybe"}), 422)
    assert org.as_("head.sun").get(f"{CLAIMS}/{zhou['id']}").json()["claimant_id"] == "manager.zhou"
    problem(org.as_("manager.li").get(f"{CLAIMS}/{zhou['id']}"), 404)
    problem(org.as_("head.sun").get(f"{CLAIMS}/{far_claim['id']}"), 404)
    problem(decide(org, "head.sun", far_claim["id"], "grant"), 404)
    problem(org.as_("admin").get(f"{CLAIMS}/no-such-claim"), 404)
