"""Enquiries 咨询: the deadline in business days by the policy's calendar, the late list, the
answer (once) and the events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.events import validate_payload
from crmkit.outbox import EventRecorder
from services.visits import records
from services.visits.schemas_visits import EnquiryAnswerIn
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.visits.conftest import events_of, known_customer, owned_by, runtime_of
from tests.visits.test_visits import MANAGER_LI, listed, on_postgres, problem, race

ENQUIRIES = "/api/v1/enquiries"


def enquiry_body(customer_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "channel": "phone",
        "subject": "Early repayment",
        "question": "Can the agricultural loan be repaid before March?",
    }
    body.update(overrides)
    return body


def log(api: Api, who: str, customer_id: str, **overrides: Any) -> dict[str, Any]:
    resp = api.as_(who).post(ENQUIRIES, json=enquiry_body(customer_id, **overrides))
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


# -- the deadline -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("received", "due"),
    [
        # Friday 27 November: Monday 30 (1), Tuesday 1 December (2).
        (date(2026, 11, 27), date(2026, 12, 1)),
        # Saturday 28 November: the same two business days.
        (date(2026, 11, 28), date(2026, 12, 1)),
        # Wednesday 30 September: 1-7 October are holidays; Thursday 8 (1), Friday 9 (2).
        (date(2026, 9, 30), date(2026, 10, 9)),
        # Friday 9 October: Saturday 10 October is a working day 调休 (1), Monday 12 (2).
        (date(2026, 10, 9), date(2026, 10, 12)),
        # Friday 13 February: Saturday 14 is worked (1); 15-23 are the Spring Festival; Tuesday
        # 24 (2).
        (date(2026, 2, 13), date(2026, 2, 24)),
    ],
)
def test_the_deadline_counts_business_days_of_the_policy_calendar(
    received: date, due: date
) -> None:
    policy = records.enquiry_policy_on(received)
    assert policy.version == "2026-01-01" and policy.answer_within_business_days == 2
    assert policy.due_on(received) == due


def test_an_enquiry_is_logged_with_its_due_date_assignee_and_event(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    # 17:00 UTC on Thursday 26 November is 01:00 on Friday 27 November in Shanghai: due Tuesday.
    enquiry = log(api, "head.sun", customer_id, received_at="2026-11-26T17:00:00Z")
    assert enquiry["due_on"] == "2026-12-01"
    assert enquiry["status"] == "open" and enquiry["answer"] is None
    assert enquiry["assigned_to"] == "manager.li"  # the owner answers by default
    assert enquiry["recorded_by"] == "head.sun"
    [event] = events_of(api, "enquiry.recorded")
    validate_payload("enquiry.recorded", 1, event)
    assert event == {
        "customer_id": customer_id,
        "enquiry_id": enquiry["id"],
        "org_unit": "/HQ/U01/B01",
        "channel": "phone",
        "subject": "Early repayment",
        "received_at": "2026-11-26T17:00:00+00:00",
        "due_on": "2026-12-01",
        "assigned_to": "manager.li",
        "recorded_by": "head.sun",
    }


def test_an_enquiry_is_assigned_to_the_caller_or_someone_serving_the_customer(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    resp = api.as_("manager.li").post(
        ENQUIRIES, json=enquiry_body(customer_id, assigned_to="manager.zhou")
    )
    assert problem(resp, 422)["errors"][0]["field"] == "assigned_to"
    owned_by(api, customer_id, "manager.zhou", role="team_member")
    assert log(api, "manager.li", customer_id, assigned_to="manager.zhou")["assigned_to"] == (
        "manager.zhou"
    )
    ahead = api.as_("manager.li").post(
        ENQUIRIES, json=enquiry_body(customer_id, received_at="2099-01-01T00:00:00Z")
    )
    assert problem(ahead, 422)["errors"][0]["field"] == "received_at"
    problem(api.as_("teller.wang").post(ENQUIRIES, json=enquiry_body(customer_id)), 403)


# -- late ---------------------------------------------------------------------------------------
def test_late_is_after_the_due_date_not_on_it(api: Api) -> None:
    customer_id = known_customer(api)
    enquiry_id = log(api, "manager.li", customer_id, received_at="2026-11-27T02:00:00Z")["id"]
    admin = Caller("admin", "Admin", frozenset({"admin"}), "/HQ")
    with runtime_of(api).session_factory() as session:
        # Due Tuesday 1 December: on time that day, late from Wednesday 2.
        on_day, on_total = records.list_enquiries(
            session, admin, late=True, today=date(2026, 12, 1)
        )
        after, after_total = records.list_enquiries(
            session, admin, late=True, today=date(2026, 12, 2)
        )
    assert on_total == 0 and on_day == []
    assert after_total == 1 and after[0].id == enquiry_id and after[0].late


def test_the_late_list_and_answers_on_time_and_late(api: Api) -> None:
    customer_id = known_customer(api)
    # Received Monday 2 November: due Wednesday 4 November, long past.
    overdue = log(api, "manager.li", customer_id, received_at="2026-11-02T02:00:00Z")
    answered_late = log(api, "manager.li", customer_id, received_at="2026-11-03T02:00:00Z")
    fresh = log(api, "manager.li", customer_id)  # received now: due in two business days
    assert overdue["late"] is True and fresh["late"] is False

    resp = api.as_("manager.li").post(
        f"{ENQUIRIES}/{answered_late['id']}/answer", json={"answer": "Yes, from March."}
    )
    assert resp.status_code == 200, resp.text
    late_answer = resp.json()
    assert late_answer["status"] == "answered" and late_answer["late"] is True
    assert late_answer["answered_by"] == "manager.li"
    on_time = api.as_("head.sun").post(
        f"{ENQUIRIES}/{fresh['id']}/answer", json={"answer": "Yes, without a fee."}
    )
    assert on_time.status_code == 200 and on_time.json()["late"] is False

    assert set(listed(api, "manager.li", ENQUIRIES, late="true")) == {
        overdue["id"],
        answered_late["id"],
    }
    assert listed(api, "manager.li", ENQUIRIES, late="false") == [fresh["id"]]
    assert listed(api, "manager.li", ENQUIRIES, status="open") == [overdue["id"]]
    assert listed(api, "manager.li", ENQUIRIES, status="answered") == [
        answered_late["id"],
        fresh["id"],
    ]  # the earliest due first

    answered = events_of(api, "enquiry.answered")
    for event in answered:
        validate_payload("enquiry.answered", 1, event)
    assert [(e["enquiry_id"], e["late"], e["due_on"]) for e in answered] == [
        (answered_late["id"], True, "2026-11-05"),
        (fresh["id"], False, fresh["due_on"]),
    ]


def test_an_enquiry_is_answered_once_by_those_who_serve_the_customer(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    enquiry_id = log(api, "manager.li", customer_id)["id"]
    answer = f"{ENQUIRIES}/{enquiry_id}/answer"
    problem(api.as_("manager.zhou").post(answer, json={"answer": "No."}), 403)
    problem(api.as_("manager.li").post(answer, json={"answer": ""}), 422)
    assert api.as_("manager.li").post(answer, json={"answer": "Yes."}).status_code == 200
    assert (
        "already answered"
        in problem(api.as_("manager.li").post(answer, json={"answer": "Yes again."}), 409)["detail"]
    )
    problem(api.as_("manager.li").post(f"{ENQUIRIES}/nope/answer", json={"answer": "?"}), 404)
    read = api.as_("manager.li").get(f"{ENQUIRIES}/{enquiry_id}").json()
    assert read["answer"] == "Yes."
    assert len(events_of(api, "enquiry.answered")) == 1


def test_enquiries_are_read_in_scope(api: Api) -> None:
    b01 = known_customer(api, org_unit="/HQ/U01/B01", owner="manager.li")
    b02 = known_customer(api, org_unit="/HQ/U01/B02", owner="manager.zhou")
    one = log(api, "manager.li", b01)["id"]
    two = log(api, "manager.zhou", b02)["id"]
    assert listed(api, "manager.li", ENQUIRIES) == [one]
    assert listed(api, "head.sun", ENQUIRIES) == [one]
    assert set(listed(api, "president.zhao", ENQUIRIES)) == {one, two}
    assert listed(api, "admin", ENQUIRIES, customer_id=b02) == [two]
    assert listed(api, "admin", ENQUIRIES, assigned_to="manager.zhou") == [two]
    problem(api.as_("manager.li").get(f"{ENQUIRIES}/{two}"), 403)


@pytest.mark.postgres
def test_of_five_answers_at_once_one_is_kept(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    with on_postgres(pg_databases, dev_keys) as pg_api:
        five_answers(pg_api)


def five_answers(pg_api: Api) -> None:
    customer_id = known_customer(pg_api, owner="manager.li")
    enquiry_id = log(pg_api, "manager.li", customer_id)["id"]

    def answer(n: int) -> Callable[[Session, EventRecorder], object]:
        body = EnquiryAnswerIn(answer=f"answer {n}")
        return lambda session, recorder: records.answer_enquiry(
            session, recorder, enquiry_id, body, MANAGER_LI
        )

    assert race(runtime_of(pg_api), [answer(n) for n in range(5)]) == Counter(
        {"made": 1, "conflict": 4}
    )
    [event] = events_of(pg_api, "enquiry.answered")
    kept = pg_api.as_("manager.li").get(f"{ENQUIRIES}/{enquiry_id}").json()
    assert kept["answer"].startswith("answer ") and event["enquiry_id"] == enquiry_id
