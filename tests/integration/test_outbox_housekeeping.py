"""Outbox backlog figures and pruning of what is past the dedupe horizon."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from crmkit.db import utcnow
from crmkit.outbox import outbox_backlog, prune
from tests.integration.conftest import Pair

pytestmark = pytest.mark.integration


def test_backlog_counts_unpublished_rows_and_the_oldest_age(pair: Pair) -> None:
    assert outbox_backlog(pair.customer.engine, pair.customer.tables) == (0, 0.0)
    pair.write_many(5, keys=5)
    outbox = pair.customer.tables.outbox
    with pair.customer.engine.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.seq == 1)
            .values(created_at=utcnow() - timedelta(seconds=90))
        )
    count, age = outbox_backlog(pair.customer.engine, pair.customer.tables)
    assert count == 5
    assert 89 < age < 120


def test_prune_keeps_unpublished_and_recent_rows(pair: Pair) -> None:
    pair.write_many(6, keys=6)
    tables = pair.customer.tables
    old = utcnow() - timedelta(days=10)
    with pair.customer.engine.begin() as conn:
        conn.execute(
            update(tables.outbox)
            .where(tables.outbox.c.seq <= 2)
            .values(published_at=old, created_at=old)
        )
        conn.execute(
            update(tables.outbox).where(tables.outbox.c.seq == 3).values(published_at=utcnow())
        )
        conn.execute(
            update(tables.outbox).where(tables.outbox.c.seq == 4).values(created_at=old)
        )  # old but never published: must stay
        conn.execute(
            tables.inbox.insert(),
            [
                {
                    "consumer": "x",
                    "event_id": "old",
                    "event_type": "t",
                    "processed_at": old,
                    "outcome": "applied",
                },
                {
                    "consumer": "x",
                    "event_id": "new",
                    "event_type": "t",
                    "processed_at": utcnow(),
                    "outcome": "applied",
                },
            ],
        )
    assert prune(pair.customer.engine, tables, timedelta(days=7)) == (2, 1)
    with pair.customer.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables.outbox)).scalar_one() == 4
        assert conn.execute(select(tables.inbox.c.event_id)).scalars().all() == ["new"]
