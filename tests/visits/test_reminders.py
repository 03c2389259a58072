"""Reminders: one ``followup.due`` per customer and due date for contacts coming due, and
holiday greetings for the customers of plans with greetings, ahead of the holiday."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crmkit.clock import business_today
from services.customer.events import CUSTOMER_MERGED
from services.visits import followups
from services.visits.app import create_app
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.visits.conftest import (
    deliver,
    events_of,
    known_customer,
    risk_flagged,
    runtime_of,
    status_changed,
    visits_settings,
)
from tests.visits.test_followups import contact


def _due(api: Api) -> list[dict[str, object]]:
    return [e for e in events_of(api, "followup.due") if e["reason"] != "greeting"]


def _greetings(api: Api) -> list[dict[str, object]]:
    return [e for e in events_of(api, "followup.due") if e["reason"] == "greeting"]


def test_a_contact_coming_due_is_reminded_once_per_due_date(api: Api) -> None:
    runtime = runtime_of(api)
    today = business_today()
    soon = known_customer(api, value_tier="high")
    contact(api, soon, today - timedelta(days=28))  # due in 2 days: within the 3 ahead
    late = known_customer(api, value_tier="middle", owner=None)
    contact(api, late, today - timedelta(days=100))  # due 10 days ago
    later = known_customer(api, value_tier="high")
    contact(api, later, today - timedelta(days=20))  # due in 10 days: not yet
    merged = known_customer(api, value_tier="high")
    contact(api, merged, today - timedelta(days=30))  # due today, but merged into ``soon``
    deliver(
        api,
        CUSTOMER_MERGED,
        {"merged_id": merged, "survivor_id": soon},
        key=merged,
        actor="head.sun",
    )
    assert followups.remind(runtime, today=today) == (2, 0)
    by_customer = {e["customer_id"]: e for e in _due(api)}
    assert set(by_customer) == {soon, late}
    assert by_customer[soon] == {
        "customer_id": soon,
        "owner_id": "manager.li",
        "org_unit": "/HQ/U01/B01",
        "due_on": str(today + timedelta(days=2)),
        "reason": "cycle",
        "channel": "in_person",
        "holiday": None,
    }
    assert by_customer[late]["owner_id"] is None
    assert by_customer[late]["channel"] == "phone"  # the quarterly plan's
    assert followups.remind(runtime, today=today) == (0, 0)  # nothing new
    # A risk flag brings ``later`` forward to within 3 days: a reminder for the new date.
    risk_flagged(api, later, "severe")
    assert followups.remind(runtime, today=today) == (1, 0)
    last = _due(api)[-1]
    assert (last["customer_id"], last["reason"], last["due_on"]) == (
        later,
        "risk",
        str(today + timedelta(days=3)),
    )
    assert len(_due(api)) == 3


def test_reminders_go_out_chunk_by_chunk(api: Api) -> None:
    runtime = runtime_of(api)
    today = business_today()
    customers = [known_customer(api, value_tier="high") for _ in range(5)]
    for customer_id in customers:
        contact(api, customer_id, today - timedelta(days=30))  # due today
    published = followups.remind_due(runtime.session_factory, today, 3, chunk=2)
    assert published == 5
    assert sorted(str(e["customer_id"]) for e in _due(api)) == sorted(customers)


def test_holiday_greetings_are_reminded_ahead_for_the_plans_with_greetings(api: Api) -> None:
    runtime = runtime_of(api)
    vip = known_customer(api, value_tier="general", vip_level="gold")
    layer = known_customer(api, wealth_layer="layer_2", owner=None)
    known_customer(api, value_tier="middle")  # quarterly: no greetings
    closed = known_customer(api, value_tier="high")
    status_changed(api, closed, "active", "closed")
    # Spring Festival 2027 is on February 6: the greeting goes 3 days ahead.
    assert followups.remind_greetings(runtime.session_factory, date(2027, 2, 2)) == 0
    assert followups.remind_greetings(runtime.session_factory, date(2027, 2, 3)) == 2
    greetings = {e["customer_id"]: e for e in _greetings(api)}
    assert set(greetings) == {vip, layer}
    assert greetings[vip] == {
        "customer_id": vip,
        "owner_id": "manager.li",
        "org_unit": "/HQ/U01/B01",
        "due_on": "2027-02-06",
        "reason": "greeting",
        "channel": "sms",
        "holiday": {"id": "spring_festival", "name": "Spring Festival 春节"},
    }
    assert greetings[layer]["owner_id"] is None
    # The next days of the window remind nobody again.
    for day in (date(2027, 2, 4), date(2027, 2, 6)):
        assert followups.remind_greetings(runtime.session_factory, day) == 0
    assert len(_greetings(api)) == 2


def test_the_holidays_ahead_by_fixed_day_and_by_year() -> None:
    policy = followups.policy_on(date(2026, 11, 30))
    ahead = followups.upcoming_holidays(policy, date(2026, 9, 24))
    assert [(h.id, on) for h, on in ahead] == [("mid_autumn", date(2026, 9, 25))]
    # 2028: National Day (Oct 1) and Mid-Autumn (Oct 3) both within 3 days of Sep 30.
    ahead = followups.upcoming_holidays(policy, date(2028, 9, 30))
    assert [(h.id, on) for h, on in ahead] == [
        ("national_day", date(2028, 10, 1)),
        ("mid_autumn", date(2028, 10, 3)),
    ]
    ahead = followups.upcoming_holidays(policy, date(2026, 12, 30))
    assert [(h.id, on) for h, on in ahead] == [("new_year", date(2027, 1, 1))]


@pytest.mark.postgres
def test_two_reminder_runs_at_once_remind_each_customer_once(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    """Two workers sweeping at once (PostgreSQL: SQLite serialises writers): the rows one
    locks the other skips, and a row reminded is not picked again."""
    with TestClient(create_app(visits_settings(pg_databases, dev_keys[1]))) as client:
        api = Api(client, {}, dev_keys[0])
        runtime = runtime_of(api)
        today = business_today()
        customers = [known_customer(api, value_tier="high") for _ in range(30)]
        for customer_id in customers:
            contact(api, customer_id, today - timedelta(days=29))  # due tomorrow
        barrier = threading.Barrier(2)
        published: list[int] = []

        def sweep() -> None:
            barrier.wait()
            published.append(followups.remind_due(runtime.session_factory, today, 3, chunk=4))

        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(published) == 30
        assert Counter(str(e["customer_id"]) for e in _due(api)) == Counter(customers)
