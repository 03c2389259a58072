"""The rating service keeps its copies of customers, owners and figures from events."""

from __future__ import annotations

from decimal import Decimal

from services.rating.models import CustomerFigures, customer_refs, owner_refs
from tests.customer.conftest import Api
from tests.rating.conftest import financials, known_customer, runtime_of


def test_customer_owner_and_figures_are_kept_from_events(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    financials(api, customer_id, "2026-11-27", deposits="80000.00", loans="10000.00")
    financials(api, customer_id, "2026-11-28", deposits="50000.00", overdue_amount="1200.00")
    financials(api, customer_id, "2026-11-26", deposits="1.00")  # late: ignored
    with runtime_of(api).session_factory() as session:
        ref = session.execute(
            customer_refs.select().where(customer_refs.c.customer_id == customer_id)
        ).one()
        assert ref.kind == "individual" and ref.org_unit == "/HQ/U01/B01"
        owners = session.execute(
            owner_refs.select().where(owner_refs.c.customer_id == customer_id)
        ).all()
        assert [(o.staff_id, o.role) for o in owners] == [("manager.li", "owner")]
        figures = session.get(CustomerFigures, customer_id)
        assert figures is not None
        assert figures.deposits == Decimal("50000.00")
        assert figures.previous_deposits == Decimal("80000.00")
        assert figures.overdue_amount == Decimal("1200.00")
        assert str(figures.business_date) == "2026-11-28"
