"""The next contact due follows the customer's owner, across three services over the real broker:
the customer service announces a customer and its figures (a high-tier customer: in person
monthly), the assignment service assigns it and later transfers it, and the visits service's
consumer puts it on the owner's agenda with its next due date — then on the new owner's."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crmkit.clock import BUSINESS_TZ, business_today
from crmkit.runtime import ServiceRuntime
from crmkit.settings import KafkaSettings
from services.assignment.app import create_app as create_assignment
from services.customer.app import create_app as create_customer
from services.visits.app import create_app as create_visits
from services.visits.models import CustomerCare
from tests.assignment.conftest import assignment_settings
from tests.conftest import Databases
from tests.customer.conftest import Api, person, test_settings
from tests.integration.conftest import wait_until
from tests.visits.conftest import visits_settings

pytestmark = pytest.mark.integration


def _care(runtime: ServiceRuntime, customer_id: str) -> CustomerCare | None:
    with runtime.session_factory() as session:
        return session.get(CustomerCare, customer_id)


def _agenda(visits: Api, staff_id: str, day: date) -> dict[str, Any]:
    resp = visits.as_(staff_id).get(f"/api/v1/staff/{staff_id}/agenda", params={"date": str(day)})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _on_agenda(visits: Api, staff_id: str, day: date, customer_id: str) -> dict[str, Any] | None:
    items = _agenda(visits, staff_id, day)["items"]
    return next((i for i in items if i["customer_id"] == customer_id), None)


def _bank(assignment: Api) -> None:
    admin = assignment.as_("admin")
    for path, kind in (
        ("/HQ", "head_office"),
        ("/HQ/U01", "county_union"),
        ("/HQ/U01/B01", "outlet"),
    ):
        resp = admin.post("/api/v1/org-units", json={"path": path, "name": path, "type": kind})
        assert resp.status_code == 201, resp.text
    for staff_id in ("manager.li", "manager.zhou"):
        body = {
            "id": staff_id,
            "name": staff_id,
            "roles": ["customer_manager"],
            "org_unit": "/HQ/U01/B01",
        }
        assert admin.post("/api/v1/staff", json=body).status_code == 201


def test_the_next_contact_due_moves_with_the_owner_over_the_broker(
    databases: Databases, dev_keys: tuple[str, Path], kafka_settings: KafkaSettings
) -> None:
    customer_app = create_customer(
        test_settings(databases, dev_keys[1], kafka_settings, embedded_workers=True)
    )
    a_settings = assignment_settings(databases, dev_keys[1])
    a_settings.kafka, a_settings.embedded_workers = kafka_settings, True
    v_settings = visits_settings(databases, dev_keys[1])
    v_settings.kafka, v_settings.embedded_workers = kafka_settings, True
    with (
        TestClient(customer_app) as c,
        TestClient(create_assignment(a_settings)) as a,
        TestClient(create_visits(v_settings)) as v,
    ):
        customers, assignment = Api(c, {}, dev_keys[0]), Api(a, {}, dev_keys[0])
        visits = Api(v, {}, dev_keys[0])
        runtime: ServiceRuntime = v.app.state.runtime  # type: ignore[attr-defined]
        _bank(assignment)
        created = customers.as_("head.sun").post("/api/v1/customers", json=person())
        assert created.status_code == 201, created.text
        customer_id = created.json()["id"]
        figures = {"business_date": "2026-11-27", "deposits": "1500000.00"}  # high tier 高端
        resp = customers.as_("admin").put(
            f"/api/v1/customers/{customer_id}/financials", json=figures
        )
        assert resp.status_code == 200, resp.text

        def high_tier_known() -> bool:
            care = _care(runtime, customer_id)
            return care is not None and care.value_tier == "high"

        wait_until(high_tier_known, 30, "the visits service to learn of the customer's tier")
        owner = f"/api/v1/customers/{customer_id}/owner"
        wait_until(
            lambda: assignment.as_("admin").get(owner).status_code == 200,
            30,
            "the assignment service to learn of the customer",
        )
        body = {"customer_id": customer_id, "staff_id": "manager.li", "reason": "marketed"}
        resp = assignment.as_("admin").post("/api/v1/assignments", json=body)
        assert resp.status_code == 200, resp.text

        today = business_today()
        monthly = today + timedelta(days=30)  # owned today, never contacted: today + 30 days
        wait_until(
            lambda: _on_agenda(visits, "manager.li", monthly, customer_id) is not None,
            30,
            "ownership.assigned to put the customer on manager.li's agenda",
        )
        entry = _on_agenda(visits, "manager.li", monthly, customer_id)
        assert entry is not None
        assert (entry["next_due_on"], entry["due_reason"]) == (str(monthly), "cycle")
        assert _on_agenda(visits, "manager.li", monthly - timedelta(days=1), customer_id) is None

        # manager.li phones the customer three days ago (recorded now): due 27 days from today.
        visited = datetime.combine(today - timedelta(days=3), time(10), tzinfo=BUSINESS_TZ)
        visit = {
            "customer_id": customer_id,
            "visited_at": visited.astimezone(UTC).isoformat(),
            "channel": "phone",
            "visit_type": "maintenance",
            "participants": [{"staff_id": "manager.li", "role": "lead"}],
            "purpose": "Introduce the new wealth product",
        }
        resp = visits.as_("manager.li").post("/api/v1/visits", json=visit)
        assert resp.status_code == 201, resp.text
        due = today + timedelta(days=27)

        transfer = {
            "customer_id": customer_id,
            "mode": "transfer",
            "staff_id": "manager.zhou",
            "from_staff_id": "manager.li",
            "reason": "transfer",
        }
        resp = assignment.as_("admin").post("/api/v1/assignments", json=transfer)
        assert resp.status_code == 200, resp.text
        wait_until(
            lambda: _on_agenda(visits, "manager.zhou", due, customer_id) is not None,
            30,
            "ownership.transferred to move the customer to manager.zhou's agenda",
        )
        entry = _on_agenda(visits, "manager.zhou", due, customer_id)
        assert entry is not None
        assert (entry["next_due_on"], entry["last_channel"]) == (str(due), "phone")
        assert _on_agenda(visits, "manager.li", monthly, customer_id) is None
        care = visits.as_("manager.zhou").get(f"/api/v1/customers/{customer_id}/care").json()
        assert (care["owner_id"], care["next_due_on"], care["plan"]["id"]) == (
            "manager.zhou",
            str(due),
            "monthly_visit",
        )
