"""The rating service keeps its copies of customers, owners and figures from events."""

from __future__ import annotations

from decimal import Decimal

from services.assignment.events import (
    OWNERSHIP_ASSIGNED,
    OWNERSHIP_RELEASED,
    OWNERSHIP_TRANSFERRED,
)
from services.customer.events import CUSTOMER_ERASED, CUSTOMER_MERGED
from services.rating.models import CustomerFigures, customer_refs, owner_refs
from tests.customer.conftest import Api
from tests.rating.conftest import deliver, financials, known_customer, runtime_of


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


def test_an_erased_customer_keeps_no_name_and_a_merged_record_is_marked(api: Api) -> None:
    erased = known_customer(api, name="Li Si")
    merged = known_customer(api, name="Wang Wu")
    survivor = known_customer(api, name="Wang Wu")
    deliver(
        api,
        CUSTOMER_ERASED,
        {"customer_id": erased, "erased_at": "2026-11-30T08:00:00Z"},
        key=erased,
        actor="admin",
    )
    deliver(
        api, CUSTOMER_MERGED, {"merged_id": merged, "survivor_id": survivor}, key=merged, actor="x"
    )
    with runtime_of(api).session_factory() as session:
        rows = {
            r.customer_id: r
            for r in session.execute(
                customer_refs.select().where(
                    customer_refs.c.customer_id.in_([erased, merged, survivor])
                )
            )
        }
    assert rows[erased].name == "" and rows[erased].kind == "individual"
    assert rows[merged].status == "merged"
    assert rows[survivor].status == "active" and rows[survivor].name == "Wang Wu"


def test_a_transfer_moves_the_owner_and_a_release_removes_the_member(api: Api) -> None:
    customer_id = known_customer(api, owner="manager.li")
    deliver(
        api,
        OWNERSHIP_TRANSFERRED,
        {
            "customer_id": customer_id,
            "from_staff_id": "manager.li",
            "to_staff_id": "manager.zhou",
            "org_unit": "/HQ/U01/B01",
            "effective_at": "2026-11-30T00:00:00Z",
        },
        key=customer_id,
        actor="head.sun",
    )
    deliver(
        api,
        OWNERSHIP_ASSIGNED,
        {
            "customer_id": customer_id,
            "staff_id": "head.sun",
            "role": "team_member",
            "org_unit": "/HQ/U01/B01",
            "effective_at": "2026-11-30T00:00:00Z",
        },
        key=customer_id,
        actor="head.sun",
    )

    def held() -> set[tuple[str, str]]:
        with runtime_of(api).session_factory() as session:
            rows = session.execute(
                owner_refs.select().where(owner_refs.c.customer_id == customer_id)
            ).all()
        return {(r.staff_id, r.role) for r in rows}

    assert held() == {("manager.zhou", "owner"), ("head.sun", "team_member")}
    deliver(
        api,
        OWNERSHIP_RELEASED,
        {
            "customer_id": customer_id,
            "staff_id": "head.sun",
            "role": "team_member",
            "effective_at": "2026-11-30T01:00:00Z",
        },
        key=customer_id,
        actor="head.sun",
    )
    assert held() == {("manager.zhou", "owner")}
