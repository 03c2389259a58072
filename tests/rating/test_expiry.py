"""Deadlines 限时办结 and expiry: the term's dates, the steps' deadlines from the policy, and the
sweep that expires limits and reports late steps — once each, however often it runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from crmkit.clock import business_today
from crmkit.db import utcnow
from services.rating import approvals
from services.rating.models import CreditLimit
from tests.customer.conftest import Api
from tests.rating.conftest import runtime_of
from tests.rating.test_approvals import (
    approve,
    contract_valid,
    ok,
    proposed_limit,
    review,
    steps_of,
)


@pytest.mark.parametrize(
    ("start", "months", "expiry"),
    [
        # 2026-12-01 + 12 months = 2027-12-01, less a day.
        (date(2026, 12, 1), 12, date(2027, 11, 30)),
        # 2026-03-15 + 1 month = 2026-04-15, less a day.
        (date(2026, 3, 15), 1, date(2026, 4, 14)),
        # 2026-01-31 + 1 month: February has no 31st → 2026-02-28, less a day.
        (date(2026, 1, 31), 1, date(2026, 2, 27)),
        # 2028-02-29 + 12 months: 2029-02-28 (no 29th), less a day.
        (date(2028, 2, 29), 12, date(2029, 2, 27)),
        # 2026-11-30 + 36 months = 2029-11-30, less a day.
        (date(2026, 11, 30), 36, date(2029, 11, 29)),
    ],
)
def test_a_limit_is_in_force_for_its_term_less_a_day(
    start: date, months: int, expiry: date
) -> None:
    assert approvals.expiry_of(start, months) == expiry


def test_step_deadlines_come_from_the_policy() -> None:
    start = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert approvals.step_due("review", start) == datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    assert approvals.step_due("approve", start) == datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    assert approvals.step_due("committee", start) == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="no deadline for the step 'sign'"):
        approvals.step_due("sign", start)


def set_columns(api: Api, limit_id: str, **values: Any) -> None:
    """Move a limit's dates directly (the sweep reads them; no route sets them)."""
    with runtime_of(api).session_factory() as session:
        limit = session.get(CreditLimit, limit_id)
        assert limit is not None
        for name, value in values.items():
            setattr(limit, name, value)
        session.commit()


def status_of(api: Api, limit_id: str) -> str:
    return str(ok(api.as_("auditor.chen").get(f"/api/v1/credit-limits/{limit_id}"))["status"])


def approved_limit(api: Api, total: str = "100000.00") -> dict[str, Any]:
    limit = proposed_limit(api, total)
    ok(review(api, limit["id"]))
    return ok(approve(api, limit["id"], "president.zhao"))


def test_the_sweep_expires_limits_past_their_last_day_once(api: Api) -> None:
    today = business_today()
    past = approved_limit(api)
    last_day = approved_limit(api)
    set_columns(api, past["id"], expiry_date=today - timedelta(days=1))
    set_columns(api, last_day["id"], expiry_date=today)  # its last day in force: kept
    runtime = runtime_of(api)
    approvals.sweep(runtime)
    approvals.sweep(runtime)
    assert (status_of(api, past["id"]), status_of(api, last_day["id"])) == ("expired", "approved")
    assert contract_valid(api, "credit_limit.expired") == [
        {
            "customer_id": past["customer_id"],
            "credit_limit_id": past["id"],
            "expiry_date": (today - timedelta(days=1)).isoformat(),
        }
    ]
    expire = steps_of(api, past["id"])[-1]
    assert (expire["step"], expire["actor"]) == ("expire", "system")
    # The next business day the other one goes too.
    assert approvals.expire_limits(runtime, today + timedelta(days=1)) == 1
    assert status_of(api, last_day["id"]) == "expired"


def test_the_sweep_works_in_chunks(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approvals, "CHUNK", 2)
    limits = [approved_limit(api) for _ in range(5)]
    for limit in limits:
        set_columns(api, limit["id"], expiry_date=date(2026, 1, 1))
    # 5 limits, 2 per transaction: chunks of 2, 2 and 1.
    assert approvals.expire_limits(runtime_of(api)) == 5
    assert approvals.expire_limits(runtime_of(api)) == 0
    assert len(contract_valid(api, "credit_limit.expired")) == 5


def test_a_late_step_is_reported_once_and_the_late_step_marked(api: Api) -> None:
    limit = proposed_limit(api, "100000.00")
    on_time = proposed_limit(api, "100000.00")
    due = utcnow() - timedelta(hours=1)
    set_columns(api, limit["id"], step_due_at=due)
    runtime = runtime_of(api)
    approvals.sweep(runtime)
    approvals.sweep(runtime)
    [late] = contract_valid(api, "credit_limit.step_late")
    assert late == {
        "customer_id": limit["customer_id"],
        "credit_limit_id": limit["id"],
        "step": "review",
        "due_at": due.isoformat(),
        "org_unit": "/HQ/U01/B01",
    }
    marker = steps_of(api, limit["id"])[-1]
    assert (marker["step"], marker["actor"], marker["late"]) == ("late:review", "system", True)
    assert [s["step"] for s in steps_of(api, on_time["id"])] == ["propose"]
    # Reviewed after its deadline: the review step says it was late.
    reviewed = ok(review(api, limit["id"]))
    review_step = next(s for s in steps_of(api, limit["id"]) if s["step"] == "review")
    assert review_step["late"] is True
    assert reviewed["step_due_at"] is not None
    # The decision is late in its turn: reported once, as the approve step.
    set_columns(api, limit["id"], step_due_at=utcnow() - timedelta(minutes=5))
    assert approvals.report_late_steps(runtime) == 1
    assert approvals.report_late_steps(runtime) == 0
    assert [e["step"] for e in contract_valid(api, "credit_limit.step_late")] == [
        "review",
        "approve",
    ]
    # Decided: nothing waits, nothing is late any more.
    ok(approve(api, limit["id"], "president.zhao"))
    approvals.sweep(runtime)
    assert len(events_late(api)) == 2


def events_late(api: Api) -> list[dict[str, Any]]:
    return contract_valid(api, "credit_limit.step_late")


def test_a_committee_past_its_deadline_is_reported(api: Api) -> None:
    limit = proposed_limit(api, "7000000.00")
    ok(review(api, limit["id"]))
    # The committee has 7 days from the review: nothing is late before that.
    assert approvals.report_late_steps(runtime_of(api)) == 0
    eight_days_on = utcnow() + timedelta(days=8)
    assert approvals.report_late_steps(runtime_of(api), eight_days_on) == 1
    assert [e["step"] for e in events_late(api)] == ["committee"]
