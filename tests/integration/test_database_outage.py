"""A consuming service whose database goes away mid-work loses nothing and dead-letters nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from crmkit.settings import KafkaSettings
from tests.conftest import PG_ADMIN_DSN, Databases
from tests.integration.conftest import Pair, build_pair, wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_pair(pg_databases: Databases, kafka_settings: KafkaSettings) -> Iterator[Pair]:
    made = build_pair(pg_databases, kafka_settings)
    yield made
    made.close()
    _allow_connections(_database(made.effects.settings.database_url), True)


def _database(url: str) -> str:
    name = make_url(url).database
    assert name
    return name


def _allow_connections(database: str, allowed: bool) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


def test_consumer_holds_events_while_its_database_is_away(pg_pair: Pair) -> None:
    pg_pair.customer.start_workers()
    pg_pair.effects.start_workers()
    pg_pair.write_many(200, keys=4)
    wait_until(pg_pair.applied_all, 30, "the first events", pg_pair.progress)

    database = _database(pg_pair.effects.settings.database_url)
    _allow_connections(database, False)
    try:
        pg_pair.write_many(200, keys=4)
        time.sleep(4)  # the consumer polls these while it cannot reach its database
    finally:
        _allow_connections(database, True)

    wait_until(pg_pair.applied_all, 60, "the events held during the outage", pg_pair.progress)
    counts = pg_pair.effect_counts()
    assert len(counts) == 400
    assert set(counts.values()) == {1}
    dead = pg_pair.effects.tables.dead_letters
    with pg_pair.effects.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dead)).scalar_one() == 0
