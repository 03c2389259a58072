"""Pre-visit plans 访问计划 (with the customer's previous visit) and yearly service plans for
important high-end customers (who may keep and read them)."""

from __future__ import annotations

from typing import Any

from services.visits.models import CustomerCare
from tests.customer.conftest import Api
from tests.visits.conftest import known_customer, owned_by, runtime_of
from tests.visits.test_visits import listed, problem, record

PLANS = "/api/v1/visit-plans"
SERVICE_PLANS = "/api/v1/service-plans"


def plan_body(customer_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "planned_at": "2026-12-05T02:00:00Z",
        "channel": "in_person",
        "visit_type": "sales",
        "participants": [
            {"staff_id": "manager.li", "role": "lead"},
            {"staff_id": "head.sun", "role": "accountable leader"},
        ],
        "purpose": "Present the agricultural loan for the spring season",
        "questions": ["How much working capital do you need before March?"],
        "materials": ["Agricultural loan brochure", "Rate sheet"],
        "customer_needs": "Working capital, a lower rate",
        "likely_questions": [
            {"question": "Can I repay early?", "answer": "Yes, without a fee after 6 months"}
        ],
    }
    body.update(overrides)
    return body


def service_plan_body(customer_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "year": 2027,
        "goals": ["Keep the deposits above 2,000,000", "Open the payroll agency"],
        "planned_contacts": [
            {
                "planned_on": "2027-01-20",
                "channel": "in_person",
                "visit_type": "holiday_greeting",
                "purpose": "Spring Festival greeting",
            },
            {
                "planned_on": "2027-04-15",
                "channel": "in_person",
                "visit_type": "maintenance",
                "purpose": "Quarterly review",
            },
        ],
        "products": ["PAYROLL-01", "WM-2026-07"],
        "responsible": [{"staff_id": "manager.li", "role": "first responsible"}],
    }
    body.update(overrides)
    return body


# -- pre-visit plans ----------------------------------------------------------------------------
def test_a_plan_shows_the_previous_visit_and_the_visits_that_carried_it_out(api: Api) -> None:
    customer_id = known_customer(api)
    empty = api.as_("manager.li").post(PLANS, json=plan_body(customer_id))
    assert empty.status_code == 201, empty.text
    assert empty.json()["previous_visit"] is None

    record(api, "manager.li", customer_id, visited_at="2026-11-10T02:00:00Z")
    last = record(api, "manager.li", customer_id, visited_at="2026-11-20T02:00:00Z")
    corrected = record(
        api, "manager.li", customer_id, corrects=last["id"], correction_reason="fix the recap"
    )
    resp = api.as_("manager.li").post(PLANS, json=plan_body(customer_id))
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert resp.headers["location"] == f"{PLANS}/{plan['id']}"
    # The last visit before 5 December, in its current (corrected) version.
    assert plan["previous_visit"]["id"] == corrected["id"]
    assert plan["previous_visit"]["revision"] == 2
    assert plan["participants"][1] == {"staff_id": "head.sun", "role": "accountable leader"}
    assert plan["likely_questions"][0]["answer"].startswith("Yes")
    assert plan["carried_out_by"] == []

    # A visit carrying the plan out is not its "previous visit", even before the planned time.
    done = record(
        api, "manager.li", customer_id, visited_at="2026-11-29T02:00:00Z", plan_id=plan["id"]
    )
    read = api.as_("manager.li").get(f"{PLANS}/{plan['id']}").json()
    assert read["previous_visit"]["id"] == corrected["id"]
    assert read["carried_out_by"] == [done["id"]]
    assert done["plan_id"] == plan["id"]


def test_a_visit_names_a_plan_of_its_own_customer(api: Api) -> None:
    customer_id = known_customer(api)
    other = known_customer(api)
    theirs = api.as_("manager.li").post(PLANS, json=plan_body(other)).json()["id"]
    for plan_id in (theirs, "no-such-plan"):
        resp = api.as_("manager.li").post(
            "/api/v1/visits",
            json={
                "customer_id": customer_id,
                "visited_at": "2026-11-20T02:00:00Z",
                "channel": "phone",
                "visit_type": "phone",
                "participants": [{"staff_id": "manager.li", "role": "lead"}],
                "purpose": "Call",
                "plan_id": plan_id,
            },
        )
        assert problem(resp, 422)["errors"][0]["field"] == "plan_id"


def test_plans_are_made_and_read_by_those_who_serve_the_customer(api: Api) -> None:
    b01 = known_customer(api, org_unit="/HQ/U01/B01", owner="manager.li")
    b02 = known_customer(api, org_unit="/HQ/U01/B02", owner="manager.zhou")
    mine = api.as_("manager.li").post(PLANS, json=plan_body(b01)).json()["id"]
    problem(api.as_("manager.li").post(PLANS, json=plan_body(b02)), 403)
    problem(api.as_("teller.wang").post(PLANS, json=plan_body(b01)), 403)
    theirs = api.as_("president.zhao").post(PLANS, json=plan_body(b02)).json()["id"]

    assert listed(api, "manager.li", PLANS) == [mine]
    assert listed(api, "manager.zhou", PLANS) == [theirs]
    assert set(listed(api, "president.zhao", PLANS)) == {mine, theirs}
    assert listed(api, "admin", PLANS, planned_by="president.zhao") == [theirs]
    assert listed(api, "admin", PLANS, customer_id=b01) == [mine]
    assert listed(api, "admin", PLANS, **{"from": "2026-12-06"}) == []
    problem(api.as_("manager.li").get(f"{PLANS}/{theirs}"), 403)
    problem(api.as_("manager.li").get(f"{PLANS}/no-such-plan"), 404)


# -- service plans ------------------------------------------------------------------------------
def test_a_service_plan_is_kept_by_the_owner_team_or_a_head(api: Api) -> None:
    customer_id = known_customer(api, value_tier="high", owner="manager.li")
    resp = api.as_("manager.li").post(SERVICE_PLANS, json=service_plan_body(customer_id))
    assert resp.status_code == 201, resp.text
    first = resp.json()
    assert first["revision"] == 1 and first["current"] is True
    assert first["planned_contacts"][0]["planned_on"] == "2027-01-20"

    # Neither another outlet's manager nor a teller keeps it; the outlet head does.
    for who in ("manager.zhou", "teller.wang", "auditor.chen"):
        problem(api.as_(who).post(SERVICE_PLANS, json=service_plan_body(customer_id)), 403)
    problem(api.as_("manager.zhou").get(f"{SERVICE_PLANS}/{first['id']}"), 403)
    assert listed(api, "manager.zhou", SERVICE_PLANS) == []

    # A team member becomes responsible; a new plan for the year is its next revision.
    owned_by(api, customer_id, "manager.zhou", role="team_member")
    team = [
        {"staff_id": "manager.li", "role": "first responsible"},
        {"staff_id": "manager.zhou", "role": "wealth products"},
    ]
    second = api.as_("head.sun").post(
        SERVICE_PLANS, json=service_plan_body(customer_id, responsible=team)
    )
    assert second.status_code == 201, second.text
    assert second.json()["revision"] == 2
    assert listed(api, "manager.zhou", SERVICE_PLANS) == [second.json()["id"]]
    assert listed(api, "auditor.chen", SERVICE_PLANS, year=2027) == [second.json()["id"]]
    assert listed(api, "admin", SERVICE_PLANS, year=2026) == []
    old = api.as_("manager.li").get(f"{SERVICE_PLANS}/{first['id']}").json()
    assert old["current"] is False and old["revision"] == 1


def test_service_plans_are_for_important_high_end_customers(api: Api) -> None:
    general = known_customer(api, value_tier="general")
    resp = api.as_("manager.li").post(SERVICE_PLANS, json=service_plan_body(general))
    refused = problem(resp, 422)
    assert refused["rule"] == "service_plans.important_high_end"
    assert "important high-end" in refused["detail"]

    # The owner's assessment of high importance makes it eligible.
    with runtime_of(api).session_factory() as session:
        care = session.get(CustomerCare, general)
        assert care is not None
        care.importance = "high"
        session.commit()
    accepted = api.as_("manager.li").post(SERVICE_PLANS, json=service_plan_body(general))
    assert accepted.status_code == 201, accepted.text

    for tiers in ({"wealth_layer": "layer_1"}, {"vip_level": "diamond"}):
        customer_id = known_customer(api, **tiers)
        made = api.as_("manager.li").post(SERVICE_PLANS, json=service_plan_body(customer_id))
        assert made.status_code == 201, (tiers, made.text)


def test_the_responsible_serve_the_customer_and_contacts_fall_in_the_year(api: Api) -> None:
    customer_id = known_customer(api, value_tier="high", owner="manager.li")
    outsider = [{"staff_id": "manager.zhou", "role": "wealth products"}]
    resp = api.as_("manager.li").post(
        SERVICE_PLANS, json=service_plan_body(customer_id, responsible=outsider)
    )
    errors = problem(resp, 422)["errors"]
    assert errors == [
        {"field": "responsible", "reason": "manager.zhou does not serve this customer"}
    ]
    late = service_plan_body(customer_id)
    late["planned_contacts"][1]["planned_on"] = "2028-01-05"
    problem(api.as_("manager.li").post(SERVICE_PLANS, json=late), 422)
