"""Target lists and lead distribution 名单制营销 (附件4): routing by area, distribution by claim,
street contract, proximity, industry and load, the stages, bidding, the funnel, scoping, CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from crmkit import devauth
from tests.assignment.conftest import known_customer
from tests.assignment.test_ownership import assign, events, problem
from tests.assignment.test_rules import staff
from tests.customer.conftest import Api, _As

AREAS = "/api/v1/leads/areas"
LISTS = "/api/v1/target-lists"
FUNNEL = "/api/v1/reports/lead-funnel"
# Customer managers with a business line (the seeded ones have none).
LINED = [
    ("cm.agri1", "/HQ/U01/B01", "agricultural"),
    ("cm.corp1", "/HQ/U01/B01", "corporate"),
    ("cm.corp2", "/HQ/U01/B02", "corporate"),
    ("cm.pers2", "/HQ/U01/B02", "personal"),
    ("cm.pers3", "/HQ/U01/B02", "personal"),
    ("cm.agri9", "/HQ/U02/B01", "agricultural"),
]


def as_staff(api: Api, staff_id: str) -> _As:
    """A token for a staff member the tests add (not a seeded user)."""
    unit = next(u for s, u, _ in LINED if s == staff_id)
    claims = {"sub": staff_id, "name": staff_id, "roles": ["customer_manager"], "org_unit": unit}
    token = devauth.sign(claims, api.private_pem)
    return _As(api.client, {"Authorization": f"Bearer {token}"})


def who(api: Api, user: str) -> _As:
    return as_staff(api, user) if user.startswith("cm.") else api.as_(user)


def area(api: Api, user: str, name: str, kind: str, unit: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "kind": kind, "org_unit": unit, **extra}
    resp = api.as_(user).post(AREAS, json=body)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"{AREAS}/{resp.json()['id']}"
    result: dict[str, Any] = resp.json()
    return result


def lead(api: Api, user: str, area_id: str, kind: str = "individual", **extra: Any) -> Any:
    body = {"name": extra.pop("name", f"Target {kind}"), "kind": kind, "area_id": area_id, **extra}
    return who(api, user).post(LISTS, json=body)


def new(api: Api, area_id: str, kind: str = "individual", user: str = "head.sun", **kw: Any) -> str:
    resp = lead(api, user, area_id, kind, **kw)
    assert resp.status_code == 201, resp.text
    lead_id: str = resp.json()["id"]
    return lead_id


def distribute(api: Api, lead_id: str, user: str = "admin", **body: Any) -> Any:
    return who(api, user).post(f"{LISTS}/{lead_id}/distribute", json=body)


def distributed(api: Api, lead_id: str, user: str = "admin", **body: Any) -> tuple[str, str]:
    resp = distribute(api, lead_id, user, **body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["stage"] == "distributed"
    return out["marketer_id"], out["distribution_basis"]


def stage(api: Api, user: str, lead_id: str, to: str, **body: Any) -> Any:
    return who(api, user).post(f"{LISTS}/{lead_id}/stage", json={"stage": to, **body})


def leave(api: Api, staff_id: str) -> None:
    version = api.as_("admin").get(f"/api/v1/staff/{staff_id}").json()["version"]
    resp = api.as_("admin").patch(
        f"/api/v1/staff/{staff_id}",
        json={"status": "leaving"},
        headers={"If-Match": f'"{version}"'},
    )
    assert resp.status_code == 200, resp.text


@pytest.fixture
def areas(org: Api) -> dict[str, str]:
    """Staff of each line, and areas: two urban (B01 with a contracted street, B02), a rural one
    in B01, a forest farm and an urban area in union 02."""
    for staff_id, unit, line in LINED:
        staff(org, staff_id, ["customer_manager"], unit, business_line=line)
    old_town = area(
        org,
        "head.sun",
        "Old town 老城区",
        "urban",
        "/HQ/U01/B01",
        sub_areas=[
            {"name": "Jiefang Road", "kind": "street", "staff_id": "cm.corp1"},
            {"name": "Sunny Estate", "kind": "estate"},
        ],
    )
    assert [(s["name"], s["kind"], s["staff_id"]) for s in old_town["sub_areas"]] == [
        ("Jiefang Road", "street", "cm.corp1"),
        ("Sunny Estate", "estate", None),
    ]
    return {
        "urban_b01": old_town["id"],
        "urban_b02": area(org, "admin", "New district", "urban", "/HQ/U01/B02")["id"],
        "rural_b01": area(org, "head.sun", "Hexi village 河西村", "rural", "/HQ/U01/B01")["id"],
        "forest_u02": area(org, "admin", "Pine forest farm 林场", "forest_farm", "/HQ/U02/B01")[
            "id"
        ],
        "urban_u02": area(org, "admin", "U02 town", "urban", "/HQ/U02/B01")["id"],
    }


# -- areas and routing --------------------------------------------------------------------------
def test_areas_are_contracted_by_heads_of_the_unit(areas: dict[str, str], org: Api) -> None:
    body = {"name": "Elsewhere", "kind": "rural", "org_unit": "/HQ/U02/B01"}
    problem(org.as_("head.sun").post(AREAS, json=body), 403)
    problem(org.as_("manager.li").post(AREAS, json={**body, "org_unit": "/HQ/U01/B01"}), 403)
    problem(org.as_("admin").post(AREAS, json={**body, "org_unit": "/HQ/U09"}), 422)
    street = {"name": "Main St", "staff_id": "manager.far"}  # outside head.sun's subtree
    resp = org.as_("head.sun").post(
        AREAS, json={**body, "org_unit": "/HQ/U01/B01", "sub_areas": [street]}
    )
    assert problem(resp, 422)["errors"][0]["field"] == "sub_areas.0.staff_id"
    dup = [{"name": "A"}, {"name": "A"}]
    body_dup = {**body, "org_unit": "/HQ/U01/B01", "sub_areas": dup}
    problem(org.as_("head.sun").post(AREAS, json=body_dup), 422)
    listed = org.as_("manager.li").get(AREAS, params={"under": "/HQ/U01"}).json()
    assert listed["total"] == 3
    assert {a["kind"] for a in listed["items"]} == {"urban", "rural"}
    rural = org.as_("teller.wang").get(AREAS, params={"kind": "forest_farm"}).json()
    assert [a["org_unit"] for a in rural["items"]] == ["/HQ/U02/B01"]
    got = org.as_("teller.wang").get(f"{AREAS}/{areas['urban_b01']}").json()
    assert got["name"] == "Old town 老城区"
    problem(org.as_("admin").get(f"{AREAS}/nope"), 404)


@pytest.mark.parametrize(
    ("area_key", "kind", "line", "department"),
    [
        ("urban_b01", "corporate", "corporate", "公司"),
        ("urban_b01", "institution", "corporate", "公司"),
        ("urban_b01", "individual_business", "corporate", "公司"),
        ("urban_b01", "individual", "personal", "个人"),
        ("urban_b01", "farm_household", "agricultural", "三农"),
        ("rural_b01", "corporate", "agricultural", "三农"),
        ("rural_b01", "individual", "agricultural", "三农"),
        ("forest_u02", "individual_business", "agricultural", "三农"),
    ],
)
def test_the_business_line_follows_the_area(
    areas: dict[str, str], org: Api, area_key: str, kind: str, line: str, department: str
) -> None:
    resp = lead(org, "manager.li", areas[area_key], kind, industry="retail")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["Location"] == f"{LISTS}/{body['id']}"
    assert (body["business_line"], body["line_department"], body["stage"]) == (
        line,
        department,
        "collected",
    )
    assert body["marketer_id"] is None and body["created_by"] == "manager.li"


def test_who_collects_entries_and_what_they_must_name(areas: dict[str, str], org: Api) -> None:
    assert lead(org, "teller.wang", areas["urban_b01"]).status_code == 201  # a book role
    assert lead(org, "president.zhao", areas["urban_b01"]).status_code == 201  # a head
    problem(lead(org, "auditor.chen", areas["urban_b01"]), 403)  # keeps no book
    problem(lead(org, "approver.qian", areas["urban_b01"]), 403)  # no staff record
    problem(lead(org, "manager.li", "no-such-area"), 422)
    err = problem(lead(org, "manager.li", areas["urban_b01"], sub_area="Nowhere Lane"), 422)
    assert err["errors"][0]["field"] == "sub_area"
    resp = lead(org, "manager.li", areas["urban_b01"], id_number="110101199003074578")
    problem(resp, 422)  # no national id on a lead
    resp = lead(
        org,
        "manager.li",
        areas["urban_b01"],
        "corporate",
        sub_market="small enterprises 小微",
        current_bank="Other Bank",
        contact="Mr. Wu, 138 0000 0000",
        info_status="partial",
        willing_to_borrow=True,
        sub_area="Sunny Estate",
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["other_bank"], body["info_status"], body["willing_to_borrow"]) == (
        True,
        "partial",
        True,
    )
    assert (body["org_unit"], body["area_kind"], body["area_name"]) == (
        "/HQ/U01/B01",
        "urban",
        "Old town 老城区",
    )


# -- distribution -------------------------------------------------------------------------------
def test_a_priority_claim_comes_first_then_the_street_contract(
    areas: dict[str, str], org: Api
) -> None:
    street = {"sub_area": "Jiefang Road"}
    claimed = new(org, areas["urban_b01"], "corporate", **street)
    # A manager of a neighbouring outlet of the same union claims it; the street's manager
    # would get it otherwise.
    resp = org.as_("manager.zhou").post(f"{LISTS}/{claimed}/claim", json={"note": "knows them"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["claimed_by"] == "manager.zhou"
    problem(org.as_("manager.li").post(f"{LISTS}/{claimed}/claim", json={}), 409)  # taken
    problem(who(org, "cm.agri9").post(f"{LISTS}/{claimed}/claim", json={}), 404)  # union 02
    problem(org.as_("auditor.chen").post(f"{LISTS}/{claimed}/claim", json={}), 403)
    assert distributed(org, claimed, "head.sun") == ("manager.zhou", "claim")
    problem(org.as_("manager.li").post(f"{LISTS}/{claimed}/claim", json={}), 409)  # not collected
    problem(distribute(org, claimed, "head.sun"), 409)  # once

    contracted = new(org, areas["urban_b01"], "corporate", **street)
    assert distributed(org, contracted, "head.sun") == ("cm.corp1", "sub_area")
    # The contract holds for any line: Jiefang Road's individuals go to its manager too.
    individual = new(org, areas["urban_b01"], "individual", **street)
    assert distributed(org, individual)[0] == "cm.corp1"
    # A street without a manager falls to the nearest manager of the line.
    estate = new(org, areas["urban_b01"], "corporate", sub_area="Sunny Estate")
    assert distributed(org, estate) == ("cm.corp1", "load")
    # A claim by a staff member no longer active is passed over.
    gone = new(org, areas["rural_b01"], "individual")
    resp = org.as_("manager.li").post(f"{LISTS}/{gone}/claim", json={})
    assert resp.status_code == 200, resp.text
    leave(org, "manager.li")
    assert distributed(org, gone) == ("cm.agri1", "load")


def test_the_nearest_manager_of_the_line_then_industry_then_load(
    areas: dict[str, str], org: Api
) -> None:
    # Corporate in B01: the B01 manager, although the B02 one holds nothing either.
    corporate = new(org, areas["urban_b01"], "corporate")
    assert distributed(org, corporate, "head.sun") == ("cm.corp1", "load")
    rural = new(org, areas["rural_b01"], "farm_household")
    assert distributed(org, rural, "head.sun") == ("cm.agri1", "load")
    # No personal manager in B01: up the tree to the union, the least loaded (then by id).
    first = new(org, areas["urban_b01"], "individual")
    assert distributed(org, first) == ("cm.pers2", "load")
    named = new(org, areas["urban_b01"], "individual", industry="catering")
    assert distributed(org, named, staff_id="cm.pers3") == ("cm.pers3", "named")
    # Same industry first: cm.pers3 holds a catering entry (loads are 1 and 1) ...
    catering = new(org, areas["urban_b01"], "individual", industry="catering")
    assert distributed(org, catering) == ("cm.pers3", "industry")
    # ... even when more loaded (2 against 1).
    again = new(org, areas["urban_b02"], "individual", industry="catering")
    assert distributed(org, again) == ("cm.pers3", "industry")
    # Another industry: the least loaded.
    retail = new(org, areas["urban_b02"], "individual", industry="retail")
    assert distributed(org, retail) == ("cm.pers2", "load")
    # The load counts the book too: cm.pers2 holds 2 entries and 3 customers, cm.pers3 3 entries.
    for _ in range(3):
        customer_id = known_customer(org, "/HQ/U01/B02")
        assert assign(org, "admin", customer_id, "cm.pers2").status_code == 200
    plain = new(org, areas["urban_b02"], "individual")
    assert distributed(org, plain) == ("cm.pers3", "load")
    # A lost entry no longer weighs: cm.pers3 loses two, then is the least loaded again.
    for lost in (catering, again):
        assert stage(org, "cm.pers3", lost, "lost", note="went elsewhere").status_code == 200
    assert stage(org, "cm.pers2", retail, "lost").status_code == 200
    other = new(org, areas["urban_b02"], "individual", industry="catering")
    assert distributed(org, other) == ("cm.pers3", "industry")  # named entry still held


def test_distribution_needs_a_head_of_the_unit_and_a_manager_of_the_line(
    areas: dict[str, str], org: Api
) -> None:
    b02 = new(org, areas["urban_b02"], "corporate", user="admin")
    problem(distribute(org, b02, "head.sun"), 404)  # not of their subtree: not visible either
    collected_by_them = new(org, areas["urban_b02"], "corporate")
    problem(distribute(org, collected_by_them, "head.sun"), 403)  # visible, not theirs to give
    problem(distribute(org, b02, "manager.li"), 404)
    mine = new(org, areas["urban_b01"], "corporate", user="manager.li")
    problem(distribute(org, mine, "manager.li"), 403)  # collector, not a head
    err = problem(distribute(org, mine, "head.sun", staff_id="manager.far"), 422)
    assert err["errors"][0]["field"] == "staff_id"
    # Union 02 has no corporate manager: up the tree to the head office's subtree.
    far = new(org, areas["urban_u02"], "corporate", user="admin")
    assert distributed(org, far) == ("cm.corp1", "load")  # both hold nothing: by id
    # Nobody of the line active anywhere: 409, the entry stays collected.
    for member in ("cm.corp1", "cm.corp2"):
        leave(org, member)
    nobody = new(org, areas["urban_u02"], "corporate", user="admin")
    assert "corporate line" in problem(distribute(org, nobody), 409)["detail"]
    assert org.as_("admin").get(f"{LISTS}/{nobody}").json()["stage"] == "collected"
    farm = new(org, areas["forest_u02"], "individual", user="admin")
    assert distributed(org, farm) == ("cm.agri9", "load")


# -- stages -------------------------------------------------------------------------------------
def test_stages_move_forward_only_and_won_or_lost_are_final(
    areas: dict[str, str], org: Api
) -> None:
    lead_id = new(org, areas["urban_b01"], "corporate")
    err = problem(stage(org, "head.sun", lead_id, "feedback"), 409)
    assert err["allowed"] == ["lost"]
    problem(stage(org, "head.sun", lead_id, "distributed"), 409)  # by distributing only
    assert distributed(org, lead_id, "head.sun")[0] == "cm.corp1"
    problem(stage(org, "cm.corp1", lead_id, "screened"), 409)  # skips feedback
    problem(stage(org, "manager.li", lead_id, "feedback"), 404)  # not theirs
    problem(stage(org, "cm.corp2", lead_id, "feedback"), 404)
    resp = stage(org, "cm.corp1", lead_id, "feedback", note="visited, interested")
    assert resp.status_code == 200, resp.text
    assert stage(org, "head.sun", lead_id, "screened", note="at the meeting").status_code == 200
    err = problem(stage(org, "cm.corp1", lead_id, "target"), 422)
    assert err["errors"][0]["field"] == "plan"
    resp = stage(org, "cm.corp1", lead_id, "target", plan="payroll + settlement account")
    assert resp.status_code == 200, resp.text
    assert (resp.json()["stage"], resp.json()["plan"]) == ("target", "payroll + settlement account")
    problem(stage(org, "cm.corp1", lead_id, "collected"), 409)
    customer_id = known_customer(org, name="Target corporate")
    resp = stage(
        org, "cm.corp1", lead_id, "won", note="opened the account", customer_id=customer_id
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["result_note"], resp.json()["reward"]) == ("opened the account", None)
    err = problem(stage(org, "cm.corp1", lead_id, "lost"), 409)
    assert err["allowed"] == []
    detail = org.as_("head.sun").get(f"{LISTS}/{lead_id}").json()
    assert [(h["from_stage"], h["to_stage"]) for h in detail["history"]] == [
        (None, "collected"),
        ("collected", "distributed"),
        ("distributed", "feedback"),
        ("feedback", "screened"),
        ("screened", "target"),
        ("target", "won"),
    ]
    assert detail["history"][2]["changed_by"] == "cm.corp1"
    assert detail["furthest"] == "won"
    early = new(org, areas["urban_b01"], "corporate")
    resp = stage(org, "head.sun", early, "lost", note="closed down")
    assert (resp.json()["stage"], resp.json()["furthest"]) == ("lost", "collected")
    problem(distribute(org, early, "head.sun"), 409)


# -- bidding ------------------------------------------------------------------------------------
def test_key_targets_are_posted_bid_for_and_the_reward_recorded_when_won(
    areas: dict[str, str], org: Api
) -> None:
    lead_id = new(org, areas["urban_b01"], "corporate", name="County hospital 县医院")
    post = f"{LISTS}/{lead_id}/post"
    bids = f"{LISTS}/{lead_id}/bids"
    problem(org.as_("manager.li").post(post, json={"reward": "5000.00"}), 404)
    problem(org.as_("head.sun").post(post, json={"reward": "0"}), 422)
    problem(org.as_("manager.li").post(bids, json={}), 404)  # not posted: not visible
    resp = org.as_("head.sun").post(post, json={"reward": "5000.00", "note": "key target"})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["bidding"], resp.json()["bid_reward"]) == ("open", "5000.00")
    problem(org.as_("head.sun").post(post, json={"reward": "6000.00"}), 409)
    # Open to the staff of head.sun's outlet: they see it in their list.
    listed = org.as_("manager.li").get(LISTS, params={"bidding": "open"}).json()
    assert [x["id"] for x in listed["items"]] == [lead_id]
    resp = org.as_("manager.li").post(bids, json={"note": "I know the director"})
    assert resp.status_code == 201, resp.text
    assert (resp.json()["staff_id"], resp.json()["status"]) == ("manager.li", "pending")
    problem(org.as_("manager.li").post(bids, json={}), 409)
    assert org.as_("teller.wang").post(bids, json={}).status_code == 201
    problem(org.as_("manager.zhou").post(bids, json={}), 404)  # another outlet
    problem(org.as_("auditor.chen").post(bids, json={}), 403)  # keeps no book
    award = f"{LISTS}/{lead_id}/award"
    problem(org.as_("head.sun").post(award, json={"staff_id": "manager.zhou"}), 422)
    problem(org.as_("manager.li").post(award, json={"staff_id": "manager.li"}), 403)
    resp = org.as_("head.sun").post(award, json={"staff_id": "manager.li"})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["marketer_id"], out["stage"], out["bidding"], out["distribution_basis"]) == (
        "manager.li",
        "distributed",
        "awarded",
        "bid",
    )
    problem(org.as_("head.sun").post(award, json={"staff_id": "teller.wang"}), 409)
    problem(org.as_("teller.wang").post(bids, json={}), 404)  # closed: not visible any more
    detail = org.as_("manager.li").get(f"{LISTS}/{lead_id}").json()
    assert [(b["staff_id"], b["status"]) for b in detail["bids"]] == [
        ("manager.li", "awarded"),
        ("teller.wang", "not_awarded"),
    ]
    for to, extra in (
        ("feedback", {}),
        ("screened", {}),
        ("target", {"plan": "visit the director"}),
    ):
        assert stage(org, "manager.li", lead_id, to, **extra).status_code == 200
    won = stage(org, "manager.li", lead_id, "won", customer_id=known_customer(org, name="Hospital"))
    assert won.json()["reward"] == "5000.00"
    [awarded] = [e for e in events(org, "lead.distributed") if e["lead_id"] == lead_id]
    assert (awarded["marketer_id"], awarded["basis"], awarded["previous_marketer_id"]) == (
        "manager.li",
        "bid",
        None,
    )
    [win] = [e for e in events(org, "lead.won") if e["lead_id"] == lead_id]
    assert (win["reward"], win["owner_id"], win["owner_assigned"]) == (
        "5000.00",
        "manager.li",
        True,
    )
    csv_text = org.as_("head.sun").get(LISTS, params={"format": "csv"}).text
    assert "5000.00" in csv_text

    # A posted entry lost before any award: bidding closes, no reward.
    lost = new(org, areas["urban_b01"], "corporate")
    org.as_("head.sun").post(f"{LISTS}/{lost}/post", json={"reward": "800.50"})
    org.as_("manager.li").post(f"{LISTS}/{lost}/bids", json={})
    out = stage(org, "head.sun", lost, "lost").json()
    assert (out["bidding"], out["reward"], out["marketer_id"]) == ("closed", None, None)
    problem(org.as_("head.sun").post(f"{LISTS}/{lost}/post", json={"reward": "1.00"}), 409)


# -- funnel, lists, scope -----------------------------------------------------------------------
def _through(api: Api, lead_id: str, last: str) -> None:
    """Distribute the entry, then move it by its marketer up to ``last``."""
    user, _ = distributed(api, lead_id)
    steps = ["feedback", "screened", "target", "won"]
    for to in steps[: steps.index(last) + 1]:
        extra = {"customer_id": known_customer(api)} if to == "won" else {}
        resp = stage(api, user, lead_id, to, plan="a plan", **extra)
        assert resp.status_code == 200, resp.text


@pytest.fixture
def pipeline(areas: dict[str, str], org: Api) -> dict[str, str]:
    """B01: a corporate entry won, one lost after screening, one at feedback, one collected;
    an agricultural one distributed. B02: a personal entry at target. Union 02: one collected."""
    ids = {
        "won": new(org, areas["urban_b01"], "corporate", user="manager.li"),
        "lost": new(org, areas["urban_b01"], "corporate"),
        "feedback": new(org, areas["urban_b01"], "institution"),
        "collected": new(org, areas["urban_b01"], "corporate", user="manager.li"),
        "rural": new(org, areas["rural_b01"], "farm_household"),
        "b02": new(org, areas["urban_b02"], "individual", user="admin"),
        "u02": new(org, areas["forest_u02"], "individual", user="admin"),
    }
    _through(org, ids["won"], "won")
    _through(org, ids["lost"], "screened")
    assert stage(org, "head.sun", ids["lost"], "lost").status_code == 200
    _through(org, ids["feedback"], "feedback")
    distributed(org, ids["rural"])
    _through(org, ids["b02"], "target")
    return ids


def test_the_funnel_counts_stages_and_reached_stages_per_line(
    pipeline: dict[str, str], org: Api
) -> None:
    resp = org.as_("head.sun").get(FUNNEL)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["org_unit"] == "/HQ/U01/B01"
    lines = {x["business_line"]: x for x in body["lines"]}
    corporate = lines["corporate"]
    assert corporate["total"] == 4
    assert corporate["at_stage"] == {
        "collected": 1,
        "distributed": 0,
        "feedback": 1,
        "screened": 0,
        "target": 0,
        "won": 1,
        "lost": 1,
    }
    assert corporate["reached"] == {
        "collected": 4,
        "distributed": 3,
        "feedback": 3,
        "screened": 2,
        "target": 1,
        "won": 1,
    }
    assert lines["agricultural"]["reached"]["distributed"] == 1
    assert lines["personal"]["total"] == 0
    assert body["overall"]["total"] == 5
    everything = org.as_("admin").get(FUNNEL).json()
    assert (everything["org_unit"], everything["overall"]["total"]) == ("/", 7)
    union = org.as_("president.zhao").get(FUNNEL).json()
    assert union["overall"]["total"] == 6
    assert {x["business_line"]: x["reached"]["target"] for x in union["lines"]} == {
        "agricultural": 0,
        "corporate": 1,
        "personal": 1,
    }
    b02 = org.as_("auditor.chen").get(FUNNEL, params={"org_unit": "/HQ/U01/B02"}).json()
    assert b02["overall"]["at_stage"]["target"] == 1 and b02["overall"]["total"] == 1
    problem(org.as_("head.sun").get(FUNNEL, params={"org_unit": "/HQ/U01"}), 403)
    mine = org.as_("manager.li").get(FUNNEL).json()  # what they collected
    assert mine["overall"]["total"] == 2
    assert mine["overall"]["reached"]["won"] == 1


def test_lists_are_scoped_filtered_and_paginated(pipeline: dict[str, str], org: Api) -> None:
    def ids(user: str, **params: Any) -> set[str]:
        resp = who(org, user).get(LISTS, params=params)
        assert resp.status_code == 200, resp.text
        return {x["id"] for x in resp.json()["items"]}

    p = pipeline
    assert ids("admin") == set(p.values())
    assert ids("auditor.chen") == set(p.values())
    assert ids("president.zhao") == set(p.values()) - {p["u02"]}
    b01 = {p["won"], p["lost"], p["feedback"], p["collected"], p["rural"]}
    assert ids("head.sun") == b01
    assert ids("manager.li") == {p["won"], p["collected"]}  # collected by them
    assert ids("cm.corp1") == {p["won"], p["lost"], p["feedback"]}  # distributed to them
    assert ids("manager.zhou") == set()
    assert ids("head.sun", stage="won") == {p["won"]}
    assert ids("head.sun", line="agricultural") == {p["rural"]}
    assert ids("admin", marketer_id="cm.agri1") == {p["rural"]}
    assert ids(
        "president.zhao", area_id=org.as_("admin").get(f"{LISTS}/{p['b02']}").json()["area_id"]
    ) == {p["b02"]}
    problem(org.as_("manager.zhou").get(f"{LISTS}/{p['won']}"), 404)
    page = org.as_("admin").get(LISTS, params={"limit": 2, "offset": 2}).json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (7, 2, 2, 2)
    problem(org.as_("admin").get(LISTS, params={"stage": "nope"}), 422)
    row = org.as_("admin").get(f"{LISTS}/{p['won']}").json()
    assert (row["marketer_id"], row["marketer_line"], row["line_department"]) == (
        "cm.corp1",
        "corporate",
        "公司",
    )


def test_the_list_as_csv_carries_the_form_columns(pipeline: dict[str, str], org: Api) -> None:
    resp = org.as_("head.sun").get(LISTS, params={"format": "csv", "line": "corporate"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.content.startswith("\ufeff".encode())
    assert resp.headers["X-Total-Count"] == "4"
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert "area (片区)" in header and "line_department (责任条线部门)" in header
    assert "marketer (营销责任人)" in header and "info_status (信息采集情况)" in header
    assert len(body) == 4
    record = {h.split(" (")[0]: v for h, v in zip(header, body[0], strict=True)}
    assert record["id"] == pipeline["won"]
    assert (record["line_department"], record["area"], record["contracting_unit"]) == (
        "公司",
        "Old town 老城区",
        "/HQ/U01/B01",
    )
    assert (record["stage"], record["marketer"], record["marketer_line"]) == (
        "won",
        "cm.corp1",
        "corporate",
    )
    mine = org.as_("manager.zhou").get(LISTS, params={"format": "csv"})
    assert len(list(csv.reader(io.StringIO(mine.content.decode("utf-8-sig"))))) == 1


# -- events and the customer a won entry became ---------------------------------------------------
def _to_target(api: Api, lead_id: str, user: str) -> None:
    for to in ("feedback", "screened", "target"):
        resp = stage(api, user, lead_id, to, plan="payroll and settlement accounts")
        assert resp.status_code == 200, resp.text


def test_distribution_and_each_stage_are_published(areas: dict[str, str], org: Api) -> None:
    lead_id = new(org, areas["urban_b01"], "corporate", name="Hexi Mill")
    marketer, basis = distributed(org, lead_id, "head.sun")
    _to_target(org, lead_id, marketer)
    assert stage(org, "head.sun", lead_id, "lost", note="chose another bank").status_code == 200

    [given] = events(org, "lead.distributed")
    assert given == {
        "lead_id": lead_id,
        "name": "Hexi Mill",
        "kind": "corporate",
        "business_line": "corporate",
        "org_unit": "/HQ/U01/B01",
        "area_id": areas["urban_b01"],
        "marketer_id": marketer,
        "previous_marketer_id": None,
        "basis": basis,
        "distributed_at": given["distributed_at"],
        "distributed_by": "head.sun",
        "_key": lead_id,
    }
    moves = events(org, "lead.stage_changed")
    assert [(e["from_stage"], e["to_stage"], e["furthest"]) for e in moves] == [
        ("collected", "distributed", "distributed"),
        ("distributed", "feedback", "feedback"),
        ("feedback", "screened", "screened"),
        ("screened", "target", "target"),
        ("target", "lost", "target"),
    ]
    assert {e["_key"] for e in moves} == {lead_id}
    assert [e["changed_by"] for e in moves] == [
        "head.sun",
        marketer,
        marketer,
        marketer,
        "head.sun",
    ]
    assert {e["marketer_id"] for e in moves} == {marketer}
    # A refused move publishes nothing.
    problem(stage(org, "head.sun", lead_id, "won", customer_id=known_customer(org)), 409)
    assert len(events(org, "lead.stage_changed")) == 5 and events(org, "lead.won") == []


def test_a_won_entry_names_its_customer_whose_marketer_becomes_its_owner(
    areas: dict[str, str], org: Api
) -> None:
    lead_id = new(org, areas["urban_b01"], "corporate")
    marketer, _ = distributed(org, lead_id, "head.sun")
    _to_target(org, lead_id, marketer)
    err = problem(stage(org, marketer, lead_id, "won"), 422)
    assert err["errors"][0]["field"] == "customer_id"
    unknown = "6f1c2f0e-8a43-4a43-9d0e-1f3f0c1b2a10"
    err = problem(stage(org, marketer, lead_id, "won", customer_id=unknown), 422)
    assert err["errors"][0] == {"field": "customer_id", "reason": "unknown customer"}
    customer_id = known_customer(org, name="Hexi Mill Ltd")
    err = problem(stage(org, marketer, lead_id, "lost", customer_id=customer_id), 422)
    assert err["errors"][0]["field"] == "customer_id"
    assert org.as_("admin").get(f"{LISTS}/{lead_id}").json()["stage"] == "target"

    resp = stage(org, marketer, lead_id, "won", note="opened accounts", customer_id=customer_id)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["stage"], out["customer_id"], out["customer_owner_id"], out["owner_assigned"]) == (
        "won",
        customer_id,
        marketer,
        True,
    )
    # 谁营销谁维护: the customer had no owner; the marketer owns it now, reason marketed.
    owner = org.as_("admin").get(f"/api/v1/customers/{customer_id}/owner").json()["owner"]
    assert (owner["staff_id"], owner["reason"]) == (marketer, "marketed")
    [assigned] = events(org, "ownership.assigned")
    assert (assigned["customer_id"], assigned["staff_id"], assigned["reason"]) == (
        customer_id,
        marketer,
        "marketed",
    )
    [won] = events(org, "lead.won")
    assert won == {
        "lead_id": lead_id,
        "customer_id": customer_id,
        "marketer_id": marketer,
        "owner_id": marketer,
        "owner_assigned": True,
        "business_line": "corporate",
        "org_unit": "/HQ/U01/B01",
        "reward": None,
        "won_at": won["won_at"],
        "decided_by": marketer,
        "_key": lead_id,
    }
    assert events(org, "lead.stage_changed")[-1]["to_stage"] == "won"


def test_a_won_customer_with_an_owner_keeps_it(areas: dict[str, str], org: Api) -> None:
    customer_id = known_customer(org, name="Owned Co")
    assert assign(org, "head.sun", customer_id, "manager.li").status_code == 200
    lead_id = new(org, areas["urban_b01"], "corporate")
    marketer, _ = distributed(org, lead_id, "head.sun")
    assert marketer != "manager.li"
    _to_target(org, lead_id, marketer)
    resp = stage(org, "head.sun", lead_id, "won", customer_id=customer_id)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["customer_owner_id"], resp.json()["owner_assigned"]) == (
        "manager.li",
        False,
    )
    owner = org.as_("admin").get(f"/api/v1/customers/{customer_id}/owner").json()["owner"]
    assert owner["staff_id"] == "manager.li"  # nothing moved
    assert len(events(org, "ownership.assigned")) == 1  # the assignment above, no other
    [won] = events(org, "lead.won")
    assert (won["owner_id"], won["owner_assigned"], won["decided_by"]) == (
        "manager.li",
        False,
        "head.sun",
    )


def test_a_win_the_marketer_cannot_own_changes_nothing(areas: dict[str, str], org: Api) -> None:
    lead_id = new(org, areas["urban_b01"], "corporate")
    marketer, _ = distributed(org, lead_id, "head.sun")
    _to_target(org, lead_id, marketer)
    leave(org, marketer)  # a leaving manager takes no customer
    customer_id = known_customer(org)
    err = problem(stage(org, "head.sun", lead_id, "won", customer_id=customer_id), 422)
    assert err["errors"][0]["field"] == "customer_id" and "leaving" in err["detail"]
    detail = org.as_("admin").get(f"{LISTS}/{lead_id}").json()
    assert (detail["stage"], detail["customer_id"]) == ("target", None)
    assert org.as_("admin").get(f"/api/v1/customers/{customer_id}/owner").json()["owner"] is None
    assert events(org, "lead.won") == [] and events(org, "ownership.assigned") == []
    # Once the customer has an owner, the win records it and moves nothing.
    assert assign(org, "head.sun", customer_id, "teller.wang").status_code == 200
    resp = stage(org, "head.sun", lead_id, "won", customer_id=customer_id)
    assert resp.status_code == 200, resp.text
    assert resp.json()["customer_owner_id"] == "teller.wang"


# -- editing areas and entries --------------------------------------------------------------------
def test_entries_are_edited_naming_the_version_read(areas: dict[str, str], org: Api) -> None:
    lead_id = new(org, areas["urban_b01"], "individual", user="manager.li", contact="Mr. Wu")
    url = f"{LISTS}/{lead_id}"
    got = org.as_("manager.li").get(url)
    assert (got.headers["ETag"], got.json()["version"]) == ('"1"', 1)
    mine = org.as_("manager.li")
    problem(mine.patch(url, json={"industry": "retail"}), 428)
    problem(mine.patch(url, json={"industry": "retail"}, headers={"If-Match": '"7"'}), 412)
    problem(mine.patch(url, json={"industry": "retail", "version": 7}), 409)
    problem(org.as_("manager.zhou").patch(url, json={"version": 1}), 404)  # not theirs to see
    problem(org.as_("auditor.chen").patch(url, json={"industry": "x", "version": 1}), 403)

    resp = mine.patch(
        url, json={"industry": "retail", "contact": None}, headers={"If-Match": '"1"'}
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["industry"], resp.json()["contact"], resp.headers["ETag"]) == (
        "retail",
        None,
        '"2"',
    )
    same = mine.patch(url, json={"industry": "retail", "version": 2})
    assert (same.status_code, same.json()["version"]) == (200, 2)  # no change, no new version
    # The kind and the area route the entry: its line, area kind and unit follow them.
    resp = mine.patch(url, json={"kind": "corporate", "version": 2})
    assert (resp.json()["business_line"], resp.json()["version"]) == ("corporate", 3)
    resp = mine.patch(url, json={"area_id": areas["urban_u02"], "version": 3})
    assert (resp.json()["org_unit"], resp.json()["area_name"]) == ("/HQ/U02/B01", "U02 town")
    resp = org.as_("admin").patch(
        url, json={"area_id": areas["rural_b01"], "kind": "individual", "version": 4}
    )
    assert (resp.json()["business_line"], resp.json()["area_kind"]) == ("agricultural", "rural")
    err = problem(mine.patch(url, json={"sub_area": "Jiefang Road", "version": 5}), 422)
    assert err["errors"][0]["field"] == "sub_area"
    err = problem(mine.patch(url, json={"area_id": "no-such-area", "version": 5}), 422)
    assert err["errors"][0]["field"] == "area_id"

    marketer, _ = distributed(org, lead_id, "head.sun")  # a new version too
    err = problem(mine.patch(url, json={"kind": "corporate", "version": 6}), 409)
    assert "only while it is collected" in err["detail"]  # routed already
    resp = who(org, marketer).patch(url, json={"notes": "visit on Monday", "version": 6})
    assert (resp.status_code, resp.json()["notes"], resp.json()["version"]) == (
        200,
        "visit on Monday",
        7,
    )
    assert stage(org, marketer, lead_id, "lost").status_code == 200
    problem(mine.patch(url, json={"notes": "too late", "version": 8}), 409)  # closed


def test_areas_are_edited_naming_the_version_read(areas: dict[str, str], org: Api) -> None:
    url = f"{AREAS}/{areas['urban_b01']}"
    got = org.as_("manager.li").get(url)
    assert (got.headers["ETag"], got.json()["version"], got.json()["updated_at"]) == (
        '"1"',
        1,
        None,
    )
    head = org.as_("head.sun")
    problem(org.as_("manager.li").patch(url, json={"name": "New town", "version": 1}), 403)
    problem(head.patch(url, json={"name": "New town"}), 428)
    problem(head.patch(url, json={"name": "New town"}, headers={"If-Match": '"3"'}), 412)
    new(org, areas["urban_b01"], "corporate", sub_area="Jiefang Road")

    streets = [
        {"name": "Jiefang Road", "kind": "street", "staff_id": "cm.corp1"},
        {"name": "Riverside", "kind": "estate", "staff_id": "manager.li"},
    ]  # Sunny Estate removed, Riverside added
    resp = head.patch(url, json={"name": "Old town", "sub_areas": streets, "version": 1})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["name"], body["version"], resp.headers["ETag"]) == ("Old town", 2, '"2"')
    assert [(s["name"], s["staff_id"]) for s in body["sub_areas"]] == [
        ("Jiefang Road", "cm.corp1"),
        ("Riverside", "manager.li"),
    ]
    assert body["updated_by"] == "head.sun"
    # An entry names Jiefang Road: it stays.
    err = problem(head.patch(url, json={"sub_areas": streets[1:], "version": 2}), 409)
    assert err["in_use"] == ["Jiefang Road"]
    far = [*streets, {"name": "Far Lane", "staff_id": "manager.far"}]
    err = problem(head.patch(url, json={"sub_areas": far, "version": 2}), 422)
    assert err["errors"][0]["field"] == "sub_areas.2.staff_id"
    same = head.patch(url, json={"name": "Old town", "sub_areas": streets, "version": 2})
    assert same.json()["version"] == 2  # the same values again: no new version
    # Contracting it to another outlet is for a head of both: the union's president.
    problem(head.patch(url, json={"org_unit": "/HQ/U01/B02", "version": 2}), 403)
    resp = org.as_("president.zhao").patch(
        url, json={"org_unit": "/HQ/U01/B02", "kind": "rural", "version": 2}
    )
    assert (resp.json()["org_unit"], resp.json()["kind"], resp.json()["version"]) == (
        "/HQ/U01/B02",
        "rural",
        3,
    )
    # Entries collected before keep their routing; new ones follow the area.
    assert new(org, areas["urban_b01"], "corporate", user="admin")
    kinds = {x["area_kind"] for x in org.as_("admin").get(LISTS).json()["items"]}
    assert kinds == {"urban", "rural"}
    problem(head.patch(url, json={"name": "Gone", "version": 3}), 403)  # not their unit now
    problem(org.as_("admin").patch(f"{AREAS}/nope", json={"version": 1}), 404)
