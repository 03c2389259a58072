"""Who owns a customer, across two services over the real broker: the customer service announces
a customer, the assignment service learns of it and assigns it, and the customer service's read
model then lets the new owner read the record — which they could not before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crmkit.settings import KafkaSettings
from services.assignment.app import create_app as create_assignment
from services.customer.app import create_app as create_customer
from tests.assignment.conftest import assignment_settings
from tests.conftest import Databases
from tests.customer.conftest import Api, person, test_settings
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


def test_an_assignment_reaches_the_customer_service_and_opens_the_record_to_its_owner(
    databases: Databases, dev_keys: tuple[str, Path], kafka_settings: KafkaSettings
) -> None:
    customer_app = create_customer(
        test_settings(databases, dev_keys[1], kafka_settings, embedded_workers=True)
    )
    settings = assignment_settings(databases, dev_keys[1])
    settings.kafka = kafka_settings
    settings.embedded_workers = True
    assignment_app = create_assignment(settings)
    with TestClient(customer_app) as c, TestClient(assignment_app) as a:
        customers, assignment = Api(c, {}, dev_keys[0]), Api(a, {}, dev_keys[0])
        admin = assignment.as_("admin")
        for path, kind in (("/HQ", "head_office"), ("/HQ/U01", "county_union")):
            resp = admin.post("/api/v1/org-units", json={"path": path, "name": path, "type": kind})
            assert resp.status_code == 201, resp.text
        resp = admin.post(
            "/api/v1/org-units", json={"path": "/HQ/U01/B01", "name": "B01", "type": "outlet"}
        )
        assert resp.status_code == 201, resp.text
        body = {
            "id": "manager.li",
            "name": "Li",
            "roles": ["customer_manager"],
            "org_unit": "/HQ/U01/B01",
        }
        assert admin.post("/api/v1/staff", json=body).status_code == 201

        created = customers.as_("head.sun").post("/api/v1/customers", json=person())
        assert created.status_code == 201, created.text
        customer_id = created.json()["id"]
        record = f"/api/v1/customers/{customer_id}"
        assert customers.as_("manager.li").get(record).status_code == 404  # not theirs yet

        owner = f"/api/v1/customers/{customer_id}/owner"

        def known() -> bool:
            return bool(admin.get(owner).status_code == 200)

        wait_until(known, 30, "the assignment service to learn of the customer")
        assignment_body: dict[str, Any] = {
            "customer_id": customer_id,
            "staff_id": "manager.li",
            "reason": "marketed",
        }
        resp = admin.post("/api/v1/assignments", json=assignment_body)
        assert resp.status_code == 200, resp.text

        def readable() -> bool:
            return bool(customers.as_("manager.li").get(record).status_code == 200)

        wait_until(readable, 30, "the customer service to apply ownership.assigned")
        # The record is now the manager's; a colleague of another outlet still cannot read it.
        assert customers.as_("manager.zhou").get(record).status_code == 404
