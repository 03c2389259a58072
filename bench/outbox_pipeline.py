"""Outbox publish → consumer-applied latency and throughput through one service pair, next to a
bare kafka-python produce → consume on the same broker, and recovery from a broker restart.

The pair runs as it is deployed, one process per side. The producing side is the customer
service's worker (``python -m services.customer.worker``, its outbox relay) in a process of its
own; it reads from the customer database what the writer — the use case, in the bench process —
committed there. The consuming side is the assignment service's consumer, in the bench process,
applying ``customer.created`` into ``customer_refs``. An event counts as applied when the consumer
transaction that wrote its ``customer_refs`` row and inbox entry has committed. The bare baseline
is split the same way: a kafka-python producer process (``python -m bench._bare_producer``) and a
consumer in the bench process. Latencies cross processes, so they are wall-clock (``time.time()``)
differences on one machine.

Goals (from the issue): pipeline p99 latency at most 2x the bare figure, throughput at least half
of it; after a broker restart, events flow again within 10 s and none is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from kafka import KafkaConsumer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.broker import EmbeddedBroker, free_port
from crmkit.consumer import Subscription
from crmkit.events import Envelope, build_envelope
from crmkit.kafka import ensure_topics, make_consumer
from crmkit.runtime import ServiceRuntime
from crmkit.settings import KafkaSettings
from services.assignment.app import build_runtime as build_assignment
from services.assignment.models import customer_refs
from services.assignment.settings import AssignmentSettings
from services.customer.app import build_runtime as build_customer
from services.customer.events import CUSTOMER_CREATED
from services.customer.settings import CustomerSettings

NAME = "outbox_pipeline"
PROCESSES = "relay and consumer in separate processes"
REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
_APPLIED_KEY = "bench_applied_customer_ids"


@dataclass(frozen=True)
class Size:
    label: str
    latency_events: int
    latency_rate: float
    throughput_events: int
    throughput_txn_size: int
    recovery_rate: float
    outage_s: float
    recovery_timeout_s: float


SMALL = Size("small", 1000, 200.0, 20_000, 1000, 100.0, 3.0, 60.0)
FULL = Size("full", 5000, 200.0, 100_000, 1000, 100.0, 3.0, 60.0)


# -- measurement helpers ------------------------------------------------------------------------
class Arrivals:
    """When each id was first seen at the receiving end (wall clock, ``time.time()``)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._cond = threading.Condition()

    def mark(self, ids: Iterable[str]) -> None:
        now = time.time()
        with self._cond:
            for i in ids:
                self.at.setdefault(i, now)
            self._cond.notify_all()

    def wait_all(self, ids: Iterable[str], timeout_s: float) -> bool:
        pending = list(ids)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                pending = [i for i in pending if i not in self.at]
                if not pending:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))

    def wait_any(self, ids: Callable[[], Iterable[str]], timeout_s: float) -> float | None:
        """The earliest arrival among ``ids()`` once one has arrived, or None at the timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                seen = [self.at[i] for i in ids() if i in self.at]
                if seen:
                    return min(seen)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.1))


class AppliedObserver(Arrivals):
    """Marks customer ids as applied when the assignment consumer's transaction commits.

    Wraps the assignment handler of ``customer.created`` so that it notes the customer id on the
    session; an ``after_commit`` listener on the runtime's sessions marks the noted ids.
    """

    def __init__(self, runtime: ServiceRuntime) -> None:
        super().__init__()
        self.runtime = runtime
        self.original = runtime.registry.subscriptions[CUSTOMER_CREATED.type]
        original_handler = self.original.handler

        def observed(session: Session, envelope: Envelope) -> None:
            original_handler(session, envelope)
            session.info.setdefault(_APPLIED_KEY, []).append(envelope.data["customer_id"])

        runtime.registry.subscriptions[CUSTOMER_CREATED.type] = Subscription(
            self.original.event_type, self.original.versions, observed
        )
        sa_event.listen(runtime.session_factory, "after_commit", self._committed)
        sa_event.listen(runtime.session_factory, "after_rollback", self._rolled_back)

    def _committed(self, session: Session) -> None:
        ids = session.info.pop(_APPLIED_KEY, None)
        if ids:
            self.mark(ids)

    def _rolled_back(self, session: Session) -> None:
        session.info.pop(_APPLIED_KEY, None)

    def remove(self) -> None:
        self.runtime.registry.subscriptions[CUSTOMER_CREATED.type] = self.original
        sa_event.remove(self.runtime.session_factory, "after_commit", self._committed)
        sa_event.remove(self.runtime.session_factory, "after_rollback", self._rolled_back)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class LatencyResult:
    p50_ms: float
    p99_ms: float
    max_ms: float
    missing: int


def latency_result(
    ids: Iterable[str], sent: Mapping[str, float], arrived: Mapping[str, float]
) -> LatencyResult:
    wanted = list(ids)
    lat = [(arrived[i] - sent[i]) * 1000 for i in wanted if i in sent and i in arrived]
    return LatencyResult(
        percentile(lat, 50), percentile(lat, 99), max(lat, default=math.nan), len(wanted) - len(lat)
    )


def rate_from(first: float, arrived: list[float]) -> float:
    """Events per second from ``first`` to the last arrival."""
    return len(arrived) / (max(arrived) - first) if arrived else 0.0


def paced(count: int, rate: float) -> Iterator[int]:
    """Yield 0..count-1 at ``rate`` per second (sleeping until each slot)."""
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield i


def customer_payload(customer_id: str, n: int) -> dict[str, Any]:
    """A ``customer.created`` payload (contracts/events/customer.created.v1.json)."""
    return {
        "customer_id": customer_id,
        "kind": "individual",
        "name": f"Bench Customer {n:07d}",
        "org_unit": "/hq/branch-01/sub-03",
        "business_line": "personal",
        "status": "active",
        "segment": "stock",
    }


def envelope_size() -> int:
    """The bytes of a ``customer.created`` envelope as the relay sends it."""
    cid = str(uuid.uuid4())
    envelope = build_envelope(
        CUSTOMER_CREATED, customer_payload(cid, 1), source="customer", key=cid, actor="bench"
    )
    return len(envelope.model_dump_json().encode())


# -- processes -----------------------------------------------------------------------------------
def module_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a process of the suite started from this checkout."""
    return {**os.environ, "PYTHONPATH": str(REPO), "CRM_LOG_JSON": "false", **extra}


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL when it has not exited within ``timeout_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(log: IO[bytes] | None, chars: int = 3000) -> str:
    if log is None:
        return ""
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-chars:]


class RelayProcess:
    """The customer service's worker process, which runs its outbox relay.

    It serves its Prometheus metrics on a port of its own so that the bench can read how many
    rows it published again after the broker restart.
    """

    def __init__(self, kafka: KafkaSettings, database_url: str, verbose: bool) -> None:
        self.kafka = kafka
        self.database_url = database_url
        self.verbose = verbose
        self.metrics_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        if self.proc is not None:
            raise RuntimeError("the relay process is running already")
        self.metrics_port = free_port()
        # Closed by stop(): the log outlives this method.
        self.log = None if self.verbose else tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.customer.worker"],
            cwd=REPO,
            env=module_env(
                {
                    "CRM_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
                    "CRM_KAFKA_NAMESPACE": self.kafka.namespace,
                    "CRM_CUSTOMER_DATABASE_URL": self.database_url,
                    "CRM_CUSTOMER_RUN_MIGRATIONS_ON_START": "false",
                    "CRM_WORKER_METRICS_PORT": str(self.metrics_port),
                }
            ),
            stdin=subprocess.DEVNULL,
            stdout=self.log if self.log is not None else subprocess.DEVNULL,
            stderr=self.log if self.log is not None else None,
        )
        self.starts += 1

    def check(self) -> None:
        """Raise when the process has exited (with the end of its log)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"the relay process exited with status {self.proc.returncode}\n{_tail(self.log)}"
            )

    def republished(self) -> int | None:
        """The process's ``crm_outbox_republished_total``, or None when it cannot be read."""
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (
                    sample.name == "crm_outbox_republished_total"
                    and sample.labels.get("service") == "customer"
                ):
                    return int(sample.value)
        return 0

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None


# -- databases -----------------------------------------------------------------------------------
@contextlib.contextmanager
def temp_databases(backend: str, names: list[str]) -> Iterator[dict[str, str]]:
    """One temporary database per name: SQLite files (default) or PostgreSQL databases."""
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="crm-bench-")
        try:
            yield {n: f"sqlite:///{directory}/{n}.db" for n in names}
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    suffix = uuid.uuid4().hex[:10]
    created: dict[str, str] = {}
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            for n in names:
                db = f"crm_bench_{suffix}_{n}"
                conn.execute(f'CREATE DATABASE "{db}"')
                created[n] = db
        yield {n: PG_URL.format(name=db) for n, db in created.items()}
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            for db in created.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


# -- the bare baseline ---------------------------------------------------------------------------
class BareConsumer:
    """A kafka-python consumer on its own thread; notes when each id arrived and when the
    producing process sent it (the ``ts`` in the value)."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.arrivals = Arrivals()
        self.produced: dict[str, float] = {}
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._consumer: KafkaConsumer = make_consumer(
            kafka, "bench-bare", kafka.group_id("bench-bare")
        )
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, name="bench-bare-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                polled = self._consumer.poll(timeout_ms=1000, max_records=500)
                if self._consumer.assignment():
                    self.ready.set()
                ids: list[str] = []
                for messages in polled.values():
                    for m in messages:
                        value = json.loads(m.value)
                        self.produced.setdefault(value["id"], value["ts"])
                        ids.append(value["id"])
                if ids:
                    self.arrivals.mark(ids)
        finally:
            self._consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def produce_bare(
    kafka: KafkaSettings, topic: str, count: int, rate: float, size: int, tag: str
) -> list[str]:
    """Run the bare producer process to its end; return the ids it sent."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench._bare_producer",
            kafka.bootstrap_servers,
            topic,
            str(count),
            str(rate),
            str(size),
            "--tag",
            tag,
        ],
        cwd=REPO,
        env=module_env({}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        timeout = 60.0 + (count / rate if rate > 0 else count / 1000)
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc)
    if proc.returncode != 0:
        raise RuntimeError(
            f"the bare producer exited with status {proc.returncode}: "
            f"{out.decode(errors='replace')}\n{err.decode(errors='replace')[-3000:]}"
        )
    return [f"{tag}-{n}" for n in range(count)]


@dataclass
class BareResult:
    latency: LatencyResult
    throughput_eps: float
    throughput_missing: int


def run_bare(kafka: KafkaSettings, size: Size) -> BareResult:
    topic = kafka.topic("bench-bare")
    ensure_topics(kafka, [topic])
    value_size = envelope_size()
    consumer = BareConsumer(kafka, topic)
    try:
        if not consumer.ready.wait(60):
            raise RuntimeError("the bare consumer was not assigned partitions within 60 s")
        warm = produce_bare(kafka, topic, 20, 0, value_size, "warm")
        consumer.arrivals.wait_all(warm, 30)

        ids = produce_bare(
            kafka, topic, size.latency_events, size.latency_rate, value_size, "latency"
        )
        consumer.arrivals.wait_all(ids, 30)
        latency = latency_result(ids, consumer.produced, consumer.arrivals.at)

        ids = produce_bare(kafka, topic, size.throughput_events, 0, value_size, "throughput")
        consumer.arrivals.wait_all(ids, max(60.0, size.throughput_events / 200))
        arrived = [consumer.arrivals.at[i] for i in ids if i in consumer.arrivals.at]
        first = min((consumer.produced[i] for i in ids if i in consumer.produced), default=0.0)
        return BareResult(latency, rate_from(first, arrived), len(ids) - len(arrived))
    finally:
        consumer.stop()


# -- the service pair ----------------------------------------------------------------------------
@dataclass
class Pair:
    """The writer (customer runtime, no workers), the relay process and the assignment consumer."""

    customer: ServiceRuntime
    assignment: ServiceRuntime
    observer: AppliedObserver
    relay: RelayProcess
    counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_n(self) -> int:
        with self._lock:
            self.counter += 1
            return self.counter

    def write_one(self) -> tuple[str, float]:
        """One event in its own transaction; returns its customer id and commit time."""
        cid = str(uuid.uuid4())
        payload = customer_payload(cid, self.next_n())
        with self.customer.session_factory() as s, s.begin():
            self.customer.recorder.record(s, CUSTOMER_CREATED, payload, key=cid, actor="bench")
        return cid, time.time()

    def write_many(self, count: int) -> tuple[list[str], float]:
        """``count`` events in one transaction; returns their ids and the commit time."""
        ids = [str(uuid.uuid4()) for _ in range(count)]
        with self.customer.session_factory() as s, s.begin():
            for cid in ids:
                self.customer.recorder.record(
                    s,
                    CUSTOMER_CREATED,
                    customer_payload(cid, self.next_n()),
                    key=cid,
                    actor="bench",
                )
        return ids, time.time()

    def write_burst(self, count: int, txn_size: int) -> tuple[list[str], float, float]:
        """``count`` events as fast as the writer goes, ``txn_size`` per transaction.

        Returns the ids, the first commit time and the write rate (events per second).
        """
        ids: list[str] = []
        first_commit: float | None = None
        started = time.perf_counter()
        while len(ids) < count:
            batch, at = self.write_many(min(txn_size, count - len(ids)))
            ids.extend(batch)
            first_commit = first_commit or at
        assert first_commit is not None
        return ids, first_commit, len(ids) / (time.perf_counter() - started)

    def wait_applied(self, ids: Iterable[str], timeout_s: float) -> bool:
        """Wait until all ``ids`` are applied; raise when the relay process has exited."""
        pending = list(ids)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if self.observer.wait_all(pending, max(0.0, min(left, 1.0))):
                return True
            self.relay.check()
            if left <= 1.0:
                return False

    def present(self, ids: Iterable[str]) -> int:
        """How many of ``ids`` have a row in the assignment service's ``customer_refs``."""
        wanted = set(ids)
        with self.assignment.session_factory() as s:
            found = set(s.execute(select(customer_refs.c.customer_id)).scalars())
        return len(wanted & found)


@contextlib.contextmanager
def service_pair(kafka: KafkaSettings, urls: dict[str, str], verbose: bool) -> Iterator[Pair]:
    customer = build_customer(CustomerSettings(database_url=urls["customer"], kafka=kafka))
    assignment = build_assignment(AssignmentSettings(database_url=urls["assignment"], kafka=kafka))
    customer.migrate()
    assignment.migrate()
    observer = AppliedObserver(assignment)
    relay = RelayProcess(kafka, urls["customer"], verbose)
    try:
        assignment.start_workers()
        assert assignment.consumer is not None
        if not assignment.consumer.ready.wait(60):
            raise RuntimeError("the assignment consumer was not assigned partitions within 60 s")
        yield Pair(customer, assignment, observer, relay)
    finally:
        relay.stop()
        assignment.stop_workers()
        observer.remove()
        customer.engine.dispose()
        assignment.engine.dispose()


@dataclass
class PipelineResult:
    latency: LatencyResult
    throughput_eps: float
    throughput_missing: int
    write_eps: float
    relay_poll_interval_s: float


def start_relay(pair: Pair) -> None:
    """Start the relay process and wait until an event written now has been applied."""
    pair.relay.start()
    probe = pair.write_one()[0]
    if not pair.wait_applied([probe], 60):
        raise RuntimeError("no event went through the relay process within 60 s of its start")


def run_pipeline(pair: Pair, size: Size) -> PipelineResult:
    start_relay(pair)
    warm = [pair.write_one()[0] for _ in range(20)]
    pair.wait_applied(warm, 30)

    committed: dict[str, float] = {}
    for _ in paced(size.latency_events, size.latency_rate):
        cid, at = pair.write_one()
        committed[cid] = at
    pair.wait_applied(committed, 60)
    latency = latency_result(committed, committed, pair.observer.at)

    # Sustained: the relay runs while the writer writes as fast as it can.
    ids, first_commit, write_eps = pair.write_burst(
        size.throughput_events, size.throughput_txn_size
    )
    pair.wait_applied(ids, max(120.0, size.throughput_events / 100))
    arrived = [pair.observer.at[i] for i in ids if i in pair.observer.at]
    eps = rate_from(first_commit, arrived)
    # The relay process learns of new rows by polling (a commit wakes only a relay in the
    # committing process); it reads its settings from the same environment as this runtime.
    poll_s = pair.customer.settings.relay_poll_interval_s
    return PipelineResult(latency, eps, len(ids) - len(arrived), write_eps, poll_s)


@dataclass
class DrainResult:
    throughput_eps: float
    missing: int


def run_drain(pair: Pair, size: Size) -> DrainResult:
    """The outbox fills while no relay runs, then a relay process starts and publishes it all.

    Counted from the first consumer transaction that applied some of the events to the last (the
    events of that first transaction not counted), so that the start of the process is left out.
    """
    pair.relay.stop()
    ids, _, _ = pair.write_burst(size.throughput_events, size.throughput_txn_size)
    pair.relay.start()
    pair.wait_applied(ids, max(120.0, size.throughput_events / 100))
    arrived = sorted(pair.observer.at[i] for i in ids if i in pair.observer.at)
    eps = rate_from(arrived[0], [a for a in arrived if a > arrived[0]]) if arrived else 0.0
    return DrainResult(eps, len(ids) - len(arrived))


@dataclass
class RecoveryResult:
    recovery_s: float | None
    converged_s: float | None
    written: int
    written_during_outage: int
    present: int
    outage_s: float
    broker_stop_s: float
    republished: int | None
    duplicates: int

    @property
    def lost(self) -> int:
        return self.written - self.present


class PacedWriter:
    """Writes events through the outbox at a steady rate on its own thread."""

    def __init__(self, pair: Pair, rate: float) -> None:
        self.pair = pair
        self.rate = rate
        self.written: list[tuple[str, float]] = []
        self.errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        start = time.perf_counter()
        i = 0
        while not self._stop.is_set():
            delay = start + i / self.rate - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                break
            i += 1
            try:
                written = self.pair.write_one()
            except Exception:  # a failed write is not an event; keep the pace
                self.errors += 1
                continue
            with self._lock:
                self.written.append(written)

    def ids_after(self, t: float) -> list[str]:
        with self._lock:
            return [cid for cid, at in self.written if at >= t]

    def stop(self) -> list[tuple[str, float]]:
        self._stop.set()
        self._thread.join(10)
        with self._lock:
            return list(self.written)


def _counter(name: str, **labels: str) -> int:
    return int(REGISTRY.get_sample_value(name, labels) or 0)


def _duplicates() -> int:
    return _counter("crm_events_duplicate_total", service="assignment", consumer="assignment")


def run_recovery(pair: Pair, broker: EmbeddedBroker, size: Size) -> RecoveryResult:
    republished = pair.relay.republished()
    duplicates = _duplicates()
    writer = PacedWriter(pair, size.recovery_rate)
    writer.start()
    try:
        time.sleep(2.0)
        stopped_at = time.time()
        broker.stop()
        broker_stop_s = time.time() - stopped_at
        time.sleep(size.outage_s)
        broker.start()
        restarted_at = time.time()
        first = pair.observer.wait_any(
            lambda: writer.ids_after(restarted_at), size.recovery_timeout_s
        )
        recovery_s = None if first is None else first - restarted_at
        time.sleep(2.0)
    finally:
        written = writer.stop()
    ids = [cid for cid, _ in written]
    left = max(5.0, size.recovery_timeout_s - (time.time() - restarted_at))
    converged = pair.wait_applied(ids, left)
    converged_s = None
    if converged:
        converged_s = max(pair.observer.at[i] for i in ids) - restarted_at
    during = sum(1 for _, at in written if stopped_at <= at < restarted_at)
    republished_after = pair.relay.republished()
    return RecoveryResult(
        recovery_s,
        converged_s,
        len(ids),
        during,
        pair.present(ids),
        restarted_at - stopped_at,
        broker_stop_s,
        None
        if republished is None or republished_after is None
        else republished_after - republished,
        _duplicates() - duplicates,
    )


# -- report --------------------------------------------------------------------------------------
def _r(value: float | None, digits: int = 2) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, digits)


def _ratio(a: float, b: float) -> float | None:
    return None if not b or math.isnan(a) or math.isnan(b) else a / b


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(
    size: Size,
    backend: str,
    bare: BareResult,
    pipe: PipelineResult,
    drain: DrainResult,
    rec: RecoveryResult,
    elapsed_s: float,
) -> dict[str, Any]:
    p99_ratio = _ratio(pipe.latency.p99_ms, bare.latency.p99_ms)
    tp_ratio = _ratio(pipe.throughput_eps, bare.throughput_eps)
    drain_ratio = _ratio(drain.throughput_eps, bare.throughput_eps)
    republished = "?" if rec.republished is None else str(rec.republished)
    lines = [
        f"{NAME}: size {size.label}, databases {backend}, {elapsed_s:.1f} s; "
        f"{PROCESSES} (the bare producer too)",
        f"  bare kafka-python  latency p50 {bare.latency.p50_ms:7.2f} ms  "
        f"p99 {bare.latency.p99_ms:7.2f} ms  (n={size.latency_events} at "
        f"{size.latency_rate:.0f}/s, missing {bare.latency.missing})",
        f"  outbox pipeline    latency p50 {pipe.latency.p50_ms:7.2f} ms  "
        f"p99 {pipe.latency.p99_ms:7.2f} ms  max {pipe.latency.max_ms:.1f} ms  "
        f"(missing {pipe.latency.missing}; the relay polls every "
        f"{pipe.relay_poll_interval_s * 1000:.0f} ms)",
        f"  bare kafka-python  throughput {bare.throughput_eps:9.0f} events/s  "
        f"(n={size.throughput_events}, missing {bare.throughput_missing})",
        f"  outbox pipeline    throughput {pipe.throughput_eps:9.0f} events/s  "
        f"sustained: writer running (n={size.throughput_events} in transactions of "
        f"{size.throughput_txn_size}, outbox writes {pipe.write_eps:.0f}/s, "
        f"missing {pipe.throughput_missing})",
        f"  outbox pipeline    throughput {drain.throughput_eps:9.0f} events/s  "
        f"drain: outbox filled before the relay started (n={size.throughput_events}, "
        f"missing {drain.missing})",
    ]
    if p99_ratio is not None:
        lines.append(
            f"  p99 ratio to bare: {p99_ratio:.2f}x (goal <= 2x: {_verdict(p99_ratio <= 2)})"
        )
    if tp_ratio is not None:
        lines.append(
            f"  throughput ratio to bare: {tp_ratio:.2f}x sustained "
            f"(goal >= 0.5x: {_verdict(tp_ratio >= 0.5)})"
            + (f", {drain_ratio:.2f}x drain" if drain_ratio is not None else "")
        )
    if rec.recovery_s is None:
        lines.append(
            f"  recovery: no event written after the restart was applied within "
            f"{size.recovery_timeout_s:.0f} s (goal < 10 s: MISSED)"
        )
    else:
        lines.append(
            f"  recovery: {rec.recovery_s:.2f} s from broker restart to the first new event "
            f"applied (goal < 10 s: {_verdict(rec.recovery_s < 10)}); all applied after "
            + (f"{rec.converged_s:.2f} s" if rec.converged_s is not None else "never")
            + f"; {republished} events published again, {rec.duplicates} duplicates skipped"
        )
    lines.append(
        f"  events lost across the restart: {rec.lost} of {rec.written} "
        f"({rec.written_during_outage} written while the broker was away for "
        f"{rec.outage_s:.1f} s: {rec.broker_stop_s:.1f} s to stop, {size.outage_s:.0f} s down) "
        f"(goal 0: {_verdict(rec.lost == 0)})"
    )
    print("\n".join(lines))
    result = {
        "bench": NAME,
        "figures": {
            "latency_p50_ms": _r(pipe.latency.p50_ms, 3),
            "latency_p99_ms": _r(pipe.latency.p99_ms, 3),
            "latency_max_ms": _r(pipe.latency.max_ms, 3),
            "throughput_eps": _r(pipe.throughput_eps, 1),
            "drain_throughput_eps": _r(drain.throughput_eps, 1),
            "outbox_write_eps": _r(pipe.write_eps, 1),
            "p99_ratio_to_bare": _r(p99_ratio, 3),
            "throughput_ratio_to_bare": _r(tp_ratio, 3),
            "drain_throughput_ratio_to_bare": _r(drain_ratio, 3),
            "recovery_s": _r(rec.recovery_s, 3),
            "recovery_converged_s": _r(rec.converged_s, 3),
            "lost_events": rec.lost,
            "recovery_events": rec.written,
            "outage_s": _r(rec.outage_s, 2),
            "republished_events": rec.republished,
            "duplicates_skipped": rec.duplicates,
            "latency_events": size.latency_events,
            "throughput_events": size.throughput_events,
            "events": size.latency_events + 2 * size.throughput_events + rec.written,
            "missing_events": pipe.latency.missing + pipe.throughput_missing + drain.missing,
            "processes": PROCESSES,
            "relay_poll_interval_s": pipe.relay_poll_interval_s,
            "backend": backend,
            "size": size.label,
            "elapsed_s": _r(elapsed_s, 1),
        },
        "baseline": {
            "bare_latency_p50_ms": _r(bare.latency.p50_ms, 3),
            "bare_latency_p99_ms": _r(bare.latency.p99_ms, 3),
            "bare_throughput_eps": _r(bare.throughput_eps, 1),
        },
    }
    print(json.dumps(result, separators=(", ", ": ")))
    return result


def _quiet_logs(verbose: bool) -> None:
    """Outages make the clients log many errors; show them only when asked."""
    logging.basicConfig(
        level=logging.WARNING if verbose else logging.CRITICAL,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if not verbose:
        logging.getLogger().setLevel(logging.CRITICAL)


def run(full: bool = False, database: str = "sqlite", verbose: bool = False) -> dict[str, Any]:
    """Run the benchmark, print its figures and the JSON line; return the JSON object."""
    _quiet_logs(verbose)
    size = FULL if full else SMALL
    started = time.perf_counter()
    broker = EmbeddedBroker()
    broker.start()
    try:
        namespace = f"b{uuid.uuid4().hex[:10]}"
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, namespace=namespace)
        bare = run_bare(kafka, size)
        with (
            temp_databases(database, ["customer", "assignment"]) as urls,
            service_pair(kafka, urls, verbose) as pair,
        ):
            pipe = run_pipeline(pair, size)
            rec = run_recovery(pair, broker, size)
            drain = run_drain(pair, size)
    finally:
        broker.stop()
    return report(size, database, bare, pipe, drain, rec, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox_pipeline", description=__doc__)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    run(full=args.full, database=args.database, verbose=args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
