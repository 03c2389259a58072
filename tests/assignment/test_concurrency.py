"""Fifty conflicting assignments at once (PostgreSQL: SQLite serialises writers, hiding races)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.outbox import EventRecorder
from services.assignment.app import create_app
from services.assignment.models import Ownership
from services.assignment.schemas import AssignmentIn, AssignmentMode, OrgUnitIn, StaffIn
from services.assignment.service import assign, create_org_unit, create_staff
from tests.assignment.conftest import assignment_settings, known_customer, race
from tests.conftest import Databases
from tests.customer.conftest import Api

pytestmark = pytest.mark.postgres

ADMIN = Caller("admin", "Admin", frozenset({"admin"}), "/HQ")
RIVALS = 50


def _assigning(body: AssignmentIn) -> Callable[[Session, EventRecorder], str]:
    def call(session: Session, recorder: EventRecorder) -> str:
        assign(session, recorder, body, ADMIN)
        return "ok"

    return call


def test_fifty_conflicting_assignments_leave_exactly_one_owner(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    app = create_app(assignment_settings(pg_databases, dev_keys[1]))
    with TestClient(app) as client:
        runtime = app.state.runtime
        api = Api(client, {}, dev_keys[0])
        with runtime.session_factory() as session:
            for path, kind in (("/HQ", "head_office"), ("/HQ/U01", "county_union")):
                create_org_unit(session, OrgUnitIn(path=path, name=path, type=kind), ADMIN)
            for n in range(RIVALS):
                staff = StaffIn(
                    id=f"m{n:02d}", name=f"M{n}", roles=["customer_manager"], org_unit="/HQ/U01"
                )
                create_staff(session, runtime.recorder, staff, ADMIN)
        customer_id = known_customer(api, org_unit="/HQ/U01")

        assigned = race(
            runtime,
            [
                _assigning(
                    AssignmentIn(customer_id=customer_id, staff_id=f"m{n:02d}", reason="claimed")
                )
                for n in range(RIVALS)
            ],
        )
        assert assigned == Counter({"ok": 1, "conflict": RIVALS - 1})
        with runtime.session_factory() as session:
            spans = session.scalars(
                select(Ownership).where(Ownership.customer_id == customer_id)
            ).all()
            assert len(spans) == 1 and spans[0].ended_at is None
            owner = spans[0].staff_id

        # Then fifty transfers from that owner to the others at once: one wins.
        transferred = race(
            runtime,
            [
                _assigning(
                    AssignmentIn(
                        customer_id=customer_id,
                        mode=AssignmentMode.transfer,
                        staff_id=f"m{n:02d}",
                        from_staff_id=owner,
                        reason="transfer",
                    )
                )
                for n in range(RIVALS)
                if f"m{n:02d}" != owner
            ],
        )
        assert transferred == Counter({"ok": 1, "conflict": RIVALS - 2})
        with runtime.session_factory() as session:
            open_spans = session.execute(
                select(func.count())
                .select_from(Ownership)
                .where(Ownership.customer_id == customer_id, Ownership.ended_at.is_(None))
            ).scalar_one()
            assert open_spans == 1
            spans = session.scalars(
                select(Ownership)
                .where(Ownership.customer_id == customer_id)
                .order_by(Ownership.started_at, Ownership.id)
            ).all()
            assert [s.staff_id == owner for s in spans] == [True, False]
            assert spans[0].ended_at is not None and spans[0].ended_at <= spans[1].started_at
        outbox = runtime.tables.outbox
        with runtime.engine.connect() as conn:
            types = Counter(conn.execute(select(outbox.c.event_type)).scalars())
        assert types == Counter(
            {"ownership.assigned": 1, "ownership.transferred": 1, "staff.changed": RIVALS}
        )
