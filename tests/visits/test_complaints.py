"""Complaints 投诉: the whole path with its owners, steps only forward and in order, deadlines and
escalation with a controlled clock, the outcome required to close, events, access per role and
the report by branch."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from crmkit import devauth
from crmkit.auth import Caller
from crmkit.events import validate_payload
from services.visits import complaints
from services.visits.complaints import (
    ComplaintFilter,
    StepDeadline,
    add_business_days,
    deadline,
    escalate_late,
    open_counts,
)
from tests.customer.conftest import Api
from tests.visits.conftest import events_of, known_customer, owned_by, runtime_of

CLOSING = {
    "outcome": "retained",
    "person_at_fault": "teller.wang",
    "sanction": "Written warning",
    "root_cause": "One window open at the busiest hour",
    "lesson": "Open a second window when more than ten wait",
    "fix_description": "Peak-hour staffing rota",
    "fix_owner_id": "head.sun",
    "fix_due_on": "2026-12-31",
}
PRESIDENT = Caller("president.zhao", "Zhao", frozenset({"branch_president"}), "/HQ/U01")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def record(api: Api, customer_id: str, user: str = "teller.wang", **extra: Any) -> Any:
    body = {
        "customer_id": customer_id,
        "channel": "counter",
        "category": "waiting",
        "description": "Waited forty minutes at the counter",
        **extra,
    }
    return api.as_(user).post("/api/v1/complaints", json=body)


def move(api: Api, user: str, complaint_id: str, to: str, **extra: Any) -> Any:
    body = {"to": to, "note": f"{to} by {user}", **extra}
    return api.as_(user).post(f"/api/v1/complaints/{complaint_id}/transitions", json=body)


# -- deadlines ----------------------------------------------------------------------------------
def test_business_days_skip_the_weekend() -> None:
    # 2026-11-27 is a Friday: one business day later is Monday the 30th, five is Friday 12-04.
    assert add_business_days(date(2026, 11, 27), 1) == date(2026, 11, 30)
    assert add_business_days(date(2026, 11, 27), 5) == date(2026, 12, 4)
    # From a Saturday, the first business day is the Monday.
    assert add_business_days(date(2026, 11, 28), 1) == date(2026, 11, 30)


@pytest.mark.parametrize(
    ("start", "amount", "unit", "due"),
    [
        # Friday 15:00 in Shanghai (07:00Z) + 1 business day = Monday 15:00 (07:00Z).
        ("2026-11-27T07:00:00+00:00", 1, "business_days", "2026-11-30T07:00:00+00:00"),
        # Wednesday 10:30 Shanghai + 5 business days = the next Wednesday at 10:30.
        ("2026-11-25T02:30:00+00:00", 5, "business_days", "2026-12-02T02:30:00+00:00"),
        # Friday 23:30 in Shanghai is still Friday there (15:30Z): Monday 23:30 Shanghai.
        ("2026-11-27T15:30:00+00:00", 1, "business_days", "2026-11-30T15:30:00+00:00"),
        ("2026-11-27T07:00:00+00:00", 2, "calendar_days", "2026-11-29T07:00:00+00:00"),
        ("2026-11-27T07:00:00+00:00", 36, "hours", "2026-11-28T19:00:00+00:00"),
    ],
)
def test_a_step_deadline_by_unit(start: str, amount: int, unit: str, due: str) -> None:
    rule = StepDeadline.model_validate({"amount": amount, "unit": unit})
    assert deadline(at(start), rule) == at(due)


def test_the_policy_in_force_holds_the_example_deadlines() -> None:
    policy = complaints.policy_on(date(2026, 11, 30))
    days = {
        step: getattr(policy.deadlines, step).amount for step in type(policy.deadlines).model_fields
    }
    assert days == {"accept": 1, "analyse": 2, "handle": 5, "feedback": 1, "close": 1}
    assert policy.high_tier.matches("high", None, None)
    assert policy.high_tier.matches("general", "gold", None)
    assert policy.high_tier.matches(None, None, "layer_1")
    assert not policy.high_tier.matches("middle", None, "layer_2")


# -- the whole path -----------------------------------------------------------------------------
def test_the_whole_path_with_owners_events_and_the_outcome(api: Api) -> None:
    customer_id = known_customer(api, value_tier="general", owner="manager.li")
    created = record(api, customer_id)
    assert created.status_code == 201, created.text
    c = created.json()
    assert created.headers["location"] == f"/api/v1/complaints/{c['id']}"
    assert c["status"] == "recorded" and c["current_step"] == "accept"
    # The first step's owner defaults to the customer's owner, who is linked too.
    assert c["step_owner_id"] == "manager.li" and c["customer_owner_id"] == "manager.li"
    assert c["recorded_by"] == "teller.wang" and not c["high_tier"]
    assert c["escalated_at"] is None
    recorded_at = datetime.fromisoformat(c["recorded_at"])
    rule = StepDeadline(amount=1, unit="business_days")
    assert datetime.fromisoformat(c["step_due_at"]) == deadline(recorded_at, rule)
    assert [s["step"] for s in c["steps"]] == ["record", "accept"]
    assert c["steps"][0]["done_by"] == "teller.wang" and c["steps"][1]["done_at"] is None
    cid = c["id"]

    # The teller does not own the accept step and heads nothing: 403.
    refused = move(api, "teller.wang", cid, "accepted")
    assert refused.status_code == 403 and "manager.li" in refused.json()["detail"]
    # Steps go forward in order only.
    skipped = move(api, "manager.li", cid, "handled")
    assert skipped.status_code == 409 and "the next is accepted" in skipped.json()["detail"]
    assert move(api, "manager.li", cid, "recorded").status_code == 409

    accepted = move(api, "manager.li", cid, "accepted", owner="manager.zhou")
    assert accepted.status_code == 200, accepted.text
    a = accepted.json()
    assert a["status"] == "accepted" and a["current_step"] == "analyse"
    assert a["step_owner_id"] == "manager.zhou" and a["version"] == c["version"] + 1
    # Backwards is refused as well.
    assert move(api, "manager.zhou", cid, "accepted").status_code == 409
    # manager.li no longer owns the step waited for.
    assert move(api, "manager.li", cid, "analysed").status_code == 403
    assert move(api, "manager.zhou", cid, "analysed").status_code == 200
    # The owner carries on by default; a head of the subtree may move any step.
    assert move(api, "head.sun", cid, "handled").json()["step_owner_id"] == "manager.zhou"
    fed_back = move(api, "manager.zhou", cid, "feedback_given", owner="head.sun")
    assert fed_back.json()["current_step"] == "close"

    # Outcome fields belong to the closing only.
    early = move(api, "head.sun", cid, "closed", outcome="lost")
    assert early.status_code == 422
    missing = {e["field"] for e in early.json()["errors"]}
    assert missing == set(CLOSING) - {"outcome"}
    for field in ("person_at_fault", "fix_due_on"):
        assert field in early.json()["detail"]
    closed = move(api, "head.sun", cid, "closed", **CLOSING)
    assert closed.status_code == 200, closed.text
    done = closed.json()
    assert done["status"] == "closed" and done["current_step"] is None
    assert done["step_owner_id"] is None and done["closed_at"] is not None
    assert done["outcome"] == "retained" and done["person_at_fault"] == "teller.wang"
    assert done["fix"] == {
        "description": "Peak-hour staffing rota",
        "owner_id": "head.sun",
        "due_on": "2026-12-31",
    }
    assert move(api, "head.sun", cid, "closed", **CLOSING).status_code == 409

    history = api.as_("manager.li").get(f"/api/v1/complaints/{cid}").json()
    steps = [(s["step"], s["owner_id"], s["done_by"]) for s in history["steps"]]
    assert steps == [
        ("record", "teller.wang", "teller.wang"),
        ("accept", "manager.li", "manager.li"),
        ("analyse", "manager.zhou", "manager.zhou"),
        ("handle", "manager.zhou", "head.sun"),
        ("feedback", "manager.zhou", "manager.zhou"),
        ("close", "head.sun", "head.sun"),
    ]
    assert not any(s["late"] for s in history["steps"])

    recorded = events_of(api, "complaint.recorded")
    moved = events_of(api, "complaint.transitioned")
    closings = events_of(api, "complaint.closed")
    assert [e["complaint_id"] for e in recorded] == [cid]
    assert recorded[0]["step_owner_id"] == "manager.li" and recorded[0]["high_tier"] is False
    assert [(e["from_status"], e["to_status"], e["done_by"]) for e in moved] == [
        ("recorded", "accepted", "manager.li"),
        ("accepted", "analysed", "manager.zhou"),
        ("analysed", "handled", "head.sun"),
        ("handled", "feedback_given", "manager.zhou"),
    ]
    assert moved[0]["next_owner_id"] == "manager.zhou" and moved[0]["next_step"] == "analyse"
    assert closings[0]["outcome"] == "retained" and closings[0]["fix"]["owner_id"] == "head.sun"
    assert events_of(api, "complaint.escalated") == []
    for event_type, payloads in (
        ("complaint.recorded", recorded),
        ("complaint.transitioned", moved),
        ("complaint.closed", closings),
    ):
        for payload in payloads:
            validate_payload(event_type, 1, payload)


def test_a_stale_version_is_refused(api: Api) -> None:
    customer_id = known_customer(api)
    c = record(api, customer_id).json()
    stale = move(api, "manager.li", c["id"], "accepted", version=c["version"] + 5)
    assert stale.status_code == 409 and stale.json()["current_version"] == c["version"]
    assert move(api, "manager.li", c["id"], "accepted", version=c["version"]).status_code == 200


def test_the_first_owner_can_be_named_or_falls_back_to_the_recorder(api: Api) -> None:
    named = record(api, known_customer(api), owner="head.sun").json()
    assert named["step_owner_id"] == "head.sun" and named["customer_owner_id"] == "manager.li"
    unowned = record(api, known_customer(api, owner=None)).json()
    assert unowned["step_owner_id"] == "teller.wang" and unowned["customer_owner_id"] is None


# -- deadlines and escalation with the clock ----------------------------------------------------
def test_a_late_step_escalates_once_and_each_later_late_step_once(api: Api) -> None:
    runtime = runtime_of(api)
    c = record(api, known_customer(api)).json()
    due = datetime.fromisoformat(c["step_due_at"])

    assert escalate_late(runtime, now=due - timedelta(seconds=1)) == 0
    assert escalate_late(runtime, now=due + timedelta(seconds=1)) == 1
    # Once per step, however often the sweep runs.
    assert escalate_late(runtime, now=due + timedelta(hours=5)) == 0
    escalated = events_of(api, "complaint.escalated")
    assert [(e["reason"], e["step"], e["step_owner_id"]) for e in escalated] == [
        ("late", "accept", "manager.li")
    ]
    assert datetime.fromisoformat(escalated[0]["due_at"]) == due
    validate_payload("complaint.escalated", 1, escalated[0])
    detail = api.as_("head.sun").get(f"/api/v1/complaints/{c['id']}").json()
    assert detail["escalated_at"] is not None
    accept = detail["steps"][1]
    assert accept["escalated_at"] is not None and accept["escalation_reason"] == "late"
    # The escalation does not move the version: the owner's transition still names it.
    assert detail["version"] == c["version"]

    # The next step gets its own deadline from the moment the step before was done.
    accepted = move(api, "manager.li", c["id"], "accepted", version=c["version"]).json()
    analyse_due = datetime.fromisoformat(accepted["step_due_at"])
    accepted_at = datetime.fromisoformat(accepted["steps"][1]["done_at"])
    assert analyse_due == deadline(accepted_at, StepDeadline(amount=2, unit="business_days"))
    assert escalate_late(runtime, now=analyse_due - timedelta(minutes=1)) == 0
    assert escalate_late(runtime, now=analyse_due + timedelta(minutes=1)) == 1
    assert escalate_late(runtime, now=analyse_due + timedelta(days=3)) == 0
    assert [e["step"] for e in events_of(api, "complaint.escalated")] == ["accept", "analyse"]


def test_the_late_filter_and_open_counts_follow_the_clock(api: Api) -> None:
    runtime = runtime_of(api)
    customer_id = known_customer(api)
    first = record(api, customer_id).json()
    second = record(api, customer_id).json()
    move(api, "manager.li", second["id"], "accepted")
    due = datetime.fromisoformat(first["step_due_at"])
    with runtime.session_factory() as session:
        late_now = ComplaintFilter(late=True)

        def ids(where: ComplaintFilter, now: datetime) -> list[str]:
            rows, _ = complaints.list_complaints(session, PRESIDENT, where, now, 50, 0)
            return [c.id for c in rows]

        assert ids(late_now, due - timedelta(minutes=1)) == []
        assert ids(late_now, due + timedelta(minutes=1)) == [first["id"]]
        assert ids(ComplaintFilter(late=False), due + timedelta(minutes=1)) == [second["id"]]
        assert open_counts(session, [customer_id, "nobody"]) == {customer_id: 2}
        assert open_counts(session, []) == {}


@pytest.mark.parametrize(
    "tiers",
    [
        {"value_tier": "high"},
        {"value_tier": "general", "vip_level": "gold"},
        {"value_tier": "middle", "wealth_layer": "layer_1"},
    ],
)
def test_a_high_tier_customer_escalates_at_once(api: Api, tiers: dict[str, str]) -> None:
    c = record(api, known_customer(api, **tiers)).json()
    assert c["high_tier"] is True and c["escalated_at"] == c["recorded_at"]
    assert c["steps"][0]["escalation_reason"] == "high_tier"
    escalated = events_of(api, "complaint.escalated")
    assert [(e["reason"], e["step"], e["complaint_id"]) for e in escalated] == [
        ("high_tier", "accept", c["id"])
    ]
    validate_payload("complaint.escalated", 1, escalated[0])
    # A late step still goes up once on its own.
    due = datetime.fromisoformat(c["step_due_at"])
    assert escalate_late(runtime_of(api), now=due + timedelta(seconds=1)) == 1
    assert [e["reason"] for e in events_of(api, "complaint.escalated")] == ["high_tier", "late"]


def test_a_general_customer_is_not_escalated_at_once(api: Api) -> None:
    c = record(api, known_customer(api, value_tier="middle", wealth_layer="layer_2")).json()
    assert c["high_tier"] is False and c["escalated_at"] is None
    assert events_of(api, "complaint.escalated") == []


# -- access -------------------------------------------------------------------------------------
def test_who_records_complaints(api: Api) -> None:
    customer_id = known_customer(api)  # of /HQ/U01/B01, owned by manager.li
    # Front-line staff of the customer's subtree, its owner, its heads.
    for user in ("teller.wang", "manager.li", "head.sun", "president.zhao", "admin"):
        assert record(api, customer_id, user).status_code == 201, user
    # manager.zhou works at B02 and does not serve the customer; risk.he is not front line.
    refused = record(api, customer_id, "manager.zhou")
    assert refused.status_code == 403 and "/HQ/U01/B01" in refused.json()["detail"]
    assert record(api, customer_id, "risk.he").status_code == 403
    assert record(api, customer_id, "auditor.chen").status_code == 403
    # Serving the customer is enough wherever one works.
    owned_by(api, customer_id, "manager.zhou", role="team_member")
    assert record(api, customer_id, "manager.zhou").status_code == 201
    unknown = record(api, "00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "customer_id"


def test_who_reads_and_moves_complaints(api: Api) -> None:
    customer_id = known_customer(api)
    other = known_customer(api, org_unit="/HQ/U01/B02", owner="manager.zhou")
    c = record(api, customer_id).json()
    theirs = record(api, other, "manager.zhou").json()

    def listed(user: str, query: str = "") -> set[str]:
        response = api.as_(user).get(f"/api/v1/complaints{query}")
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert listed("manager.li") == {c["id"]}  # owns its step and the customer
    assert listed("teller.wang") == {c["id"]}  # recorded it: owns the record step
    assert listed("manager.zhou") == {theirs["id"]}
    assert listed("head.sun") == {c["id"]}  # the B01 subtree
    assert listed("president.zhao") == {c["id"], theirs["id"]}
    assert listed("auditor.chen") == {c["id"], theirs["id"]}
    assert listed("president.zhao", "?org_unit=/HQ/U01/B02") == {theirs["id"]}
    assert listed("president.zhao", f"?customer_id={customer_id}") == {c["id"]}
    assert listed("president.zhao", "?status=accepted") == set()
    page = api.as_("admin").get("/api/v1/complaints?limit=1").json()
    assert page["total"] == 2 and len(page["items"]) == 1

    refused = api.as_("manager.zhou").get(f"/api/v1/complaints/{c['id']}")
    assert refused.status_code == 403 and "serve" in refused.json()["detail"]
    assert api.as_("auditor.chen").get(f"/api/v1/complaints/{c['id']}").status_code == 200
    assert api.as_("admin").get("/api/v1/complaints/nope").status_code == 404
    # The auditor reads but does not move; a head of another outlet neither.
    assert move(api, "auditor.chen", c["id"], "accepted").status_code == 403
    b02_head = "head.b02"
    api.tokens[b02_head] = _token(api, b02_head, ["outlet_head"], "/HQ/U01/B02")
    assert move(api, b02_head, c["id"], "accepted").status_code == 403
    assert move(api, b02_head, theirs["id"], "accepted").status_code == 200


def _token(api: Api, sub: str, roles: list[str], org_unit: str) -> str:
    claims = {"sub": sub, "name": sub, "roles": roles, "org_unit": org_unit}
    return devauth.sign(claims, api.private_pem)


# -- the report by branch -----------------------------------------------------------------------
def test_the_report_by_branch_in_json_and_csv(api: Api) -> None:
    b01 = known_customer(api)
    vip = known_customer(api, vip_level="diamond")
    b02 = known_customer(api, org_unit="/HQ/U01/B02", owner="manager.zhou")
    kept = record(api, b01).json()
    lost = record(api, vip).json()  # escalated at once
    record(api, b02, "manager.zhou")
    for cid, owner in ((kept["id"], "manager.li"), (lost["id"], "manager.li")):
        for to in ("accepted", "analysed", "handled", "feedback_given"):
            assert move(api, owner, cid, to).status_code == 200
    assert move(api, "head.sun", kept["id"], "closed", **CLOSING).status_code == 200
    closing = {**CLOSING, "outcome": "lost"}
    assert move(api, "head.sun", lost["id"], "closed", **closing).status_code == 200

    response = api.as_("president.zhao").get("/api/v1/reports/complaints")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["org_unit"] == "/HQ/U01"
    rows = {row["org_unit"]: row for row in report["branches"]}
    assert set(rows) == {"/HQ/U01/B01", "/HQ/U01/B02"}
    one, two = rows["/HQ/U01/B01"], rows["/HQ/U01/B02"]
    assert (one["complaints"], one["open"], one["by_status"]["closed"]) == (2, 0, 2)
    assert (one["retained"], one["lost"], one["escalated"], one["late"]) == (1, 1, 1, 0)
    assert (two["complaints"], two["open"], two["by_status"]["recorded"]) == (1, 1, 1)
    assert two["by_step"]["accept"] == 1
    total = report["total"]
    assert (total["complaints"], total["open"], total["retained"], total["lost"]) == (3, 1, 1, 1)

    b01_only = api.as_("head.sun").get("/api/v1/reports/complaints").json()
    assert [row["org_unit"] for row in b01_only["branches"]] == ["/HQ/U01/B01"]
    assert api.as_("head.sun").get("/api/v1/reports/complaints?org_unit=/HQ/U01").status_code == 403
    assert api.as_("manager.li").get("/api/v1/reports/complaints").status_code == 403
    assert (
        api.as_("auditor.chen").get("/api/v1/reports/complaints?org_unit=/HQ/U01").status_code
        == 200
    )
    # A period with nothing recorded in it counts nothing.
    empty = api.as_("president.zhao").get(
        "/api/v1/reports/complaints?from=2020-01-01&to=2020-01-31"
    )
    assert empty.json()["branches"] == [] and empty.json()["total"]["complaints"] == 0
    backwards = api.as_("president.zhao").get(
        "/api/v1/reports/complaints?from=2020-02-01&to=2020-01-31"
    )
    assert backwards.status_code == 422

    as_csv = api.as_("president.zhao").get("/api/v1/reports/complaints?format=csv")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    text = as_csv.content.decode("utf-8")
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert lines[0][:3] == ["Org unit (机构)", "Complaints (投诉数)", "Open (未结)"]
    assert lines[1][:3] == ["/HQ/U01/B01", "2", "0"]
    assert lines[1][-2:] == ["1", "1"]  # retained, lost
    assert lines[3][0] == "Total (合计) /HQ/U01" and lines[3][1] == "3"


def test_the_report_counts_a_step_late_at_its_as_of_time(api: Api) -> None:
    c = record(api, known_customer(api)).json()
    due = datetime.fromisoformat(c["step_due_at"])
    today = due.date()
    with runtime_of(api).session_factory() as session:

        def late(now: datetime) -> int:
            report = complaints.complaints_report(
                session, PRESIDENT, None, today - timedelta(days=7), today, now
            )
            return report.total.late

        assert late(due - timedelta(minutes=1)) == 0
        assert late(due + timedelta(minutes=1)) == 1
