"""Fixtures of the integration tests: a producing service (customer) and a counting consumer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crmkit.broker import EmbeddedBroker
from crmkit.runtime import ServiceRuntime
from crmkit.settings import KafkaSettings
from services.customer import events
from services.customer.app import build_runtime as build_customer
from services.customer.settings import CustomerSettings
from tests.conftest import Databases
from tests.integration.effects_service import EffectsSettings, effect_counts
from tests.integration.effects_service import build_runtime as build_effects

REPO = Path(__file__).resolve().parents[2]


def customer_id(n: int) -> str:
    """A stable customer id (a UUID, as the event contracts require) for test customer n."""
    return str(uuid.UUID(int=n + 1))


def wait_until(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    details: Callable[[], str] | None = None,
) -> float:
    """Poll until ``predicate`` holds; return the seconds it took; fail the test on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    extra = f" ({details()})" if details else ""
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{extra}")


@dataclass
class Pair:
    """The customer service (outbox + relay) and the effects service (consumer + inbox)."""

    customer: ServiceRuntime
    effects: ServiceRuntime
    kafka: KafkaSettings
    written: list[tuple[str, str]] = field(default_factory=list)  # (event_id, customer_id)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def write(self, customer_id: str, name: str, *, created: bool = False) -> str:
        """Record a customer event straight into the outbox (one transaction)."""
        spec = events.CUSTOMER_CREATED if created else events.CUSTOMER_UPDATED
        data: dict[str, Any] = {
            "customer_id": customer_id,
            "kind": "individual",
            "name": name,
            "org_unit": "/HQ/U01/B01",
            "business_line": "personal",
            "status": "active",
            "segment": "stock",
        }
        if not created:
            data["changed"] = ["name"]
        with self.customer.session_factory() as session, session.begin():
            envelope = self.customer.recorder.record(
                session, spec, data, key=customer_id, actor="test"
            )
        self.written.append((str(envelope.id), customer_id))
        return str(envelope.id)

    def write_many(self, count: int, keys: int = 10) -> None:
        """``count`` events over ``keys`` customers, names v0, v1, … per customer in order."""
        customers = [str(uuid.uuid4()) for _ in range(keys)]
        with self.customer.session_factory() as session, session.begin():
            for i in range(count):
                cid = customers[i % keys]
                data = {
                    "customer_id": cid,
                    "kind": "individual",
                    "name": f"v{i // keys}",
                    "org_unit": "/HQ",
                    "business_line": "personal",
                    "status": "active",
                    "segment": "stock",
                    "changed": ["name"],
                }
                env = self.customer.recorder.record(
                    session, events.CUSTOMER_UPDATED, data, key=cid, actor="test"
                )
                self.written.append((str(env.id), cid))

    def effect_counts(self) -> dict[str, int]:
        with self.effects.session_factory() as session:
            return effect_counts(session)

    def progress(self) -> str:
        """What has arrived so far, for a failure message."""
        counts = self.effect_counts()
        missing = [eid for eid, _ in self.written if eid not in counts]
        stats = self.customer.relay.stats if self.customer.relay else None
        return (
            f"written {len(self.written)}, published {self.published_count()}, applied "
            f"{len(counts)}, missing {len(missing)}; relay {stats}"
        )

    def applied_all(self) -> bool:
        counts = self.effect_counts()
        return all(eid in counts for eid, _ in self.written)

    def published_count(self) -> int:
        return published_count(self.customer)

    def names_in_order(self) -> dict[str, list[str]]:
        """Per customer, the names in the order the consumer applied them."""
        from tests.integration.effects_service import effects

        with self.effects.engine.connect() as conn:
            rows = conn.execute(
                select(effects.c.customer_id, effects.c.name).order_by(effects.c.id)
            ).all()
        out: dict[str, list[str]] = {}
        for cid, name in rows:
            out.setdefault(cid, []).append(name)
        return out

    def spawn(self, module: str, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Run a service worker as its own process (to kill it with SIGKILL)."""
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CRM_LOG_JSON": "false",
            "CRM_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "CRM_KAFKA_NAMESPACE": self.kafka.namespace,
            "CRM_WORKER_METRICS_PORT": "0",
            **extra_env,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._processes.append(proc)
        return proc

    def spawn_relay(self) -> subprocess.Popen[bytes]:
        return self.spawn(
            "services.customer.worker",
            {
                "CRM_CUSTOMER_DATABASE_URL": self.customer.settings.database_url,
                "CRM_CUSTOMER_RUN_MIGRATIONS_ON_START": "false",
                "CRM_CUSTOMER_RELAY_BATCH_SIZE": "200",
            },
        )

    def spawn_consumer(self, crash_after_batches: int = 0) -> subprocess.Popen[bytes]:
        return self.spawn(
            "tests.integration.effects_service",
            {
                "CRM_EFFECTS_DATABASE_URL": self.effects.settings.database_url,
                "CRASH_AFTER_BATCHES": str(crash_after_batches),
            },
        )

    def close(self) -> None:
        for proc in self._processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.customer.stop_workers()
        self.effects.stop_workers()
        self.customer.engine.dispose()
        self.effects.engine.dispose()


def published_count(runtime: ServiceRuntime) -> int:
    """Outbox rows of a service that the broker has acknowledged."""
    outbox = runtime.tables.outbox
    with runtime.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(outbox.c.published_at.is_not(None))
            ).scalar_one()
        )


def build_pair(databases: Databases, kafka: KafkaSettings) -> Pair:
    """The customer service (migrated) and the effects service on fresh databases."""
    customer = build_customer(CustomerSettings(database_url=databases.url("customer"), kafka=kafka))
    customer.migrate()
    effects = build_effects(EffectsSettings(database_url=databases.url("effects"), kafka=kafka))
    return Pair(customer, effects, kafka)


@pytest.fixture
def pair(databases: Databases, kafka_settings: KafkaSettings) -> Iterator[Pair]:
    made = build_pair(databases, kafka_settings)
    yield made
    made.close()


@pytest.fixture
def restartable_broker() -> Iterator[EmbeddedBroker]:
    """A broker of the test's own, to stop and start without disturbing other tests."""
    instance = EmbeddedBroker()
    instance.start()
    yield instance
    instance.stop()
