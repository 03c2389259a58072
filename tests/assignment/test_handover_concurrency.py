"""Two approvers approve one handover at once (PostgreSQL: SQLite serialises writers, hiding
races): one approval moves the book, once; the other finds the handover completed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.errors import Conflict
from crmkit.outbox import EventRecorder
from services.assignment import handovers
from services.assignment.app import create_app
from services.assignment.models import Ownership
from services.assignment.models_handovers import Handover
from services.assignment.schemas_handovers import ApproveIn
from tests.assignment.conftest import assignment_settings, known_customer, race
from tests.conftest import Databases
from tests.customer.conftest import Api

pytestmark = pytest.mark.postgres

ADMIN = Caller("admin", "Admin", frozenset({"admin"}), "/HQ")
PRESIDENT = Caller("president.zhao", "Zhao", frozenset({"branch_president"}), "/HQ/U01")
BOOK = 12
RECEIVERS = ("m.r1", "m.r2", "m.r3")


def _approving(handover_id: str, caller: Caller) -> Callable[[Session, EventRecorder], str]:
    """Approve; a 409 saying the handover is completed counts as "completed" (any other 409,
    e.g. about one of its customers, as "conflict")."""

    def call(session: Session, recorder: EventRecorder) -> str:
        try:
            handovers.approve(session, recorder, handover_id, ApproveIn(), caller)
        except Conflict as exc:
            if exc.detail != f"handover {handover_id} is completed":
                raise
            return "completed"
        return "ok"

    return call


def _setup(api: Api) -> tuple[str, list[str]]:
    """A departing manager with a book of ``BOOK`` customers, all audited clear and planned."""
    admin = api.as_("admin")
    for path, kind in (
        ("/HQ", "head_office"),
        ("/HQ/U01", "county_union"),
        ("/HQ/U01/B01", "outlet"),
    ):
        resp = admin.post("/api/v1/org-units", json={"path": path, "name": path, "type": kind})
        assert resp.status_code == 201, resp.text
    for staff_id in ("m.old", *RECEIVERS):
        body = {
            "id": staff_id,
            "name": staff_id,
            "roles": ["customer_manager"],
            "org_unit": "/HQ/U01/B01",
        }
        assert admin.post("/api/v1/staff", json=body).status_code == 201
    book = []
    for _ in range(BOOK):
        customer_id = known_customer(api)
        body = {"customer_id": customer_id, "staff_id": "m.old", "reason": "rule"}
        assert admin.post("/api/v1/assignments", json=body).status_code == 200
        book.append(customer_id)
    resp = admin.post("/api/v1/handovers", json={"staff_id": "m.old", "cause": "departure"})
    assert resp.status_code == 201, resp.text
    handover_id: str = resp.json()["id"]
    for customer_id in book:
        audit = {"customer_id": customer_id, "finding": "clear"}
        resp = api.as_("auditor.chen").post(f"/api/v1/handovers/{handover_id}/audits", json=audit)
        assert resp.status_code == 200, resp.text
    return handover_id, book


def test_two_approvals_at_once_move_the_book_once(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    app = create_app(assignment_settings(pg_databases, dev_keys[1]))
    with TestClient(app) as client:
        runtime = app.state.runtime
        api = Api(client, {}, dev_keys[0])
        handover_id, book = _setup(api)

        outcomes = race(
            runtime, [_approving(handover_id, ADMIN), _approving(handover_id, PRESIDENT)]
        )

        # One approval moves the book; the other waits for it, then finds the handover completed
        # (it never races the first customer by customer).
        assert outcomes == Counter({"ok": 1, "completed": 1})
        with runtime.session_factory() as session:
            handover = session.get(Handover, handover_id)
            assert handover is not None and handover.status == "completed"
            spans = session.execute(
                select(Ownership.customer_id, Ownership.staff_id, Ownership.ended_at).where(
                    Ownership.customer_id.in_(book)
                )
            ).all()
            # Each customer: the leaver's span ended, one open span with a receiver.
            assert len(spans) == 2 * BOOK
            assert sorted(c for c, s, ended in spans if s == "m.old" and ended) == sorted(book)
            assert sorted(c for c, s, ended in spans if ended is None) == sorted(book)
            assert {s for _, s, ended in spans if ended is None} <= set(RECEIVERS)
            open_spans = session.execute(
                select(func.count())
                .select_from(Ownership)
                .where(Ownership.staff_id == "m.old", Ownership.ended_at.is_(None))
            ).scalar_one()
            assert open_spans == 0
        outbox = runtime.tables.outbox
        with runtime.engine.connect() as conn:
            types = Counter(conn.execute(select(outbox.c.event_type)).scalars())
        assert (types["ownership.transferred"], types["handover.completed"]) == (BOOK, 1)
        status = api.as_("admin").get("/api/v1/staff/m.old").json()["status"]
        assert status == "left"
