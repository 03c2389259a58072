"""Concurrent writers on one customer (PostgreSQL: SQLite serialises writers and hides races)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crmkit.auth import Caller
from crmkit.errors import Conflict
from services.customer.app import create_app
from services.customer.schemas import CustomerCreate, CustomerPatch
from services.customer.service import create_customer, update_customer
from tests.conftest import Databases
from tests.customer.conftest import person, test_settings

pytestmark = pytest.mark.postgres

HEAD = Caller("head.sun", "Sun Li", frozenset({"outlet_head"}), "/HQ/U01/B01")


def test_two_writers_of_one_version_one_wins_the_other_gets_409(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    app = create_app(test_settings(pg_databases, dev_keys[1]))
    with TestClient(app):
        runtime = app.state.runtime
        ctx = app.state.customer_context
        with runtime.session_factory() as session:
            customer = create_customer(session, ctx, CustomerCreate(**person()), HEAD)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def write(name: str) -> None:
            with runtime.session_factory() as session:
                patch = CustomerPatch(name=name, version=1)
                barrier.wait()
                try:
                    update_customer(session, ctx, customer.id, patch, HEAD, None)
                    outcomes.append("ok")
                except Conflict:
                    outcomes.append("conflict")

        threads = [threading.Thread(target=write, args=(n,)) for n in ("A", "B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["conflict", "ok"]
        with runtime.session_factory() as session:
            from services.customer.models import Customer

            stored = session.get(Customer, customer.id)
            assert stored is not None and stored.version == 2 and stored.name in {"A", "B"}


def test_two_customers_with_one_identity_at_once_one_is_refused(
    pg_databases: Databases, dev_keys: tuple[str, Path]
) -> None:
    app = create_app(test_settings(pg_databases, dev_keys[1]))
    with TestClient(app):
        runtime = app.state.runtime
        ctx = app.state.customer_context
        barrier = threading.Barrier(4)
        outcomes: list[str] = []

        def enter() -> None:
            with runtime.session_factory() as session:
                cmd = CustomerCreate(**person())
                barrier.wait()
                try:
                    create_customer(session, ctx, cmd, HEAD)
                    outcomes.append("created")
                except Conflict:
                    outcomes.append("conflict")

        threads = [threading.Thread(target=enter) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["conflict", "conflict", "conflict", "created"]
