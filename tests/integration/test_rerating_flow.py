"""Re-rating across two services over the real broker: core banking's new figures reach the
customer service, its ``customer.financials_updated`` reaches the rating service's consumer, and
the rating service proposes a new assessment of the customer whose grade it had confirmed."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from crmkit.runtime import ServiceRuntime
from crmkit.settings import KafkaSettings
from services.customer.app import create_app as create_customer
from services.rating.app import create_app as create_rating
from services.rating.models import Assessment, CustomerFigures
from tests.conftest import Databases
from tests.customer.conftest import Api, person, test_settings
from tests.integration.conftest import wait_until
from tests.rating.conftest import rating_settings

pytestmark = pytest.mark.integration

# Every manual factor of the individual card; with 60,000 deposits and no loans the card gives
# 71 (A), with 600,000 deposits 75 (A): the deposit factor moves from 6 to 10 points.
INPUTS: dict[str, Any] = {
    "annual_income": "100000",
    "net_assets": "500000",
    "debt_ratio": "35",
    "character": "good",
    "work_experience": 7,
    "family": "stable",
    "bank_relationship": "core",
}


def _figures_day(runtime: ServiceRuntime, customer_id: str) -> date | None:
    with runtime.session_factory() as session:
        figures = session.get(CustomerFigures, customer_id)
        return figures.business_date if figures is not None else None


def _proposals(runtime: ServiceRuntime, customer_id: str) -> list[Assessment]:
    with runtime.session_factory() as session:
        return list(
            session.scalars(
                select(Assessment).where(
                    Assessment.customer_id == customer_id, Assessment.assessed_by == "system"
                )
            ).all()
        )


def test_new_figures_over_the_broker_propose_a_re_rating(
    databases: Databases, dev_keys: tuple[str, Path], kafka_settings: KafkaSettings
) -> None:
    customer_app = create_customer(
        test_settings(databases, dev_keys[1], kafka_settings, embedded_workers=True)
    )
    settings = rating_settings(databases, dev_keys[1])
    settings.kafka = kafka_settings
    settings.embedded_workers = True
    rating_app = create_rating(settings)
    with TestClient(customer_app) as c, TestClient(rating_app) as r:
        customers, rating = Api(c, {}, dev_keys[0]), Api(r, {}, dev_keys[0])
        runtime: ServiceRuntime = r.app.state.runtime  # type: ignore[attr-defined]
        created = customers.as_("head.sun").post("/api/v1/customers", json=person())
        assert created.status_code == 201, created.text
        customer_id = created.json()["id"]
        figures_url = f"/api/v1/customers/{customer_id}/financials"
        first = {"business_date": "2026-11-27", "deposits": "60000.00"}
        assert customers.as_("admin").put(figures_url, json=first).status_code == 200
        wait_until(
            lambda: _figures_day(runtime, customer_id) == date(2026, 11, 27),
            30,
            "the rating service to learn of the customer and its figures",
        )
        # Rated and confirmed (an administrator assesses, an approver of the branch confirms).
        resp = rating.as_("admin").post(
            "/api/v1/ratings", json={"customer_id": customer_id, "inputs": INPUTS}
        )
        assert resp.status_code == 201, resp.text
        assert (resp.json()["score"], resp.json()["computed_grade"]) == ("71.00", "A")
        resp = rating.as_("approver.qian").post(
            f"/api/v1/ratings/{resp.json()['id']}/confirm", json={"decision": "confirm"}
        )
        assert resp.status_code == 200, resp.text
        assert _proposals(runtime, customer_id) == []

        second = {"business_date": "2026-11-28", "deposits": "600000.00"}
        assert customers.as_("admin").put(figures_url, json=second).status_code == 200
        wait_until(
            lambda: bool(_proposals(runtime, customer_id)),
            30,
            "the rating service's consumer to propose the re-rating",
        )
        (proposal,) = _proposals(runtime, customer_id)
        assert (proposal.trigger, proposal.status, proposal.computed_grade) == (
            "financials",
            "assessed",
            "A",
        )
        assert f"{proposal.score:.2f}" == "75.00"
        assert proposal.inputs["deposit_balance"] == "600000.00"
        assert proposal.inputs["character"] == "good"
