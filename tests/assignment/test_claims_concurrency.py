"""Ten first claims at once, then ten grants at once (PostgreSQL: SQLite serialises writers)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmkit.auth import Caller
from services.assignment import claims
from services.assignment.app import create_app
from services.assignment.models import Ownership
from services.assignment.models_claims import Claim
from services.assignment.schemas import OrgUnitIn, StaffIn
from services.assignment.schemas_claims import ClaimIn, DecisionIn
from services.assignment.service import create_org_unit, create_staff
from tests.assignment.conftest import assignment_settings, known_customer, race
from tests.conftest import Databases
from tests.customer.conftest import Api

pytestmark = pytest.mark.postgres

ADMIN = Caller("admin", "Admin", frozenset({"admin"}), "/HQ")
RIVALS = 10


def _manager(n: int) -> Caller:
    return Caller(f"m{n:02d}", f"M{n}", frozenset({"customer_manager"}), "/HQ/U01")


def test_of_ten_first_claims_one_wins_and_of_ten_grants_one_is_made(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    app = create_app(assignment_settings(pg_databases, dev_keys[1]))
    with TestClient(app) as client:
        runtime = app.state.runtime
        with runtime.session_factory() as session:
            for path, kind in (("/HQ", "head_office"), ("/HQ/U01", "county_union")):
                create_org_unit(session, OrgUnitIn(path=path, name=path, type=kind), ADMIN)
            for n in range(RIVALS):
                staff = StaffIn(
                    id=f"m{n:02d}", name=f"M{n}", roles=["customer_manager"], org_unit="/HQ/U01"
                )
                create_staff(session, runtime.recorder, staff, ADMIN)
        customer_id = known_customer(Api(client, {}, dev_keys[0]), org_unit="/HQ/U01")

        def claim_as(n: int) -> Callable[..., str]:
            body = ClaimIn(customer_id=customer_id, note=None)
            return lambda session, recorder: (
                claims.create_claim(session, recorder, body, _manager(n)).status
            )

        assert race(runtime, [claim_as(n) for n in range(RIVALS)]) == Counter(
            {"granted": 1, "contested": RIVALS - 1}
        )
        with runtime.session_factory() as session:
            spans = session.scalars(
                select(Ownership).where(Ownership.customer_id == customer_id)
            ).all()
            assert len(spans) == 1 and spans[0].ended_at is None
            winner = spans[0].staff_id
            rows = session.scalars(select(Claim).order_by(Claim.id)).all()
            assert [c.claimant_id for c in rows if c.status == "granted"] == [winner]
            contested = [c for c in rows if c.status == "contested"]
            assert {c.owner_at_claim for c in contested} == {winner}
        outbox = runtime.tables.outbox
        with runtime.engine.connect() as conn:
            types = Counter(
                conn.execute(
                    select(outbox.c.event_type).where(outbox.c.event_type.like("ownership.%"))
                ).scalars()
            )
        assert types == Counter({"ownership.assigned": 1})

        # The administrator grants every contested claim at once: one is granted.
        def grant(claim_id: str) -> Callable[..., str]:
            body = DecisionIn(decision="grant", reason=None)
            return lambda session, recorder: (
                claims.decide(session, recorder, claim_id, body, ADMIN).status
            )

        assert race(runtime, [grant(c.id) for c in contested]) == Counter(
            {"granted": 1, "conflict": RIVALS - 2}
        )
        with runtime.session_factory() as session:
            statuses = Counter(session.scalars(select(Claim.status)))
            assert statuses == Counter({"granted": 2, "refused": RIVALS - 2})
            open_spans = session.scalars(
                select(Ownership).where(
                    Ownership.customer_id == customer_id, Ownership.ended_at.is_(None)
                )
            ).all()
            second = session.scalars(
                select(Claim.claimant_id).where(
                    Claim.status == "granted", Claim.decided_by == "admin"
                )
            ).one()
            assert [s.staff_id for s in open_spans] == [second] and second != winner
            assert session.execute(select(func.count()).select_from(Ownership)).scalar_one() == 2
        with runtime.engine.connect() as conn:
            types = Counter(
                conn.execute(
                    select(outbox.c.event_type).where(outbox.c.event_type.like("ownership.%"))
                ).scalars()
            )
        assert types == Counter({"ownership.assigned": 1, "ownership.transferred": 1})
