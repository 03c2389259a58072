"""The visits service keeps its copies of customers and owners and each customer's care row."""

from __future__ import annotations

from decimal import Decimal

from services.visits.models import CustomerCare, owner_refs
from tests.customer.conftest import Api
from tests.visits.conftest import (
    financials,
    known_customer,
    limit_approved,
    owned_by,
    risk_flagged,
    runtime_of,
)


def test_the_care_row_follows_tiers_owner_assets_risk_and_limits(api: Api) -> None:
    customer_id = known_customer(api, value_tier="high", owner="manager.li")
    financials(api, customer_id, "2026-11-28", deposits="1500000.00")
    risk_flagged(api, customer_id)
    limit_approved(api, customer_id, expiry_date="2027-11-29")
    owned_by(api, customer_id, "manager.zhou")
    with runtime_of(api).session_factory() as session:
        care = session.get(CustomerCare, customer_id)
        assert care is not None
        assert care.value_tier == "high" and care.org_unit == "/HQ/U01/B01"
        assert care.aum == Decimal("1500000.00")
        assert care.risk_status == "warning"
        assert str(care.credit_limit_expires_on) == "2027-11-29"
        assert care.owner_id == "manager.zhou"
        owners = session.execute(
            owner_refs.select().where(owner_refs.c.customer_id == customer_id)
        ).all()
        assert [(o.staff_id, o.role) for o in owners] == [("manager.zhou", "owner")]
