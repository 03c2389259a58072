"""The daily agenda 日工作报告 ordered by its score, the day plans, the activity reports (JSON and
CSV) and who reads them."""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from crmkit import devauth
from crmkit.auth import Caller
from crmkit.clock import business_today
from crmkit.db import utcnow
from crmkit.errors import Conflict, PreconditionRequired
from crmkit.runtime import ServiceRuntime
from services.visits import workday
from services.visits.app import create_app
from services.visits.models_workday import DayPlan
from services.visits.schemas_followups import ActivityPeriod, DayPlanIn
from services.visits.workday import period_days
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.visits.conftest import (
    known_customer,
    limit_approved,
    risk_flagged,
    runtime_of,
    visits_settings,
)
from tests.visits.test_followups import contact

TODAY = business_today()
AGENDA_DAY = TODAY + timedelta(days=5)


def agenda_of(api: Api, staff_id: str, user: str, day: date | str, **params: Any) -> Any:
    return api.as_(user).get(
        f"/api/v1/staff/{staff_id}/agenda", params={"date": str(day), **params}
    )


def visit(
    api: Api,
    customer_id: str,
    channel: str,
    participants: list[str],
    opportunities: list[str] | None = None,
) -> None:
    """A visit recorded now by the first participant."""
    body = {
        "customer_id": customer_id,
        "visited_at": (utcnow() - timedelta(minutes=5)).isoformat(),
        "channel": channel,
        "visit_type": "maintenance",
        "participants": [
            {"staff_id": s, "role": "lead" if n == 0 else "support"}
            for n, s in enumerate(participants)
        ],
        "purpose": "Quarterly review",
        "opportunities": opportunities or [],
    }
    resp = api.as_(participants[0]).post("/api/v1/visits", json=body)
    assert resp.status_code == 201, resp.text


def mint(api: Api, user: str, roles: list[str], unit: str) -> None:
    api.tokens[user] = devauth.sign(
        {"sub": user, "name": user, "roles": roles, "org_unit": unit}, api.private_pem
    )


@pytest.fixture
def book(api: Api) -> dict[str, str]:
    """manager.li's customers, with their scores on AGENDA_DAY (today + 5), each part shown:
    tier (monthly 30 / quarterly 20 / half-yearly 10) + importance + a point per day overdue
    + 25 per open complaint + risk + 20 for a limit ending within 30 days + the reason."""
    b: dict[str, str] = {}
    b["A"] = known_customer(api, value_tier="high")
    contact(api, b["A"], TODAY - timedelta(days=40))  # due today - 10: 30 + 15 = 45
    b["B"] = known_customer(api, value_tier="general")
    contact(api, b["B"], TODAY - timedelta(days=180))  # due today: 10 + 5 overdue
    risk_flagged(api, b["B"], "severe")  # + 40 (its risk date, today + 3, is later) = 55
    b["C"] = known_customer(api, value_tier="middle")
    contact(api, b["C"], TODAY - timedelta(days=90))  # due today: 20 + 5 + 25 complaint = 50
    complaint = {
        "customer_id": b["C"],
        "channel": "phone",
        "category": "waiting",
        "description": "Waited an hour at the counter",
    }
    resp = api.as_("manager.li").post("/api/v1/complaints", json=complaint)
    assert resp.status_code == 201, resp.text
    b["D"] = known_customer(api, value_tier="general")
    contact(api, b["D"], TODAY - timedelta(days=178))  # due today + 2: 10 + 3
    limit_approved(api, b["D"], str(AGENDA_DAY + timedelta(days=20)))  # + 20 expiring = 33
    b["F"] = known_customer(api, value_tier="general")
    risk_flagged(api, b["F"], "watch")  # due today + 3 for risk: 10 + 2 + 10 watch + 30 = 52
    b["G"] = known_customer(api, value_tier="high")
    contact(api, b["G"], TODAY - timedelta(days=25))  # due on the day itself: 30 + 0 = 30
    b["H"] = known_customer(api, value_tier="general")
    resp = api.as_("manager.li").patch(
        f"/api/v1/customers/{b['H']}/care", json={"importance": "high"}
    )
    assert resp.status_code == 200, resp.text
    contact(api, b["H"], TODAY - timedelta(days=90))  # 180 x 0.5: due today: 10 + 10 + 5 = 25
    b["K"] = known_customer(api, value_tier="high")
    contact(api, b["K"], TODAY - timedelta(days=35))  # due today - 5: 30 + 10 = 40
    b["E"] = known_customer(api, value_tier="general")  # due in 180 days: not on the agenda
    b["Z"] = known_customer(api, value_tier="high", org_unit="/HQ/U01/B02", owner="manager.zhou")
    contact(api, b["Z"], TODAY - timedelta(days=31))
    return b


def test_the_agenda_orders_the_customers_due_by_the_documented_score(
    api: Api, book: dict[str, str]
) -> None:
    resp = agenda_of(api, "manager.li", "manager.li", AGENDA_DAY)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    order = [i["customer_id"] for i in body["items"]]
    assert order == [book[k] for k in ("B", "F", "C", "A", "K", "D", "G", "H")]
    assert [i["score"] for i in body["items"]] == [55, 52, 50, 45, 40, 33, 30, 25]
    assert (body["due"], body["overdue"], body["total"]) == (8, 7, 8)
    first = body["items"][0]
    assert first["score_parts"] == {
        "tier": 10,
        "importance": 0,
        "overdue": 5,
        "complaints": 0,
        "risk": 40,
        "limit": 0,
        "reason": 0,
    }
    by_id = {i["customer_id"]: i for i in body["items"]}
    assert (by_id[book["F"]]["due_reason"], by_id[book["F"]]["channel"]) == ("risk", "in_person")
    assert by_id[book["C"]]["open_complaints"] == 1
    assert by_id[book["D"]]["limit_expiring"] is True
    assert by_id[book["H"]]["importance"] == "high"
    assert by_id[book["G"]]["overdue_days"] == 0
    assert body["plan_version"] == "2026-01-01" and body["day_plan_saved"] is False
    page = agenda_of(api, "manager.li", "manager.li", AGENDA_DAY, limit=2, offset=1).json()
    assert [i["customer_id"] for i in page["items"]] == [book["F"], book["C"]]
    assert page["total"] == 8
    # Today only those due by today: A, B, C, H and K.
    assert agenda_of(api, "manager.li", "manager.li", TODAY).json()["total"] == 5


def test_the_agenda_is_read_by_the_staff_member_their_heads_and_auditors(
    api: Api, book: dict[str, str]
) -> None:
    mint(api, "head.b02", ["outlet_head"], "/HQ/U01/B02")
    for user in ("head.sun", "president.zhao", "auditor.chen", "admin"):
        assert agenda_of(api, "manager.li", user, AGENDA_DAY).json()["total"] == 8, user
    refused = agenda_of(api, "manager.li", "manager.zhou", AGENDA_DAY)
    assert refused.status_code == 403 and "your own agenda" in refused.json()["detail"]
    assert agenda_of(api, "manager.li", "head.b02", AGENDA_DAY).status_code == 403
    zhou = agenda_of(api, "manager.zhou", "head.b02", AGENDA_DAY).json()
    assert [i["customer_id"] for i in zhou["items"]] == [book["Z"]]
    assert agenda_of(api, "manager.li", "manager.li", "2026-13-01").status_code == 422


def test_the_agenda_counts_the_days_activity(api: Api, book: dict[str, str]) -> None:
    visit(api, book["A"], "in_person", ["manager.li"], ["wealth_product"])  # A was due: met
    visit(api, book["E"], "phone", ["manager.li", "manager.zhou"], ["deposit", "card"])
    li = agenda_of(api, "manager.li", "manager.li", TODAY).json()
    assert li["activity"] == {
        "visits": 2,
        "by_channel": {"in_person": 1, "phone": 1},
        "customers_contacted": 2,
        "opportunities": 3,
        "due_met": 1,
    }
    assert book["A"] not in [i["customer_id"] for i in li["items"]]  # contacted: not due now
    zhou = agenda_of(api, "manager.zhou", "manager.zhou", TODAY).json()
    assert (zhou["activity"]["visits"], zhou["activity"]["due_met"]) == (1, 0)
    tomorrow = agenda_of(api, "manager.li", "manager.li", TODAY + timedelta(days=1)).json()
    assert tomorrow["activity"]["visits"] == 0


def test_the_agenda_names_the_holidays_ahead_and_the_customers_to_greet(api: Api) -> None:
    known_customer(api, value_tier="high")
    known_customer(api, vip_level="platinum")
    known_customer(api, value_tier="general")
    body = agenda_of(api, "manager.li", "manager.li", date(2027, 2, 4)).json()
    assert body["holidays_ahead"] == [
        {
            "id": "spring_festival",
            "name": "Spring Festival 春节",
            "on": "2027-02-06",
            "customers_to_greet": 2,
        }
    ]


# -- day plans ----------------------------------------------------------------------------------
def plan_url(staff_id: str = "manager.li", day: date = TODAY) -> str:
    return f"/api/v1/staff/{staff_id}/day-plans/{day}"


def test_a_day_plan_is_saved_whole_and_replaced_by_naming_its_version(
    api: Api, book: dict[str, str]
) -> None:
    li = api.as_("manager.li")
    morning = {
        "primary": [{"customer_id": book["B"], "note": "risk visit"}],
        "secondary": [{"customer_id": book["C"]}, {"task": "Prepare the salon invitations"}],
        "minor": [{"task": "Tidy the customer files"}],
    }
    resp = li.put(plan_url(), json=morning)
    assert resp.status_code == 200, resp.text
    assert resp.headers["ETag"] == '"1"'
    body = resp.json()
    assert (body["version"], body["org_unit"], body["evening"]) == (1, "/HQ/U01/B01", None)
    assert body["primary"] == [
        {"customer_id": book["B"], "task": None, "note": "risk visit", "done": False}
    ]
    assert agenda_of(api, "manager.li", "manager.li", TODAY).json()["day_plan_saved"] is True
    evening = {
        **morning,
        "primary": [{"customer_id": book["B"], "done": True}],
        "evening": {"actuals": {"visits": 2, "calls": 3, "products_sold": 1}, "notes": "B ok"},
    }
    assert li.put(plan_url(), json=evening).status_code == 428
    assert li.put(plan_url(), json=evening, headers={"If-Match": '"2"'}).status_code == 412
    assert li.put(plan_url(), json={**evening, "version": 2}).status_code == 409
    resp = li.put(plan_url(), json=evening, headers={"If-Match": '"1"'})
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == 2
    read = li.get(plan_url())
    assert read.status_code == 200 and read.headers["ETag"] == '"2"'
    assert read.json()["evening"]["actuals"]["calls"] == 3
    assert read.json()["primary"][0]["done"] is True
    assert li.put(plan_url(), json={**evening, "version": 1}).status_code == 409


def test_a_day_plan_is_the_staff_members_own(api: Api, book: dict[str, str]) -> None:
    body = {"primary": [{"task": "Visit the market"}]}
    refused = api.as_("head.sun").put(plan_url("manager.li"), json=body)
    assert refused.status_code == 403 and "its staff member" in refused.json()["detail"]
    assert api.as_("manager.li").put(plan_url(), json=body).status_code == 200
    mint(api, "head.b02", ["outlet_head"], "/HQ/U01/B02")
    for user, status in (
        ("head.sun", 200),
        ("president.zhao", 200),
        ("auditor.chen", 200),
        ("manager.zhou", 403),
        ("head.b02", 403),
    ):
        assert api.as_(user).get(plan_url()).status_code == status, user
    assert api.as_("manager.li").get(plan_url(day=TODAY - timedelta(days=1))).status_code == 404


def test_a_day_plan_names_known_customers_or_tasks(api: Api) -> None:
    li = api.as_("manager.li")
    unknown = {"primary": [{"customer_id": "00000000-0000-4000-8000-000000000001"}]}
    resp = li.put(plan_url(), json=unknown)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "primary.0.customer_id"
    assert li.put(plan_url(), json={"minor": [{"note": "nothing"}]}).status_code == 422
    negative = {"evening": {"actuals": {"visits": -1}}}
    assert li.put(plan_url(), json=negative).status_code == 422


# -- activity reports ---------------------------------------------------------------------------
def test_the_periods_of_the_activity_report() -> None:
    wednesday = date(2026, 12, 2)
    assert period_days(ActivityPeriod.day, wednesday) == (wednesday, wednesday)
    assert period_days(ActivityPeriod.week, wednesday) == (date(2026, 11, 30), date(2026, 12, 6))
    assert period_days(ActivityPeriod.month, wednesday) == (date(2026, 12, 1), date(2026, 12, 31))
    assert period_days(ActivityPeriod.month, date(2028, 2, 10))[1] == date(2028, 2, 29)


@pytest.fixture
def active_day(api: Api, book: dict[str, str]) -> dict[str, str]:
    visit(api, book["A"], "in_person", ["manager.li"], ["wealth_product"])
    visit(api, book["E"], "phone", ["manager.li", "manager.zhou"], ["deposit", "card"])
    plan = {
        "primary": [{"customer_id": book["A"], "done": True}],
        "evening": {"actuals": {"visits": 2, "calls": 3, "products_sold": 1}},
    }
    assert api.as_("manager.li").put(plan_url(), json=plan).status_code == 200
    walk_in = {
        "name": "Wang Wu",
        "reasons": ["funds"],
        "preliminary_value": "middle",
        "referred_to": "manager.li",
    }
    resp = api.as_("teller.wang").post("/api/v1/leads", json=walk_in)
    assert resp.status_code == 201, resp.text
    salon = {"name": "Wealth salon", "kind": "salon", "held_on": str(TODAY), "place": "B01"}
    resp = api.as_("head.sun").post("/api/v1/marketing-events", json=salon)
    assert resp.status_code == 201, resp.text
    event = f"/api/v1/marketing-events/{resp.json()['id']}"
    li = api.as_("manager.li")
    for path, body in (
        ("invitees", {"customer_ids": [book["C"]]}),
        ("attendance", {"customer_id": book["C"], "attended": True}),
        ("outcomes", {"customer_id": book["C"], "kind": "lead", "product": "fund"}),
        (
            "outcomes",
            {"customer_id": book["C"], "kind": "sale", "product": "deposit", "amount": "50000.00"},
        ),
        (
            "outcomes",
            {"customer_id": book["C"], "kind": "sale", "product": "bond", "amount": "1234.50"},
        ),
    ):
        resp = li.post(f"{event}/{path}", json=body)
        assert resp.status_code in (200, 201), resp.text
    return book


def report(api: Api, user: str, **params: Any) -> Any:
    return api.as_(user).get("/api/v1/reports/activity", params={"date": str(TODAY), **params})


def test_the_activity_report_per_employee_for_a_head(api: Api, active_day: dict[str, str]) -> None:
    resp = report(api, "head.sun", period="day")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["org_unit"], body["start"], body["end"]) == ("/HQ/U01/B01", str(TODAY), str(TODAY))
    rows = {r["staff_id"]: r for r in body["rows"]}
    assert set(rows) == {"manager.li", "manager.zhou", "teller.wang"}  # zhou: at a B01 visit
    li = rows["manager.li"]
    assert (li["visits"], li["in_person"], li["phone"], li["customers_contacted"]) == (2, 1, 1, 2)
    # Due contacts met: A by the visit, C by coming to the salon (due today, both).
    assert (li["due_met"], li["opportunities"]) == (2, 3)
    # The book: A B C D E F G H K (9); overdue now: K (due 5 days ago); A was met today.
    assert (li["book"], li["overdue_now"]) == (9, 1)
    assert (li["day_plans"], li["evening_reviews"]) == (1, 1)
    assert li["reported"] == {
        "visits": 2,
        "calls": 3,
        "messages": 0,
        "customers_contacted": 0,
        "opportunities": 0,
        "products_sold": 1,
        "new_customers": 0,
    }
    # After the salon: a lead and two sales, 50,000.00 + 1,234.50.
    assert (li["event_leads"], li["event_sales"], li["sales_amount"]) == (1, 2, "51234.50")
    assert rows["teller.wang"]["leads_identified"] == 1  # the walk-in at the counter
    zhou = rows["manager.zhou"]
    assert (zhou["visits"], zhou["book"]) == (1, 0)  # Z lies in B02, outside the scope
    assert body["total"]["visits"] == 3 and body["total"]["staff_id"] == "total"
    assert body["total"]["sales_amount"] == "51234.50"
    branch = {r["staff_id"]: r for r in report(api, "president.zhao", period="week").json()["rows"]}
    assert branch["manager.zhou"]["book"] == 1


def test_the_activity_report_as_csv(api: Api, active_day: dict[str, str]) -> None:
    resp = report(api, "head.sun", period="month", format="csv")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    text = resp.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:3] == ["staff_id (员工号)", "contacts (维护次数)", "in_person (上门拜访)"]
    assert [r[0] for r in rows[1:]] == ["manager.li", "manager.zhou", "teller.wang", "total"]
    header = rows[0]
    li = dict(zip(header, rows[1], strict=True))
    assert li["contacts (维护次数)"] == "2" and li["reported_calls (自报电话)"] == "3"
    assert li["sales_amount (成交金额)"] == "51234.50"


def test_the_activity_report_scopes(api: Api, active_day: dict[str, str]) -> None:
    own = report(api, "manager.li", period="day").json()
    assert [r["staff_id"] for r in own["rows"]] == ["manager.li"]
    refused = report(api, "manager.li", staff_id="manager.zhou")
    assert refused.status_code == 403 and "your own activity" in refused.json()["detail"]
    assert report(api, "head.sun", org_unit="/HQ/U01/B02").status_code == 403
    audit = report(api, "auditor.chen", period="day", staff_id="manager.zhou").json()
    assert [(r["staff_id"], r["visits"], r["book"]) for r in audit["rows"]] == [
        ("manager.zhou", 1, 1)
    ]
    assert report(api, "head.sun", period="year").status_code == 422


@pytest.mark.postgres
def test_two_saves_of_a_day_plan_at_once_one_wins(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    """Two first saves at once, then two replacements of version 1 at once (PostgreSQL):
    each time one is saved and the other refused, never a lost update."""
    with TestClient(create_app(visits_settings(pg_databases, dev_keys[1]))) as client:
        runtime = runtime_of(Api(client, {}, dev_keys[0]))
        li = Caller("manager.li", "Li", frozenset({"customer_manager"}), "/HQ/U01/B01")

        def save(task: str, version: int | None) -> Callable[[Session], str]:
            body = DayPlanIn.model_validate({"primary": [{"task": task}], "version": version})
            return lambda session: str(
                workday.save_day_plan(session, li, "manager.li", TODAY, body, None).version
            )

        # The other first save meets the plan saved (428: name the version) or loses the
        # insert (409); either way it is refused.
        assert _race(runtime, [save("first", None), save("second", None)]) == Counter(
            {"1": 1, "refused": 1}
        )
        assert _race(runtime, [save("third", 1), save("fourth", 1)]) == Counter(
            {"2": 1, "refused": 1}
        )
        with runtime.session_factory() as session:
            plan = session.get(DayPlan, ("manager.li", TODAY))
            assert plan is not None and plan.version == 2
            assert plan.primary_tasks[0]["task"] in {"third", "fourth"}


def _race(runtime: ServiceRuntime, calls: list[Callable[[Session], str]]) -> Counter[str]:
    """Run every call at once, each in its own session (a barrier lines them up)."""
    barrier = threading.Barrier(len(calls))
    outcomes: Counter[str] = Counter()

    def run(call: Callable[[Session], str]) -> None:
        with runtime.session_factory() as session:
            barrier.wait()
            try:
                outcome = call(session)
            except (Conflict, PreconditionRequired):
                outcome = "refused"
            except Exception as exc:  # counted, so that the assertion shows it
                outcome = f"{type(exc).__name__}: {exc}"
        outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes
