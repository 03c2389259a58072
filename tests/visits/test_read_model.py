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


def test_a_loan_or_wealth_product_sold_brings_a_post_sale_follow_up(api: Api) -> None:
    # General tier: the plan's cycle is months away; a sale brings a follow-up within the
    # policy's post-sale days of the snapshot that shows it.
    customer_id = known_customer(api, value_tier="general", owner="manager.li")
    financials(api, customer_id, "2026-11-20", deposits="5000.00", products=["deposit"])

    def care() -> CustomerCare:
        with runtime_of(api).session_factory() as session:
            found = session.get(CustomerCare, customer_id)
        assert found is not None
        return found

    before = care()
    assert before.due_reason == "cycle" and before.products == ["deposit"]
    financials(api, customer_id, "2026-11-27", deposits="5000.00", products=["deposit", "card"])
    assert care().due_reason == "cycle"  # a card is not a sale that needs a follow-up
    financials(
        api, customer_id, "2026-11-28", deposits="5000.00", products=["deposit", "card", "loan"]
    )
    after = care()
    assert after.due_reason == "post_sale"
    assert before.next_due_on is not None and after.next_due_on is not None
    assert after.next_due_on < before.next_due_on
    assert after.products == ["card", "deposit", "loan"]
