"""Visit records 客户经理拜访记录 (附件5) over HTTP: recording, who may record and read, the
participants rule, append-only corrections with their history, filters and the events."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from crmkit import devauth
from crmkit.auth import Caller
from crmkit.errors import Conflict
from crmkit.events import validate_payload
from crmkit.outbox import EventRecorder
from crmkit.runtime import ServiceRuntime
from services.visits import records
from services.visits.app import create_app
from services.visits.models import CustomerCare
from services.visits.schemas_visits import VisitIn
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.visits.conftest import events_of, known_customer, owned_by, runtime_of, visits_settings

VISITS = "/api/v1/visits"


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


def visit_body(customer_id: str, **overrides: Any) -> dict[str, Any]:
    """A maintenance visit by manager.li on 20 November 2026, 10:00 in Shanghai."""
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "visited_at": "2026-11-20T02:00:00Z",
        "channel": "in_person",
        "visit_type": "maintenance",
        "participants": [{"staff_id": "manager.li", "role": "lead"}],
        "purpose": "Quarterly maintenance visit",
        "agreed": "Review the deposit ladder in December",
        "satisfaction": "satisfied",
        "customer_comments": "Sales of farm machinery are up this season",
        "needs_found": "Working capital before the spring planting",
        "information_given": "Brochure of the agricultural loan",
        "opportunities": ["LOAN-AGRI-01", "WM-2026-07"],
        "next_contact_on": "2026-12-20",
        "next_contact_participants": ["manager.li"],
    }
    body.update(overrides)
    return body


def record(api: Api, who: str, customer_id: str, **overrides: Any) -> dict[str, Any]:
    resp = api.as_(who).post(VISITS, json=visit_body(customer_id, **overrides))
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def listed(api: Api, who: str, path: str = VISITS, **params: Any) -> list[str]:
    resp = api.as_(who).get(path, params=params)
    assert resp.status_code == 200, resp.text
    page = resp.json()
    return [item["id"] for item in page["items"]]


# -- recording ----------------------------------------------------------------------------------
def test_a_visit_is_recorded_with_its_fields_the_contact_and_the_event(api: Api) -> None:
    customer_id = known_customer(api, value_tier="middle")
    resp = api.as_("manager.li").post(VISITS, json=visit_body(customer_id))
    assert resp.status_code == 201, resp.text
    visit = resp.json()
    assert resp.headers["location"] == f"{VISITS}/{visit['id']}"
    assert visit["customer_name"] == "Zhang San"
    assert visit["org_unit"] == "/HQ/U01/B01"
    assert visit["visited_at"] == "2026-11-20T02:00:00Z"
    assert visit["participants"] == [{"staff_id": "manager.li", "role": "lead"}]
    assert visit["satisfaction"] == "satisfied" and visit["satisfaction_score"] == 4
    assert visit["opportunities"] == ["LOAN-AGRI-01", "WM-2026-07"]
    assert visit["revision"] == 1 and visit["original_id"] == visit["id"]
    assert visit["corrects"] is None and visit["history"] == []
    assert visit["recorded_by"] == "manager.li"

    # The follow-up plan heard of the contact: the customer's last contact is this visit.
    with runtime_of(api).session_factory() as session:
        care = session.get(CustomerCare, customer_id)
        assert care is not None
        assert care.last_contact_at == datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
        assert care.last_channel == "in_person"

    [event] = events_of(api, "visit.recorded")
    validate_payload("visit.recorded", 1, event)
    assert event == {
        "customer_id": customer_id,
        "visit_id": visit["id"],
        "org_unit": "/HQ/U01/B01",
        "channel": "in_person",
        "visit_type": "maintenance",
        "visited_at": "2026-11-20T02:00:00+00:00",
        "participants": [{"staff_id": "manager.li", "role": "lead"}],
        "satisfaction": "satisfied",
        "opportunities": ["LOAN-AGRI-01", "WM-2026-07"],
        "product_followed_up": None,
        "next_contact_on": "2026-12-20",
        "next_contact_participants": ["manager.li"],
        "plan_id": None,
        "corrects": None,
        "original_id": visit["id"],
        "revision": 1,
        "recorded_by": "manager.li",
    }


def test_a_time_in_another_zone_is_kept_in_utc(api: Api) -> None:
    customer_id = known_customer(api)
    # 09:30 in Shanghai (+08:00) is 01:30 UTC.
    visit = record(api, "manager.li", customer_id, visited_at="2026-11-20T09:30:00+08:00")
    assert visit["visited_at"] == "2026-11-20T01:30:00Z"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"visit_type": "post_sale"}, "product_followed_up"),
        ({"channel": "email"}, "channel"),
        ({"visited_at": "2026-11-20T10:00:00"}, "visited_at"),  # no zone
        ({"participants": []}, "participants"),
        (
            {
                "participants": [
                    {"staff_id": "manager.li", "role": "lead"},
                    {"staff_id": "manager.li", "role": "notes"},
                ]
            },
            "participants",
        ),
        ({"opportunities": ["LOAN-AGRI-01", "LOAN-AGRI-01"]}, "opportunities"),
        ({"opportunities": ["=cmd"]}, "opportunities"),
        ({"corrects": None, "correction_reason": "typo"}, "correction_reason"),
        ({"next_contact_on": None}, "next_contact_participants"),
        ({"satisfaction": "thrilled"}, "satisfaction"),
    ],
)
def test_a_record_off_its_rules_is_refused(api: Api, overrides: dict[str, Any], field: str) -> None:
    customer_id = known_customer(api)
    resp = api.as_("manager.li").post(VISITS, json=visit_body(customer_id, **overrides))
    body = problem(resp, 422)
    assert field in resp.text, body
    assert events_of(api, "visit.recorded") == []


def test_a_post_sale_visit_names_the_product_followed_up(api: Api) -> None:
    customer_id = known_customer(api)
    visit = record(
        api,
        "manager.li",
        customer_id,
        visit_type="post_sale",
        product_followed_up="LOAN-AGRI-01",
    )
    assert visit["product_followed_up"] == "LOAN-AGRI-01"


def test_a_visit_ahead_of_now_or_a_next_contact_before_it_is_refused(api: Api) -> None:
    customer_id = known_customer(api)
    ahead = api.as_("manager.li").post(
        VISITS, json=visit_body(customer_id, visited_at="2099-01-01T00:00:00Z")
    )
    assert problem(ahead, 422)["errors"][0]["field"] == "visited_at"
    before = api.as_("manager.li").post(
        VISITS, json=visit_body(customer_id, next_contact_on="2026-11-19")
    )
    assert problem(before, 422)["errors"][0]["field"] == "next_contact_on"


def test_an_unknown_customer_is_404(api: Api) -> None:
    resp = api.as_("admin").post(VISITS, json=visit_body("00000000-0000-4000-8000-000000000000"))
    problem(resp, 404)


# -- who records --------------------------------------------------------------------------------
def test_the_owner_the_team_and_heads_record_others_are_refused_with_the_reason(
    api: Api,
) -> None:
    customer_id = known_customer(api, org_unit="/HQ/U01/B01", owner="manager.li")
    lead = [{"staff_id": "manager.li", "role": "lead"}]
    for who in ("manager.zhou", "teller.wang", "auditor.chen"):
        participants = [{"staff_id": who, "role": "lead"}]
        resp = api.as_(who).post(VISITS, json=visit_body(customer_id, participants=participants))
        detail = problem(resp, 403)["detail"]
        assert "owner or serving team" in detail, who

    # A team member records the visits they took part in.
    owned_by(api, customer_id, "manager.zhou", role="team_member")
    zhou = [{"staff_id": "manager.zhou", "role": "lead"}]
    record(api, "manager.zhou", customer_id, participants=zhou)

    # Heads of the subtree record without having been there; a head elsewhere may not.
    record(api, "head.sun", customer_id, participants=lead)
    record(api, "president.zhao", customer_id, participants=lead)
    api.tokens["head.b02"] = devauth.sign(
        {"sub": "head.b02", "name": "B02", "roles": ["outlet_head"], "org_unit": "/HQ/U01/B02"},
        api.private_pem,
    )
    problem(api.as_("head.b02").post(VISITS, json=visit_body(customer_id)), 403)


def test_the_recorder_is_among_the_participants_unless_a_head(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    owned_by(api, customer_id, "manager.zhou", role="team_member")
    only_zhou = [{"staff_id": "manager.zhou", "role": "lead"}]
    resp = api.as_("manager.li").post(VISITS, json=visit_body(customer_id, participants=only_zhou))
    assert "participants" in problem(resp, 403)["detail"]
    both = [*only_zhou, {"staff_id": "manager.li", "role": "product specialist"}]
    visit = record(api, "manager.li", customer_id, participants=both)
    assert [p["staff_id"] for p in visit["participants"]] == ["manager.zhou", "manager.li"]


# -- who reads ----------------------------------------------------------------------------------
def test_reads_are_scoped_per_role(api: Api) -> None:
    b01 = known_customer(api, org_unit="/HQ/U01/B01", owner="manager.li")
    b02 = known_customer(api, org_unit="/HQ/U01/B02", owner="manager.zhou")
    v01 = record(api, "manager.li", b01)["id"]
    zhou = [{"staff_id": "manager.zhou", "role": "lead"}]
    v02 = record(api, "manager.zhou", b02, participants=zhou)["id"]

    expected = {
        "manager.li": {v01},
        "manager.zhou": {v02},
        "head.sun": {v01},  # outlet head of /HQ/U01/B01
        "president.zhao": {v01, v02},  # branch president of /HQ/U01
        "auditor.chen": {v01, v02},
        "admin": {v01, v02},
        "teller.wang": set(),  # serves neither
    }
    for who, visible in expected.items():
        assert set(listed(api, who)) == visible, who

    assert api.as_("president.zhao").get(f"{VISITS}/{v01}").status_code == 200
    refused = problem(api.as_("manager.li").get(f"{VISITS}/{v02}"), 403)
    assert "neither owned nor served" in refused["detail"]
    problem(api.as_("head.sun").get(f"/api/v1/customers/{b02}/visits"), 403)
    problem(api.as_("manager.li").get(f"{VISITS}/no-such-visit"), 404)
    problem(api.as_("admin").get("/api/v1/customers/no-such-customer/visits"), 404)
    assert listed(api, "manager.zhou", f"/api/v1/customers/{b02}/visits") == [v02]

    # A new team member reads the customer's history.
    owned_by(api, b02, "manager.li", role="team_member")
    assert set(listed(api, "manager.li")) == {v01, v02}


def test_filters_and_pages(api: Api) -> None:
    first = known_customer(api, org_unit="/HQ/U01/B01")
    second = known_customer(api, org_unit="/HQ/U01/B01")
    owned_by(api, second, "manager.zhou", role="team_member")
    a = record(api, "manager.li", first, visited_at="2026-11-02T02:00:00Z")["id"]
    # 16:30 UTC on 19 November is 00:30 on 20 November in Shanghai: business date 20 November.
    b = record(api, "manager.li", second, visited_at="2026-11-19T16:30:00Z")["id"]
    zhou = [{"staff_id": "manager.zhou", "role": "lead"}]
    c = record(api, "manager.zhou", second, visited_at="2026-11-25T02:00:00Z", participants=zhou)[
        "id"
    ]

    assert listed(api, "admin") == [c, b, a]  # the latest first
    assert listed(api, "admin", customer_id=second) == [c, b]
    assert listed(api, "admin", staff_id="manager.zhou") == [c]
    assert listed(api, "admin", **{"from": "2026-11-20", "to": "2026-11-25"}) == [c, b]
    assert listed(api, "admin", **{"to": "2026-11-19"}) == [a]
    assert listed(api, "admin", org_unit="/HQ/U01/B02") == []
    page = api.as_("admin").get(VISITS, params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [v["id"] for v in page["items"]] == [b]
    backwards = api.as_("admin").get(VISITS, params={"from": "2026-11-25", "to": "2026-11-20"})
    problem(backwards, 422)


# -- append-only --------------------------------------------------------------------------------
def test_records_cannot_be_changed_or_deleted(api: Api) -> None:
    customer_id = known_customer(api)
    visit_id = record(api, "manager.li", customer_id)["id"]
    for method in ("PUT", "PATCH", "DELETE"):
        resp = api.as_("admin").request(method, f"{VISITS}/{visit_id}", json={})
        assert problem(resp, 405)["title"] == "Method not allowed", method
    resp = api.as_("admin").request("DELETE", VISITS)
    problem(resp, 405)


def test_a_correction_references_the_old_and_reads_show_the_latest_with_history(
    api: Api,
) -> None:
    customer_id = known_customer(api)
    first = record(api, "manager.li", customer_id)
    second = record(
        api,
        "manager.li",
        customer_id,
        corrects=first["id"],
        correction_reason="the customer was very satisfied, not satisfied",
        satisfaction="very_satisfied",
    )
    assert second["corrects"] == first["id"] and second["revision"] == 2
    assert second["original_id"] == first["id"]
    assert [h["id"] for h in second["history"]] == [first["id"]]
    assert second["history"][0]["satisfaction"] == "satisfied"  # the old version stays

    # Reading any version shows the current one, with the earlier ones.
    read = api.as_("manager.li").get(f"{VISITS}/{first['id']}").json()
    assert read["id"] == second["id"] and read["satisfaction_score"] == 5
    assert [h["revision"] for h in read["history"]] == [1]
    assert listed(api, "manager.li") == [second["id"]]
    assert listed(api, "manager.li", f"/api/v1/customers/{customer_id}/visits") == [second["id"]]

    # A record is corrected once: the next correction corrects the current version.
    again = api.as_("manager.li").post(
        VISITS,
        json=visit_body(customer_id, corrects=first["id"], correction_reason="once more"),
    )
    assert problem(again, 409)["current_id"] == second["id"]
    third = record(
        api, "manager.li", customer_id, corrects=second["id"], correction_reason="next date"
    )
    assert third["revision"] == 3
    assert [h["id"] for h in third["history"]] == [first["id"], second["id"]]

    kept = events_of(api, "visit.recorded")
    assert [(e["revision"], e["corrects"], e["original_id"]) for e in kept] == [
        (1, None, first["id"]),
        (2, first["id"], first["id"]),
        (3, second["id"], first["id"]),
    ]
    for event in kept:
        validate_payload("visit.recorded", 1, event)


def test_a_correction_names_a_record_of_the_same_customer_with_a_reason(api: Api) -> None:
    customer_id = known_customer(api)
    other = known_customer(api)
    theirs = record(api, "manager.li", other)["id"]
    wrong = api.as_("manager.li").post(
        VISITS, json=visit_body(customer_id, corrects=theirs, correction_reason="typo")
    )
    assert problem(wrong, 422)["errors"][0]["field"] == "corrects"
    mine = record(api, "manager.li", customer_id)["id"]
    no_reason = api.as_("manager.li").post(VISITS, json=visit_body(customer_id, corrects=mine))
    assert "correction_reason" in problem(no_reason, 422)["errors"][0]["reason"]


def test_a_correction_does_not_count_the_contact_again(api: Api) -> None:
    customer_id = known_customer(api)
    first = record(api, "manager.li", customer_id, visited_at="2026-11-20T02:00:00Z")
    record(
        api,
        "manager.li",
        customer_id,
        visited_at="2026-11-21T02:00:00Z",
        corrects=first["id"],
        correction_reason="the visit was on the 21st",
    )
    with runtime_of(api).session_factory() as session:
        care = session.get(CustomerCare, customer_id)
        assert care is not None
        assert care.last_contact_at == datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


# -- concurrent corrections (PostgreSQL) --------------------------------------------------------
def race(
    runtime: ServiceRuntime, calls: list[Callable[[Session, EventRecorder], object]]
) -> Counter[str]:
    """Run every call at once, each in its own session (a barrier lines them up): "made" for
    each that returned, "conflict" for each refused with a Conflict."""
    barrier = threading.Barrier(len(calls))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(call: Callable[[Session, EventRecorder], object]) -> None:
        with runtime.session_factory() as session:
            barrier.wait()
            try:
                call(session, runtime.recorder)
                outcome = "made"
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


MANAGER_LI = Caller("manager.li", "Li", frozenset({"customer_manager"}), "/HQ/U01/B01")


@contextmanager
def on_postgres(databases: Databases, keys: tuple[str, Path]) -> Iterator[Api]:
    """The service on PostgreSQL, whatever the backend under test (concurrent writers)."""
    with TestClient(create_app(visits_settings(databases, keys[1]))) as client:
        yield Api(client, {}, keys[0])


@pytest.mark.postgres
def test_of_five_corrections_of_one_record_at_once_one_is_made(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    with on_postgres(pg_databases, dev_keys) as pg_api:
        five_corrections(pg_api)


def five_corrections(pg_api: Api) -> None:
    customer_id = known_customer(pg_api)
    first = record(pg_api, "manager.li", customer_id)["id"]

    def correct(n: int) -> Callable[[Session, EventRecorder], object]:
        body = VisitIn.model_validate(
            visit_body(customer_id, corrects=first, correction_reason=f"rival {n}")
        )
        return lambda session, recorder: records.record_visit(session, recorder, body, MANAGER_LI)

    outcomes = race(runtime_of(pg_api), [correct(n) for n in range(5)])
    assert outcomes == Counter({"made": 1, "conflict": 4})
    current = pg_api.as_("manager.li").get(f"{VISITS}/{first}").json()
    assert current["revision"] == 2 and len(current["history"]) == 1
    assert len(events_of(pg_api, "visit.recorded")) == 2
