"""Grades and credit limits from the rating service in the responsibility report (附件3): kept on
the customer's profile from ``rating.confirmed``, ``credit_limit.approved`` and
``credit_limit.expired``, applied through the service's own consumer."""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from datetime import timedelta
from typing import Any

import pytest

from crmkit.clock import business_today
from crmkit.consumer import RawRecord
from crmkit.events import EventSpec, build_envelope
from services.assignment.handlers_rating import CustomerNotKnown
from services.customer.events import CUSTOMER_UPDATED
from tests.assignment.test_reports import RESPONSIBILITY, customer, get, owned
from tests.customer.conftest import Api

# The rating service's events, as its contracts describe them (contracts/events/).
RATING_CONFIRMED = EventSpec("rating.confirmed", 1, "rating")
LIMIT_APPROVED = EventSpec("credit_limit.approved", 1, "rating")
LIMIT_EXPIRED = EventSpec("credit_limit.expired", 1, "rating")
_offsets = itertools.count(90_000)


def envelope(spec: EventSpec, data: dict[str, Any]) -> RawRecord:
    built = build_envelope(spec, data, source=spec.stream, key=data["customer_id"], actor="test")
    return RawRecord(f"crm.{spec.stream}", 0, next(_offsets), built.to_bytes())


def deliver(api: Api, *records: RawRecord) -> None:
    api.client.app.state.runtime.applier.apply_batch(list(records))  # type: ignore[attr-defined]


def confirmed(customer_id: str, grade: str, previous: str | None = None) -> RawRecord:
    return envelope(
        RATING_CONFIRMED,
        {
            "customer_id": customer_id,
            "assessment_id": str(uuid.uuid4()),
            "grade": grade,
            "computed_grade": grade,
            "adjusted": False,
            "previous_grade": previous,
            "valid_until": (business_today() + timedelta(days=365)).isoformat(),
            "decided_by": "approver.qian",
        },
    )


def approved(customer_id: str, limit_id: str, total: str, expiry_days: int = 365) -> RawRecord:
    today = business_today()
    return envelope(
        LIMIT_APPROVED,
        {
            "customer_id": customer_id,
            "credit_limit_id": limit_id,
            "grade": "A",
            "total_amount": total,
            "credit_amount": total,
            "guaranteed_amount": "0.00",
            "secured_amount": "0.00",
            "sub_limits": [],
            "revolving": False,
            "start_date": (today - timedelta(days=1)).isoformat(),
            "expiry_date": (today + timedelta(days=expiry_days)).isoformat(),
            "decided_by": "approver.qian",
            "by_committee": False,
        },
    )


def expired(customer_id: str, limit_id: str) -> RawRecord:
    return envelope(
        LIMIT_EXPIRED,
        {
            "customer_id": customer_id,
            "credit_limit_id": limit_id,
            "expiry_date": (business_today() - timedelta(days=1)).isoformat(),
        },
    )


def credit(api: Api, customer_id: str) -> tuple[str | None, str | None]:
    """The customer's credit rating and limit in the responsibility report."""
    rows = get(api, "head.sun", RESPONSIBILITY)["items"]
    row = next(r for r in rows if r["customer_id"] == customer_id)
    return row["credit_rating"], row["credit_limit"]


def test_the_report_shows_the_grade_and_the_limit_in_force(org: Api) -> None:
    # A plain stock customer: no profile row until the rating service's events make one.
    customer_id = customer(org, "Zhao Farm")
    owned(org, customer_id, "manager.li")
    assert credit(org, customer_id) == (None, None)

    deliver(org, confirmed(customer_id, "A"))
    assert credit(org, customer_id) == ("A", None)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    first_approval = approved(customer_id, first, "380000.00")
    deliver(org, first_approval)
    assert credit(org, customer_id) == ("A", "380000.00")

    # A new grade replaces the old; a renewed limit replaces the one before it.
    deliver(
        org, confirmed(customer_id, "AA", previous="A"), approved(customer_id, second, "450000.50")
    )
    assert credit(org, customer_id) == ("AA", "450000.50")
    # The expiry of the replaced limit changes nothing; that of the limit kept removes it.
    deliver(org, expired(customer_id, first))
    assert credit(org, customer_id) == ("AA", "450000.50")
    deliver(org, expired(customer_id, second))
    assert credit(org, customer_id) == ("AA", None)
    # A redelivered approval (the same event id) is in the inbox: it brings nothing back.
    deliver(org, first_approval)
    assert credit(org, customer_id) == ("AA", None)


def test_a_limit_past_its_last_day_is_not_shown_before_its_expiry_event(org: Api) -> None:
    customer_id = customer(org, "Qian Mill", deposits="100.00")
    owned(org, customer_id, "manager.li")
    limit_id = str(uuid.uuid4())
    deliver(org, approved(customer_id, limit_id, "20000.00", expiry_days=0))
    assert credit(org, customer_id) == (None, "20000.00")  # its last day is today: in force
    deliver(org, approved(customer_id, limit_id, "20000.00", expiry_days=-1))
    assert credit(org, customer_id) == (None, None)


def test_the_credit_survives_the_customer_events_and_reaches_the_csv(org: Api) -> None:
    customer_id = customer(org, "=Sun Orchard", deposits="5.00")
    owned(org, customer_id, "manager.li")
    deliver(org, confirmed(customer_id, "BBB"), approved(customer_id, str(uuid.uuid4()), "1.05"))
    # A later customer.updated rewrites the segments and tiers, not the grade and limit.
    updated = {
        "customer_id": customer_id,
        "kind": "individual",
        "name": "=Sun Orchard",
        "org_unit": "/HQ/U01/B01",
        "business_line": "personal",
        "status": "active",
        "segment": "stock",
        "value_tier": "middle",
        "changed": ["value_tier"],
    }
    built = build_envelope(CUSTOMER_UPDATED, updated, source="customer", key=customer_id, actor="x")
    deliver(org, RawRecord("crm.customer", 0, next(_offsets), built.to_bytes()))
    rows = get(org, "head.sun", RESPONSIBILITY)["items"]
    row = next(r for r in rows if r["customer_id"] == customer_id)
    assert (row["value_tier"], row["credit_rating"], row["credit_limit"]) == (
        "middle",
        "BBB",
        "1.05",
    )

    resp = org.as_("head.sun").get(RESPONSIBILITY, params={"format": "csv"})
    assert resp.status_code == 200, resp.text
    table = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    line = next(r for r in table if r["customer_id (客户号)"] == customer_id)
    assert line["customer_name (客户名称)"] == "'=Sun Orchard"
    assert (line["credit_rating (信用等级)"], line["credit_limit (授信额度)"]) == ("BBB", "1.05")


def test_a_grade_of_a_customer_not_known_yet_is_not_dropped(org: Api) -> None:
    stranger = str(uuid.uuid4())
    with pytest.raises(CustomerNotKnown):  # retried by the consumer, then dead-lettered
        deliver(org, confirmed(stranger, "A"))
    # An expiry of a limit never kept here is nothing to undo.
    deliver(org, expired(stranger, str(uuid.uuid4())))
