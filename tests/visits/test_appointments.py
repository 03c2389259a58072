"""Appointments 预约 for customers with at least 1,000,000.00 in financial assets (seed 000:
金融资产百万元以上), on the latest business date known."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from crmkit.events import validate_payload
from crmkit.outbox import EventRecorder
from services.visits import records
from services.visits.schemas_visits import AppointmentIn
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.visits.conftest import events_of, financials, known_customer, owned_by, runtime_of
from tests.visits.test_visits import MANAGER_LI, listed, on_postgres, problem, race

APPOINTMENTS = "/api/v1/appointments"


def ahead(days: int = 2, hour: int = 6) -> str:
    """A time ``days`` ahead of now, on the hour (UTC)."""
    day = datetime.now(UTC) + timedelta(days=days)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0).isoformat()


def appointment_body(customer_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "starts_at": ahead(),
        "place": "VIP room, outlet B01",
        "purpose": "Review of the wealth portfolio",
    }
    body.update(overrides)
    return body


def wealthy(api: Api, aum: str, **kwargs: Any) -> str:
    customer_id = known_customer(api, **kwargs)
    financials(api, customer_id, "2026-11-28", deposits=aum)
    return customer_id


def test_the_threshold_is_exactly_one_million(api: Api) -> None:
    below = wealthy(api, "999999.99")
    refused = problem(api.as_("manager.li").post(APPOINTMENTS, json=appointment_body(below)), 422)
    assert refused["rule"] == "appointments.min_aum"
    assert "1000000.00" in refused["detail"] and "999999.99 on 2026-11-28" in refused["detail"]

    exactly = wealthy(api, "1000000.00")
    resp = api.as_("manager.li").post(APPOINTMENTS, json=appointment_body(exactly))
    assert resp.status_code == 201, resp.text
    booked = resp.json()
    assert booked["aum"] == "1000000.00" and booked["aum_business_date"] == "2026-11-28"
    assert booked["staff_id"] == "manager.li" and booked["booked_by"] == "manager.li"
    assert resp.headers["location"] == f"{APPOINTMENTS}/{booked['id']}"
    assert events_of(api, "appointment.booked") == [
        {
            "customer_id": exactly,
            "appointment_id": booked["id"],
            "org_unit": "/HQ/U01/B01",
            "staff_id": "manager.li",
            "starts_at": booked["starts_at"].replace("Z", "+00:00"),
            "place": "VIP room, outlet B01",
            "purpose": "Review of the wealth portfolio",
            "aum": "1000000.00",
            "aum_business_date": "2026-11-28",
            "booked_by": "manager.li",
        }
    ]
    validate_payload("appointment.booked", 1, events_of(api, "appointment.booked")[0])


def test_the_latest_business_date_counts_and_unknown_assets_are_refused(api: Api) -> None:
    unknown = known_customer(api)
    refused = problem(api.as_("manager.li").post(APPOINTMENTS, json=appointment_body(unknown)), 422)
    assert "not known" in refused["detail"]

    fell = known_customer(api)
    financials(api, fell, "2026-11-27", deposits="1200000.00")
    financials(api, fell, "2026-11-28", deposits="999999.99")
    problem(api.as_("manager.li").post(APPOINTMENTS, json=appointment_body(fell)), 422)
    # A late snapshot of an earlier day does not replace the latest.
    financials(api, fell, "2026-11-26", deposits="5000000.00")
    problem(api.as_("manager.li").post(APPOINTMENTS, json=appointment_body(fell)), 422)
    assert events_of(api, "appointment.booked") == []


def test_a_booking_is_ahead_with_a_staff_member_free_and_serving(api: Api) -> None:
    customer_id = wealthy(api, "2500000.00")
    past = appointment_body(customer_id, starts_at="2026-11-01T02:00:00Z")
    assert (
        problem(api.as_("manager.li").post(APPOINTMENTS, json=past), 422)["errors"][0]["field"]
        == "starts_at"
    )
    other = appointment_body(customer_id, staff_id="manager.zhou")
    assert (
        problem(api.as_("manager.li").post(APPOINTMENTS, json=other), 422)["errors"][0]["field"]
        == "staff_id"
    )
    owned_by(api, customer_id, "manager.zhou", role="team_member")
    assert api.as_("manager.li").post(APPOINTMENTS, json=other).status_code == 201

    # manager.zhou is taken at that time, for this customer or another.
    second = wealthy(api, "3000000.00", owner="manager.zhou")
    taken = api.as_("manager.zhou").post(APPOINTMENTS, json=appointment_body(second))
    assert "already has an appointment" in problem(taken, 409)["detail"]
    later = appointment_body(second, starts_at=ahead(hour=8))
    assert api.as_("manager.zhou").post(APPOINTMENTS, json=later).status_code == 201
    assert len(events_of(api, "appointment.booked")) == 2


def test_appointments_are_booked_and_read_in_scope(api: Api) -> None:
    b01 = wealthy(api, "1500000.00", org_unit="/HQ/U01/B01", owner="manager.li")
    b02 = wealthy(api, "1500000.00", org_unit="/HQ/U01/B02", owner="manager.zhou")
    for who in ("manager.zhou", "teller.wang", "auditor.chen"):
        problem(api.as_(who).post(APPOINTMENTS, json=appointment_body(b01)), 403)
    one = api.as_("manager.li").post(APPOINTMENTS, json=appointment_body(b01)).json()["id"]
    two = api.as_("manager.zhou").post(APPOINTMENTS, json=appointment_body(b02)).json()["id"]
    assert listed(api, "manager.li", APPOINTMENTS) == [one]
    assert listed(api, "head.sun", APPOINTMENTS) == [one]
    assert set(listed(api, "auditor.chen", APPOINTMENTS)) == {one, two}
    assert listed(api, "admin", APPOINTMENTS, staff_id="manager.zhou") == [two]
    assert listed(api, "admin", APPOINTMENTS, customer_id=b01) == [one]
    assert listed(api, "admin", APPOINTMENTS, **{"to": "2026-11-29"}) == []
    problem(api.as_("manager.li").get(f"{APPOINTMENTS}/{two}"), 403)
    assert api.as_("manager.zhou").get(f"{APPOINTMENTS}/{two}").json()["aum"] == "1500000.00"


@pytest.mark.postgres
def test_of_five_bookings_of_one_slot_at_once_one_is_made(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    with on_postgres(pg_databases, dev_keys) as pg_api:
        five_bookings(pg_api)


def five_bookings(pg_api: Api) -> None:
    customers = [wealthy(pg_api, "1500000.00") for _ in range(5)]
    starts_at = ahead(days=3)

    def book(customer_id: str) -> Callable[[Session, EventRecorder], object]:
        body = AppointmentIn.model_validate(appointment_body(customer_id, starts_at=starts_at))
        return lambda session, recorder: records.book_appointment(
            session, recorder, body, MANAGER_LI
        )

    assert race(runtime_of(pg_api), [book(c) for c in customers]) == Counter(
        {"made": 1, "conflict": 4}
    )
    assert len(events_of(pg_api, "appointment.booked")) == 1
