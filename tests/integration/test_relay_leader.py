"""Two relays on one PostgreSQL database: one publishes, the other takes over when it stops."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from crmkit.outbox import OutboxRelay
from crmkit.settings import KafkaSettings
from services.customer import events
from services.customer.app import build_runtime
from services.customer.settings import CustomerSettings
from tests.conftest import Databases
from tests.integration.conftest import REPO, published_count, wait_until

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


def _write(runtime, count: int, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    with runtime.session_factory() as session, session.begin():
        for i in range(start, start + count):
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


def test_a_relay_in_another_process_is_woken_by_the_commit(
    pg_databases: Databases, kafka_settings: KafkaSettings
) -> None:
    """The production topology: the API commits, the worker process publishes at once."""
    runtime = build_runtime(
        CustomerSettings(database_url=pg_databases.url("customer"), kafka=kafka_settings)
    )
    runtime.migrate()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CRM_LOG_JSON": "false",
        "CRM_WORKER_METRICS_PORT": "0",
        "CRM_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "CRM_KAFKA_NAMESPACE": kafka_settings.namespace,
        "CRM_CUSTOMER_DATABASE_URL": runtime.settings.database_url,
        "CRM_CUSTOMER_RUN_MIGRATIONS_ON_START": "false",
        # Polling alone would take up to 10 s: only the notification can make it fast.
        "CRM_CUSTOMER_RELAY_POLL_INTERVAL_S": "10",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "services.customer.worker"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _write(runtime, 1)
        wait_until(lambda: published_count(runtime) == 1, 30, "the worker to start publishing")
        time.sleep(0.5)  # the relay is idle, waiting on its listener
        for expected in (2, 3, 4):
            _write(runtime, 1, start=expected)
            elapsed = wait_until(lambda n=expected: published_count(runtime) == n, 10, "a publish")
            assert elapsed < 1.0, f"the relay took {elapsed:.2f} s: the commit did not wake it"
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        runtime.engine.dispose()
