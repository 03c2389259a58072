"""Complaint transitions and escalation sweeps at once (PostgreSQL: SQLite serialises writers,
hiding races)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from crmkit.auth import Caller
from crmkit.db import utcnow
from services.visits import complaints
from services.visits.app import create_app
from services.visits.models_complaints import Complaint, ComplaintStep
from services.visits.schemas_complaints import ComplaintIn, TransitionIn
from tests.assignment.conftest import race
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.visits.conftest import events_of, known_customer, visits_settings

pytestmark = pytest.mark.postgres

HEAD = Caller("head.sun", "Sun", frozenset({"outlet_head"}), "/HQ/U01/B01")
RIVALS = 10


def test_of_ten_transitions_at_once_one_wins_and_a_late_step_escalates_once(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    app = create_app(visits_settings(pg_databases, dev_keys[1]))
    with TestClient(app) as client:
        runtime = app.state.runtime
        api = Api(client, {}, dev_keys[0])
        customer_id = known_customer(api)
        body = ComplaintIn(
            customer_id=customer_id, channel="counter", category="fees", description="Fee"
        )
        with runtime.session_factory() as session:
            complaint = complaints.record_complaint(session, runtime.recorder, body, HEAD, utcnow())
            complaint_id, due = complaint.id, complaint.step_due_at
        assert due is not None

        def accept(n: int) -> Callable[..., str]:
            step = TransitionIn(to="accepted", note=f"accepted by rival {n}")
            return lambda session, recorder: (
                complaints.transition(session, recorder, complaint_id, step, HEAD, utcnow()).status
            )

        assert race(runtime, [accept(n) for n in range(RIVALS)]) == Counter(
            {"accepted": 1, "conflict": RIVALS - 1}
        )
        with runtime.session_factory() as session:
            stored = session.get(Complaint, complaint_id)
            assert stored is not None and stored.status == "accepted" and stored.version == 2
            steps = session.scalars(
                select(ComplaintStep).where(ComplaintStep.complaint_id == complaint_id)
            ).all()
            assert sorted(s.step for s in steps) == ["accept", "analyse", "record"]
            winner = next(s for s in steps if s.step == "accept")
            assert winner.done_at is not None and winner.note is not None
        assert len(events_of(api, "complaint.transitioned")) == 1

        # The analyse step is late: ten sweeps at once escalate it once.
        with runtime.session_factory() as session:
            analyse = session.get(ComplaintStep, (complaint_id, "analyse"))
            assert analyse is not None and analyse.due_at is not None
            late_at = analyse.due_at + timedelta(minutes=1)
        barrier = threading.Barrier(RIVALS)
        counts: list[int] = []
        lock = threading.Lock()

        def sweep() -> None:
            barrier.wait()
            done = complaints.escalate_late(runtime, now=late_at)
            with lock:
                counts.append(done)

        threads = [threading.Thread(target=sweep) for _ in range(RIVALS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(counts) == [0] * (RIVALS - 1) + [1]
        escalated = events_of(api, "complaint.escalated")
        assert [(e["reason"], e["step"]) for e in escalated] == [("late", "analyse")]
