"""A service's runtime: its settings, database, kit tables, event recorder and background workers.

Each service builds one :class:`ServiceRuntime` in its ``app.py``; the same object serves the API
process (which runs the workers too in the embedded mode) and the worker process of production.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import FrameType

from prometheus_client import start_http_server
from sqlalchemy import Engine, MetaData, text
from sqlalchemy.orm import Session, sessionmaker

from crmkit import migrations
from crmkit.consumer import EventApplier, EventConsumer, HandlerRegistry
from crmkit.db import KitTables, make_engine, make_session_factory
from crmkit.heap import freeze_startup_heap
from crmkit.kafka import broker_reachable
from crmkit.leader import LeaderLock
from crmkit.logs import configure_logging
from crmkit.outbox import RECORDER_KEY, EventRecorder, OutboxRelay
from crmkit.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicTask:
    """Work a service's workers run every ``interval_s`` seconds: expiries, sweeps, resuming
    interrupted batches. One replica runs it at a time (a leader lock named by the task); a
    failed run is logged and tried again at the next tick."""

    name: str
    interval_s: float
    run: Callable[[ServiceRuntime], object]


@dataclass
class ServiceRuntime:
    """Everything a service needs at run time, built from its settings."""

    name: str
    settings: ServiceSettings
    metadata: MetaData
    tables: KitTables
    registry: HandlerRegistry
    migrations_dir: Path | None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    relay: OutboxRelay | None = None
    consumer: EventConsumer | None = None
    periodic: tuple[PeriodicTask, ...] = ()

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine, {RECORDER_KEY: self.recorder})

    @cached_property
    def recorder(self) -> EventRecorder:
        return EventRecorder(self.name, self.tables, self.settings.kafka)

    @cached_property
    def applier(self) -> EventApplier:
        return EventApplier(
            self.name,
            self.name,
            self.registry,
            self.tables,
            self.session_factory,
            self.settings.dead_letter_topic,
        )

    @property
    def published_topics(self) -> list[str]:
        return [self.settings.topic, self.settings.dead_letter_topic]

    def migrate(self) -> None:
        if self.migrations_dir is None:
            raise RuntimeError(f"{self.name} has no migrations")
        migrations.upgrade(self.migrations_dir, self.settings.database_url)

    def database_ready(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("database check failed", exc_info=True)
            return False

    @cached_property
    def _broker_probe(self) -> _CachedProbe:
        return _CachedProbe(lambda: broker_reachable(self.settings.kafka))

    def broker_ready(self) -> bool:
        return self._broker_probe.get()

    # -- background work --------------------------------------------------------------------
    def start_workers(self) -> None:
        """Start the outbox relay and, when the service consumes events, its consumer."""
        freeze_startup_heap()
        self._stop.clear()
        self.relay = OutboxRelay(
            self.name, self.engine, self.tables, self.settings, self.published_topics
        )
        self._spawn(f"{self.name}-relay", self.relay.run)
        if self.registry.subscriptions:
            self.consumer = EventConsumer(self.applier, self.settings, self.engine)
            self._spawn(f"{self.name}-consumer", self.consumer.run)
        for task in self.periodic:
            self._spawn(f"{self.name}-{task.name}", self._periodic_loop(task))

    def _periodic_loop(self, task: PeriodicTask) -> Callable[[threading.Event], None]:
        def loop(stop: threading.Event) -> None:
            lock = LeaderLock.for_engine(self.engine, f"{self.name}:periodic:{task.name}")
            try:
                while not stop.wait(task.interval_s):
                    if not lock.acquire():
                        continue
                    try:
                        task.run(self)
                    except Exception:
                        log.exception("periodic task failed", extra={"task": task.name})
            finally:
                lock.release()

        return loop

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop_workers(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self.relay is not None:
            self.relay.wakeup.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def run_worker(self) -> None:
        """Run relay and consumers in the foreground until SIGTERM or SIGINT (production worker)."""
        configure_logging(self.name, self.settings.log_level, self.settings.log_json)
        if self.settings.run_migrations_on_start:
            self.migrate()
        if self.settings.worker_metrics_port:
            start_http_server(self.settings.worker_metrics_port)
        self.start_workers()
        done = threading.Event()

        def _stop(signum: int, frame: FrameType | None) -> None:
            done.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        log.info("worker started", extra={"streams": sorted(self.registry.streams)})
        done.wait()
        self.stop_workers()
        log.info("worker stopped")


class _CachedProbe:
    """Caches a slow reachability check for a couple of seconds (readiness is polled often)."""

    def __init__(self, check: Callable[[], bool], ttl_s: float = 2.0) -> None:
        self._check = check
        self._ttl = ttl_s
        self._value = False
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self) -> bool:
        with self._lock:
            if time.monotonic() - self._at > self._ttl:
                self._value = self._check()
                self._at = time.monotonic()
            return self._value
