"""Two relays on one PostgreSQL database: one publishes, the other takes over when it stops."""

from __future__ import annotations

import threading

import pytest

from crmkit.outbox import OutboxRelay
from crmkit.settings import KafkaSettings
from services.customer.app import build_runtime
from services.customer.settings import CustomerSettings
from tests.conftest import Databases
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.postgres


def test_only_one_relay_publishes_and_the_other_takes_over(
    pg_databases: Databases, kafka_settings: KafkaSettings
) -> None:
    runtime = build_runtime(
        CustomerSettings(
            database_url=pg_databases.url("customer"),
            kafka=kafka_settings,
            relay_poll_interval_s=0.05,
        )
    )
    runtime.migrate()
    relays = [
        OutboxRelay(
            "customer", runtime.engine, runtime.tables, runtime.settings, runtime.published_topics
        )
        for _ in range(2)
    ]
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=r.run, args=(s,), daemon=True)
        for r, s in zip(relays, stops, strict=True)
    ]
    try:
        threads[0].start()
        wait_until(lambda: relays[0]._leader.held, 10, "the first relay to lead")
        threads[1].start()
        _write(runtime, 50)
        wait_until(lambda: relays[0].stats.published == 50, 20, "the leader to publish")
        assert not relays[1]._leader.held
        assert relays[1].stats.published == 0

        stops[0].set()
        threads[0].join(10)
        _write(runtime, 20)
        wait_until(lambda: relays[1].stats.published == 20, 20, "the standby to take over")
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(10)
        runtime.engine.dispose()


def _write(runtime, count: int) -> None:  # type: ignore[no-untyped-def]
    from services.customer import events

    with runtime.session_factory() as session, session.begin():
        for i in range(count):
            runtime.recorder.record(
                session,
                events.CUSTOMER_CREATED,
                {
                    "customer_id": f"00000000-0000-4000-8000-{i:012d}",
                    "kind": "corporate",
                    "name": f"Firm {i}",
                    "org_unit": "/HQ",
                    "business_line": "corporate",
                    "status": "active",
                    "segment": "stock",
                },
                key=str(i),
                actor="test",
            )
