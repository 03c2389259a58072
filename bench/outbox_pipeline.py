"""Outbox publish → consumer-applied latency and throughput through one service pair, next to a
bare kafka-python produce → consume on the same broker, and recovery from a broker restart.

The pair is the real customer service (its outbox relay publishes) and the real assignment
service (its consumer applies ``customer.created`` into ``customer_refs``), both on temporary
databases and one embedded broker. An event counts as applied when the consumer transaction that
wrote its ``customer_refs`` row and inbox entry has committed.

Goals (from the issue): pipeline p99 latency at most 2x the bare figure, throughput at least half
of it; after a broker restart, events flow again within 10 s and none is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.broker import EmbeddedBroker
from crmkit.consumer import Subscription
from crmkit.events import Envelope
from crmkit.kafka import ensure_topics, make_consumer, make_producer
from crmkit.runtime import ServiceRuntime
from crmkit.settings import KafkaSettings
from services.assignment.app import build_runtime as build_assignment
from services.assignment.models import customer_refs
from services.assignment.settings import AssignmentSettings
from services.customer.app import build_runtime as build_customer
from services.customer.events import CUSTOMER_CREATED
from services.customer.settings import CustomerSettings

NAME = "outbox_pipeline"
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
    """When each id was first seen at the receiving end (perf_counter seconds)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._cond = threading.Condition()

    def mark(self, ids: Iterable[str]) -> None:
        now = time.perf_counter()
        with self._cond:
            for i in ids:
                self.at.setdefault(i, now)
            self._cond.notify_all()

    def wait_all(self, ids: Iterable[str], timeout_s: float) -> bool:
        wanted = list(ids)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if all(i in self.at for i in wanted):
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


def latency_result(sent: dict[str, float], arrivals: Arrivals) -> LatencyResult:
    lat = [(arrivals.at[i] - t) * 1000 for i, t in sent.items() if i in arrivals.at]
    return LatencyResult(
        percentile(lat, 50), percentile(lat, 99), max(lat, default=math.nan), len(sent) - len(lat)
    )


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


def bare_value(customer_id: str, n: int) -> bytes:
    """A JSON envelope of the size the relay sends."""
    envelope = {
        "id": customer_id,
        "type": "customer.created",
        "version": 1,
        "source": "bench",
        "occurred_at": "2025-01-01T00:00:00.000000Z",
        "key": customer_id,
        "correlation_id": customer_id,
        "causation_id": None,
        "actor": "bench",
        "data": customer_payload(customer_id, n),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


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
    """A kafka-python consumer on its own thread that marks the ids of what it receives."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.arrivals = Arrivals()
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
                for messages in polled.values():
                    self.arrivals.mark(json.loads(m.value)["id"] for m in messages)
        finally:
            self._consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@dataclass
class BareResult:
    latency: LatencyResult
    throughput_eps: float
    throughput_missing: int


def run_bare(kafka: KafkaSettings, size: Size) -> BareResult:
    topic = kafka.topic("bench-bare")
    ensure_topics(kafka, [topic])
    consumer = BareConsumer(kafka, topic)
    producer: KafkaProducer = make_producer(kafka, "bench-bare")
    try:
        if not consumer.ready.wait(60):
            raise RuntimeError("the bare consumer was not assigned partitions within 60 s")
        warm = [str(uuid.uuid4()) for _ in range(20)]
        for n, i in enumerate(warm):
            producer.send(topic, key=i, value=bare_value(i, n))
        consumer.arrivals.wait_all(warm, 30)

        sent: dict[str, float] = {}
        for n in paced(size.latency_events, size.latency_rate):
            i = str(uuid.uuid4())
            value = bare_value(i, n)
            sent[i] = time.perf_counter()
            producer.send(topic, key=i, value=value)
        consumer.arrivals.wait_all(sent, 30)
        latency = latency_result(sent, consumer.arrivals)

        ids = [str(uuid.uuid4()) for _ in range(size.throughput_events)]
        start = time.perf_counter()
        for n, i in enumerate(ids):
            producer.send(topic, key=i, value=bare_value(i, n))
        producer.flush()
        consumer.arrivals.wait_all(ids, max(60.0, size.throughput_events / 200))
        arrived = [consumer.arrivals.at[i] for i in ids if i in consumer.arrivals.at]
        eps = len(arrived) / (max(arrived) - start) if arrived else 0.0
        return BareResult(latency, eps, len(ids) - len(arrived))
    finally:
        producer.close(timeout=5)
        consumer.stop()


# -- the service pair ----------------------------------------------------------------------------
@dataclass
class Pair:
    customer: ServiceRuntime
    assignment: ServiceRuntime
    observer: AppliedObserver
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
        return cid, time.perf_counter()

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
        return ids, time.perf_counter()

    def present(self, ids: Iterable[str]) -> int:
        """How many of ``ids`` have a row in the assignment service's ``customer_refs``."""
        wanted = set(ids)
        with self.assignment.session_factory() as s:
            found = set(s.execute(select(customer_refs.c.customer_id)).scalars())
        return len(wanted & found)


@contextlib.contextmanager
def service_pair(kafka: KafkaSettings, urls: dict[str, str]) -> Iterator[Pair]:
    customer = build_customer(CustomerSettings(database_url=urls["customer"], kafka=kafka))
    assignment = build_assignment(AssignmentSettings(database_url=urls["assignment"], kafka=kafka))
    customer.migrate()
    assignment.migrate()
    observer = AppliedObserver(assignment)
    try:
        assignment.start_workers()
        customer.start_workers()
        assert assignment.consumer is not None
        if not assignment.consumer.ready.wait(60):
            raise RuntimeError("the assignment consumer was not assigned partitions within 60 s")
        yield Pair(customer, assignment, observer)
    finally:
        customer.stop_workers()
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


def run_pipeline(pair: Pair, size: Size) -> PipelineResult:
    warm = [pair.write_one()[0] for _ in range(20)]
    pair.observer.wait_all(warm, 30)

    committed: dict[str, float] = {}
    for _ in paced(size.latency_events, size.latency_rate):
        cid, at = pair.write_one()
        committed[cid] = at
    pair.observer.wait_all(committed, 60)
    latency = latency_result(committed, pair.observer)

    ids: list[str] = []
    first_commit: float | None = None
    write_start = time.perf_counter()
    left = size.throughput_events
    while left > 0:
        batch, at = pair.write_many(min(size.throughput_txn_size, left))
        ids.extend(batch)
        left -= len(batch)
        first_commit = first_commit or at
    write_s = time.perf_counter() - write_start
    assert first_commit is not None
    pair.observer.wait_all(ids, max(120.0, size.throughput_events / 100))
    arrived = [pair.observer.at[i] for i in ids if i in pair.observer.at]
    eps = len(arrived) / (max(arrived) - first_commit) if arrived else 0.0
    return PipelineResult(latency, eps, len(ids) - len(arrived), len(ids) / write_s)


@dataclass
class RecoveryResult:
    recovery_s: float | None
    converged_s: float | None
    written: int
    written_during_outage: int
    present: int
    outage_s: float
    broker_stop_s: float
    republished: int
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


def run_recovery(pair: Pair, broker: EmbeddedBroker, size: Size) -> RecoveryResult:
    republished = _counter("crm_outbox_republished_total", service="customer")
    duplicates = _counter("crm_events_duplicate_total", service="assignment", consumer="assignment")
    writer = PacedWriter(pair, size.recovery_rate)
    writer.start()
    try:
        time.sleep(2.0)
        stopped_at = time.perf_counter()
        broker.stop()
        broker_stop_s = time.perf_counter() - stopped_at
        time.sleep(size.outage_s)
        broker.start()
        restarted_at = time.perf_counter()
        first = pair.observer.wait_any(
            lambda: writer.ids_after(restarted_at), size.recovery_timeout_s
        )
        recovery_s = None if first is None else first - restarted_at
        time.sleep(2.0)
    finally:
        written = writer.stop()
    ids = [cid for cid, _ in written]
    left = max(5.0, size.recovery_timeout_s - (time.perf_counter() - restarted_at))
    converged = pair.observer.wait_all(ids, left)
    converged_s = None
    if converged:
        converged_s = max(pair.observer.at[i] for i in ids) - restarted_at
    during = sum(1 for _, at in written if stopped_at <= at < restarted_at)
    return RecoveryResult(
        recovery_s,
        converged_s,
        len(ids),
        during,
        pair.present(ids),
        restarted_at - stopped_at,
        broker_stop_s,
        _counter("crm_outbox_republished_total", service="customer") - republished,
        _counter("crm_events_duplicate_total", service="assignment", consumer="assignment")
        - duplicates,
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
    rec: RecoveryResult,
    elapsed_s: float,
) -> dict[str, Any]:
    p99_ratio = _ratio(pipe.latency.p99_ms, bare.latency.p99_ms)
    tp_ratio = _ratio(pipe.throughput_eps, bare.throughput_eps)
    lines = [
        f"{NAME}: size {size.label}, databases {backend}, {elapsed_s:.1f} s",
        f"  bare kafka-python  latency p50 {bare.latency.p50_ms:7.2f} ms  "
        f"p99 {bare.latency.p99_ms:7.2f} ms  (n={size.latency_events} at "
        f"{size.latency_rate:.0f}/s, missing {bare.latency.missing})",
        f"  outbox pipeline    latency p50 {pipe.latency.p50_ms:7.2f} ms  "
        f"p99 {pipe.latency.p99_ms:7.2f} ms  max {pipe.latency.max_ms:.1f} ms  "
        f"(missing {pipe.latency.missing})",
        f"  bare kafka-python  throughput {bare.throughput_eps:9.0f} events/s  "
        f"(n={size.throughput_events}, missing {bare.throughput_missing})",
        f"  outbox pipeline    throughput {pipe.throughput_eps:9.0f} events/s  "
        f"(n={size.throughput_events} in transactions of {size.throughput_txn_size}, outbox "
        f"writes {pipe.write_eps:.0f}/s, missing {pipe.throughput_missing})",
    ]
    if p99_ratio is not None:
        lines.append(
            f"  p99 ratio to bare: {p99_ratio:.2f}x (goal <= 2x: {_verdict(p99_ratio <= 2)})"
        )
    if tp_ratio is not None:
        lines.append(
            f"  throughput ratio to bare: {tp_ratio:.2f}x "
            f"(goal >= 0.5x: {_verdict(tp_ratio >= 0.5)})"
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
            + f"; {rec.republished} events published again, {rec.duplicates} duplicates skipped"
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
            "outbox_write_eps": _r(pipe.write_eps, 1),
            "p99_ratio_to_bare": _r(p99_ratio, 3),
            "throughput_ratio_to_bare": _r(tp_ratio, 3),
            "recovery_s": _r(rec.recovery_s, 3),
            "recovery_converged_s": _r(rec.converged_s, 3),
            "lost_events": rec.lost,
            "recovery_events": rec.written,
            "outage_s": _r(rec.outage_s, 2),
            "republished_events": rec.republished,
            "duplicates_skipped": rec.duplicates,
            "latency_events": size.latency_events,
            "throughput_events": size.throughput_events,
            "events": size.latency_events + size.throughput_events + rec.written,
            "missing_events": pipe.latency.missing + pipe.throughput_missing,
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
            service_pair(kafka, urls) as pair,
        ):
            pipe = run_pipeline(pair, size)
            rec = run_recovery(pair, broker, size)
    finally:
        broker.stop()
    return report(size, database, bare, pipe, rec, time.perf_counter() - started)


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
