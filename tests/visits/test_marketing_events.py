"""Marketing events 营销活动: organised by a unit's heads and front-line staff; invitations
published one per invitee (``marketing_event.invited``), sent once; attendance (a contact with
the customer); the leads and sales that follow, with the counts and conversion; who may do
what."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmkit import devauth
from crmkit.auth import Caller
from services.visits import marketing
from services.visits.app import create_app
from services.visits.models import CustomerCare
from services.visits.models_marketing import MarketingInvitee
from services.visits.schemas_marketing import EventKind, InviteesIn, MarketingEventIn
from tests.assignment.conftest import race
from tests.conftest import Databases
from tests.customer.conftest import Api, _As
from tests.visits.conftest import events_of, known_customer, runtime_of, visits_settings

EVENTS = "/api/v1/marketing-events"


def as_user(api: Api, user: str) -> _As:
    if user == "teller.zhang":  # a teller of another outlet, beside the seeded users
        claims = {"sub": user, "name": user, "roles": ["teller"], "org_unit": "/HQ/U01/B02"}
        return _As(api.client, {"Authorization": f"Bearer {devauth.sign(claims, api.private_pem)}"})
    return api.as_(user)


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


def organise(api: Api, user: str = "head.sun", **fields: Any) -> Any:
    body = {
        "name": "Wealth salon 理财沙龙",
        "kind": "salon",
        "held_on": "2026-12-12",
        "place": "Outlet B01, 2nd floor",
        "budget": "3000.00",
        **fields,
    }
    return as_user(api, user).post(EVENTS, json=body)


def organised(api: Api, user: str = "head.sun", **fields: Any) -> dict[str, Any]:
    resp = organise(api, user, **fields)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def invite(api: Api, user: str, event_id: str, *customer_ids: str, **extra: Any) -> Any:
    body = {"customer_ids": list(customer_ids), **extra}
    return as_user(api, user).post(f"{EVENTS}/{event_id}/invitees", json=body)


def attend(api: Api, user: str, event_id: str, customer_id: str, attended: bool = True) -> Any:
    body = {"customer_id": customer_id, "attended": attended}
    return as_user(api, user).post(f"{EVENTS}/{event_id}/attendance", json=body)


def outcome(api: Api, user: str, event_id: str, customer_id: str, **body: Any) -> Any:
    return as_user(api, user).post(
        f"{EVENTS}/{event_id}/outcomes", json={"customer_id": customer_id, **body}
    )


@pytest.fixture
def customers(api: Api) -> dict[str, str]:
    """Four customers of manager.li at B01 and one of manager.zhou at B02."""
    ours = {f"c{n}": known_customer(api, name=f"Customer {n}") for n in range(1, 5)}
    theirs = known_customer(api, name="Far customer", org_unit="/HQ/U01/B02", owner="manager.zhou")
    return {**ours, "b02": theirs}


# -- organising ---------------------------------------------------------------------------------
def test_heads_and_front_line_staff_organise_events_of_their_unit(api: Api) -> None:
    resp = organise(api)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert resp.headers["Location"] == f"{EVENTS}/{out['id']}"
    assert (out["org_unit"], out["budget"], out["created_by"]) == (
        "/HQ/U01/B01",
        "3000.00",
        "head.sun",
    )
    assert organised(api, "manager.li", kind="customer_gathering")["org_unit"] == "/HQ/U01/B01"
    branch = organised(api, "president.zhao", org_unit="/HQ/U01", kind="high_end")
    assert branch["org_unit"] == "/HQ/U01"
    problem(organise(api, "manager.li", org_unit="/HQ/U01"), 403)  # a unit above theirs
    problem(organise(api, "head.sun", org_unit="/HQ/U01/B02"), 403)
    problem(organise(api, "auditor.chen"), 403)
    problem(organise(api, kind="party"), 422)
    problem(organise(api, budget="-1.00"), 422)


def test_events_are_read_by_the_unit_below_and_above(api: Api) -> None:
    b01 = organised(api)["id"]
    branch = organised(api, "president.zhao", org_unit="/HQ/U01")["id"]
    b02 = organised(api, "manager.zhou", held_on="2026-12-20")["id"]

    def ids(user: str, **params: str) -> list[str]:
        resp = as_user(api, user).get(EVENTS, params=params)
        assert resp.status_code == 200, resp.text
        return sorted(e["id"] for e in resp.json()["items"])

    assert ids("manager.li") == sorted([b01, branch])  # its outlet's and its branch's
    assert ids("teller.zhang") == sorted([branch, b02])
    assert ids("president.zhao") == sorted([b01, branch, b02])
    assert ids("auditor.chen") == sorted([b01, branch, b02])
    assert ids("president.zhao", **{"from": "2026-12-15"}) == [b02]
    problem(as_user(api, "teller.zhang").get(f"{EVENTS}/{b01}"), 404)
    problem(api.as_("risk.he").get(EVENTS), 403)
    assert api.as_("manager.li").get(f"{EVENTS}/{branch}").status_code == 200


# -- invitations --------------------------------------------------------------------------------
def test_each_invitee_is_published_once(api: Api, customers: dict[str, str]) -> None:
    event = organised(api)
    resp = invite(api, "manager.li", event["id"], customers["c1"], customers["c2"])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "event_id": event["id"],
        "invited": [customers["c1"], customers["c2"]],
        "already_invited": [],
    }
    sent = events_of(api, "marketing_event.invited")
    assert [e["customer_id"] for e in sent] == [customers["c1"], customers["c2"]]
    assert sent[0] == {
        "marketing_event_id": event["id"],
        "customer_id": customers["c1"],
        "owner_id": "manager.li",
        "org_unit": "/HQ/U01/B01",
        "event_name": "Wealth salon 理财沙龙",
        "event_kind": "salon",
        "held_on": "2026-12-12",
        "place": "Outlet B01, 2nd floor",
        "channel": "sms",
        "invited_by": "manager.li",
        "invited_at": sent[0]["invited_at"],
    }
    again = invite(api, "head.sun", event["id"], customers["c2"], customers["c3"], channel="phone")
    assert again.json()["invited"] == [customers["c3"]]
    assert again.json()["already_invited"] == [customers["c2"]]
    sent = events_of(api, "marketing_event.invited")
    assert len(sent) == 3 and sent[2]["channel"] == "phone"  # c2 was not sent again


def test_staff_invite_the_customers_they_serve(api: Api, customers: dict[str, str]) -> None:
    event = organised(api)["id"]
    refused = problem(invite(api, "manager.li", event, customers["c1"], customers["b02"]), 403)
    assert refused["customer_ids"] == [customers["b02"]]
    problem(invite(api, "head.sun", event, customers["b02"]), 403)  # not his subtree
    problem(invite(api, "teller.wang", event, customers["c1"]), 403)  # serves nobody
    unknown = "00000000-0000-4000-8000-000000000000"
    body = problem(invite(api, "manager.li", event, customers["c1"], unknown), 422)
    assert body["errors"] == [{"field": "customer_ids.1", "reason": "unknown customer"}]
    assert events_of(api, "marketing_event.invited") == []  # all or nothing
    resp = invite(api, "president.zhao", event, customers["b02"])  # the branch's customers
    assert resp.status_code == 200, resp.text
    problem(invite(api, "manager.zhou", event, customers["b02"]), 404)  # cannot read B01's


# -- attendance and outcomes --------------------------------------------------------------------
def test_attendance_outcomes_and_conversion(api: Api, customers: dict[str, str]) -> None:
    event = organised(api)["id"]
    c1, c2, c3, c4 = (customers[f"c{n}"] for n in range(1, 5))
    assert invite(api, "manager.li", event, c1, c2, c3, c4).status_code == 200
    for customer_id, came in ((c1, True), (c2, True), (c3, True), (c4, False)):
        assert attend(api, "head.sun", event, customer_id, came).status_code == 200
    problem(attend(api, "head.sun", event, customers["b02"]), 422)  # not invited
    late = problem(outcome(api, "manager.li", event, c4, kind="lead", product="loan"), 409)
    assert "attendance" in late["detail"]

    made = outcome(api, "manager.li", event, c1, kind="lead", product="wealth product")
    assert made.status_code == 201, made.text
    for customer_id, amount in ((c1, "50000.00"), (c2, "20000.00")):
        resp = outcome(api, "manager.li", event, customer_id, kind="sale", product="deposit")
        assert resp.status_code == 201, resp.text
        resp = outcome(
            api, "manager.li", event, customer_id, kind="sale", product="CD", amount=amount
        )
        assert resp.json()["amount"] == amount
    problem(outcome(api, "manager.li", event, c1, kind="sale", product="CD", amount="0"), 422)

    detail = api.as_("manager.li").get(f"{EVENTS}/{event}").json()
    # 4 invited, 3 came (c1, c2, c3), 1 did not (c4). Outcomes: 1 lead (c1) and 4 sales
    # (c1 twice, c2 twice) of 50000.00 + 20000.00 = 70000.00 with amounts. Attendees with a
    # lead or sale: c1, c2 = 2; with a sale: c1, c2 = 2. Attendance 3 / 4 = 0.7500;
    # lead rate and conversion 2 / 3 = 0.6667.
    assert detail["counts"] == {
        "invited": 4,
        "attended": 3,
        "absent": 1,
        "attendance_unknown": 0,
        "leads": 1,
        "sales": 4,
        "sales_amount": "70000.00",
        "customers_with_lead": 2,
        "customers_with_sale": 2,
        "attendance_rate": "0.7500",
        "lead_rate": "0.6667",
        "conversion_rate": "0.6667",
    }
    by_customer = {i["customer_id"]: i for i in detail["invitees"]}
    assert (by_customer[c1]["name"], by_customer[c1]["owner_id"]) == ("Customer 1", "manager.li")
    assert (by_customer[c4]["attended"], by_customer[c4]["attendance_by"]) == (False, "head.sun")
    assert len(detail["outcomes"]) == 5


def test_coming_to_an_event_is_a_contact(api: Api, customers: dict[str, str]) -> None:
    event = organised(api)["id"]
    assert invite(api, "manager.li", event, customers["c1"], customers["c2"]).status_code == 200
    assert attend(api, "manager.li", event, customers["c1"]).status_code == 200
    assert attend(api, "manager.li", event, customers["c2"], attended=False).status_code == 200
    with runtime_of(api).session_factory() as session:
        care = {
            c.customer_id: c
            for c in session.scalars(
                select(CustomerCare).where(
                    CustomerCare.customer_id.in_([customers["c1"], customers["c2"]])
                )
            )
        }
    assert care[customers["c1"]].last_channel == "event"
    assert care[customers["c1"]].last_contact_at is not None
    assert care[customers["c2"]].last_contact_at is None


def test_who_records_attendance_and_outcomes(api: Api, customers: dict[str, str]) -> None:
    event = organised(api, "manager.li")["id"]
    assert invite(api, "manager.li", event, customers["c1"]).status_code == 200
    problem(attend(api, "teller.wang", event, customers["c1"]), 403)  # neither organiser nor staff
    problem(attend(api, "manager.zhou", event, customers["c1"]), 404)  # cannot read the event
    assert attend(api, "manager.li", event, customers["c1"]).status_code == 200  # organiser
    assert attend(api, "head.sun", event, customers["c1"]).status_code == 200  # head of the unit
    problem(outcome(api, "teller.wang", event, customers["c1"], kind="lead", product="x"), 403)
    resp = outcome(api, "head.sun", event, customers["c1"], kind="lead", product="card")
    assert resp.status_code == 201, resp.text


# -- concurrent invitations (PostgreSQL: SQLite serialises writers) ------------------------------
@pytest.mark.postgres
def test_a_customer_invited_by_several_staff_at_once_gets_one_invitation(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    head = Caller("head.sun", "Sun", frozenset({"outlet_head"}), "/HQ/U01/B01")
    rivals = 8
    with TestClient(create_app(visits_settings(pg_databases, dev_keys[1]))) as client:
        api = Api(client, {}, dev_keys[0])
        runtime = runtime_of(api)
        c1, c2 = known_customer(api), known_customer(api)
        with runtime.session_factory() as session:
            body = MarketingEventIn(
                name="Salon", kind=EventKind.salon, held_on=date(2026, 12, 12), place="B01"
            )
            event_id = marketing.create_event(session, body, head).id

        def invite_both(session: Any, recorder: Any) -> str:
            result = marketing.invite(session, event_id, InviteesIn(customer_ids=[c1, c2]), head)
            return "sent" if result.invited else "already"

        calls: list[Callable[..., str]] = [invite_both] * rivals
        assert race(runtime, calls) == Counter({"sent": 1, "already": rivals - 1})
        with runtime.session_factory() as session:
            count = select(func.count()).select_from(MarketingInvitee)
            assert session.scalar(count) == 2
        assert len(events_of(api, "marketing_event.invited")) == 2
