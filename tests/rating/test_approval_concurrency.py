"""Decisions at once on PostgreSQL (SQLite serialises writers, hiding races): of approvers
deciding one limit together exactly one wins and one event is recorded; a member voting twice
at once is counted once."""

from __future__ import annotations

import threading
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
from crmkit.runtime import ServiceRuntime
from services.rating import approvals, committee
from services.rating.app import create_app
from services.rating.models_committee import CommitteeVote
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.rating.conftest import rating_settings
from tests.rating.test_approvals import ok, proposed_limit, review
from tests.rating.test_committee import open_meeting

pytestmark = pytest.mark.postgres

QIAN = Caller("approver.qian", "Qian Jun", frozenset({"credit_approver"}), "/HQ/U01")
ZHAO = Caller("president.zhao", "Zhao Min", frozenset({"branch_president"}), "/HQ/U01")
SUN = Caller("head.sun", "Sun Li", frozenset({"outlet_head"}), "/HQ/U01/B01")
WU = Caller("committee.wu", "Wu Hua", frozenset({"credit_committee"}), "/HQ/U01")

Call = Callable[[Session, EventRecorder], str]


def race(runtime: ServiceRuntime, calls: list[Call]) -> Counter[str]:
    """Run every call at once, each in its own session (a barrier lines them up); count the
    outcomes, a Conflict counting as "conflict"."""
    barrier = threading.Barrier(len(calls))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(call: Call) -> None:
        with runtime.session_factory() as session:
            barrier.wait()
            try:
                outcome = call(session, runtime.recorder)
            except Conflict:
                outcome = "conflict"
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def approving(limit_id: str, caller: Caller) -> Call:
    def call(session: Session, recorder: EventRecorder) -> str:
        approvals.approve(session, recorder, limit_id, None, caller)
        return "approved"

    return call


def rejecting(limit_id: str, caller: Caller) -> Call:
    def call(session: Session, recorder: EventRecorder) -> str:
        approvals.reject(session, recorder, limit_id, "Not now", caller)
        return "rejected"

    return call


def count(runtime: ServiceRuntime, event_type: str) -> int:
    outbox = runtime.tables.outbox
    with runtime.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.event_type == event_type)
            ).scalar_one()
        )


def test_of_approvers_deciding_at_once_exactly_one_wins(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    app = create_app(rating_settings(pg_databases, dev_keys[1]))
    with TestClient(app) as client:
        api = Api(client, {}, dev_keys[0])
        runtime: ServiceRuntime = app.state.runtime
        rounds = 5
        for _ in range(rounds):
            # 200,000.00: within the authority of all three (the outlet head's is 300,000.00).
            limit = proposed_limit(api, "200000.00")
            ok(review(api, limit["id"]))
            outcomes = race(
                runtime,
                [approving(limit["id"], QIAN), approving(limit["id"], ZHAO),
                 rejecting(limit["id"], SUN)],
            )  # fmt: skip
            assert sum(outcomes.values()) == 3 and outcomes["conflict"] == 2, outcomes
            with runtime.session_factory() as session:
                decided = approvals.load_limit(session, limit["id"])
                assert decided.status in {"approved", "rejected"}
                steps = approvals.list_steps(
                    session, limit["id"], Caller("a", "a", frozenset({"admin"}), "/HQ"), 50, 0
                )[0]
                # One decision step, the winner's.
                assert [s.step for s in steps if s.step in {"approve", "reject"}] == [
                    "approve" if decided.status == "approved" else "reject"
                ]
        decided_events = count(runtime, "credit_limit.approved") + count(
            runtime, "credit_limit.rejected"
        )
        assert decided_events == rounds


def test_a_member_voting_twice_at_once_is_counted_once(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    app = create_app(rating_settings(pg_databases, dev_keys[1]))
    with TestClient(app) as client:
        api = Api(client, {}, dev_keys[0])
        runtime: ServiceRuntime = app.state.runtime
        limit = proposed_limit(api, "6000000.00")
        ok(review(api, limit["id"]))
        ok(open_meeting(api, limit["id"]), 201)

        def voting(choice: str) -> Call:
            def call(session: Session, recorder: EventRecorder) -> str:
                committee.vote(session, recorder, limit["id"], choice, "At once.", WU)
                return "voted"

            return call

        outcomes = race(runtime, [voting("for"), voting("against"), voting("abstain")])
        assert outcomes == Counter({"voted": 1, "conflict": 2})
        with runtime.session_factory() as session:
            votes = session.scalars(select(CommitteeVote)).all()
            assert [v.member for v in votes] == ["committee.wu"]
        assert count(runtime, "credit_limit.voted") == 1
