"""Outbox publish → consumer-applied latency and throughput through one service pair, next to a
bare kafka-python produce → consume on the same broker, and recovery from a broker restart.

The pair runs as the embedded deployment runs it. The producing side is the customer service
process (``python -m bench._pipeline_producer``): its runtime writes the events through its event
recorder, one transaction per use case as its API does, and runs its outbox relay on a thread of
the same process, which a commit there wakes at once. The bench process drives it over its stdin
and stdout. The consuming side is the assignment service's consumer, in the bench process,
applying ``customer.created`` into ``customer_refs``. An event counts as applied when the consumer
transaction that wrote its ``customer_refs`` row and inbox entry has committed. The bare baseline
is split the same way: a kafka-python producer process (``python -m bench._bare_producer``) and a
consumer in the bench process. Latencies cross processes, so they are wall-clock (``time.time()``)
differences on one machine: for the pipeline from the envelope's ``occurred_at`` (taken when the
event is recorded, just before the writer's commit) to the consumer's commit, for the bare
baseline from just before the send to the consumer's poll.

Bare and pipeline are measured in alternating rounds (latency, then throughput; bare first in even
rounds), so that a slow spell of the machine weighs on both alike.

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
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench._pipeline_producer import customer_payload
from crmkit.broker import EmbeddedBroker
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
PROCESSES = (
    "customer service process: writer + relay; assignment consumer in the bench process; "
    "bare producer in its own process"
)
LATENCY_START = "from the event's occurred_at, taken just before the writer's commit"
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
    # Bare and pipeline are measured in alternating rounds (each round: latency, then
    # throughput), so that a slow spell of the machine weighs on both alike.
    rounds: int


SMALL = Size("small", 2000, 200.0, 20_000, 1000, 100.0, 3.0, 60.0, 2)
FULL = Size("full", 5000, 200.0, 100_000, 1000, 100.0, 3.0, 60.0, 5)


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


class AppliedObserver(Arrivals):
    """Marks customer ids as applied when the assignment consumer's transaction commits.

    Wraps the assignment handler of ``customer.created`` so that it notes the customer ids and the
    envelopes' ``occurred_at`` on the session; an ``after_commit`` listener on the runtime's
    sessions marks the noted ids and keeps their ``occurred_at`` (``occurred``).
    """

    def __init__(self, runtime: ServiceRuntime) -> None:
        super().__init__()
        self.occurred: dict[str, float] = {}
        self._log: list[tuple[float, float]] = []  # (occurred_at, applied at) in applied order
        self.runtime = runtime
        self.original = runtime.registry.subscriptions[CUSTOMER_CREATED.type]
        original_many = self.original.many
        assert original_many is not None, "the customer copy is kept by a many-handler"

        def observed(session: Session, envelopes: list[Envelope]) -> None:
            original_many(session, envelopes)
            session.info.setdefault(_APPLIED_KEY, []).extend(
                (e.data["customer_id"], e.occurred_at.timestamp()) for e in envelopes
            )

        runtime.registry.subscriptions[CUSTOMER_CREATED.type] = Subscription(
            self.original.event_type, self.original.versions, many=observed
        )
        sa_event.listen(runtime.session_factory, "after_commit", self._committed)
        sa_event.listen(runtime.session_factory, "after_rollback", self._rolled_back)

    def _committed(self, session: Session) -> None:
        applied: list[tuple[str, float]] | None = session.info.pop(_APPLIED_KEY, None)
        if not applied:
            return
        now = time.time()
        with self._cond:
            for cid, occurred_at in applied:
                if cid not in self.at:
                    self.at[cid] = now
                    self.occurred[cid] = occurred_at
                    self._log.append((occurred_at, now))
            self._cond.notify_all()

    def first_applied_since(self, t: float, timeout_s: float) -> float | None:
        """When the first event that occurred at ``t`` or later was applied (None at timeout)."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._cond:
            while True:
                for occurred_at, applied_at in self._log[seen:]:
                    if occurred_at >= t:
                        return applied_at
                seen = len(self._log)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.1))

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


class CustomerProcess:
    """The customer service process (``python -m bench._pipeline_producer``): the writer and the
    outbox relay in one process, driven by JSON lines over its stdin and stdout."""

    def __init__(self, kafka: KafkaSettings, database_url: str, verbose: bool) -> None:
        self.kafka = kafka
        self.database_url = database_url
        self.verbose = verbose
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.hello: dict[str, Any] = {}
        self._answers: queue.Queue[bytes | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, timeout_s: float = 60.0) -> None:
        if self.proc is not None:
            raise RuntimeError("the customer process is running already")
        # Closed by stop(): the log outlives this method.
        self.log = None if self.verbose else tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench._pipeline_producer",
                "--database-url",
                self.database_url,
                "--bootstrap",
                self.kafka.bootstrap_servers,
                "--namespace",
                self.kafka.namespace,
                *(["--verbose"] if self.verbose else []),
            ],
            cwd=REPO,
            env=module_env({}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self._answers = queue.Queue()
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stdout, self._answers), daemon=True
        )
        self._reader.start()
        self.hello = self._answer("start", timeout_s)

    @staticmethod
    def _read(stream: IO[bytes], answers: queue.Queue[bytes | None]) -> None:
        for line in stream:
            answers.put(line)
        answers.put(None)

    def check(self) -> None:
        """Raise when the process has exited (with the end of its log)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"the customer process exited with status {self.proc.returncode}\n{_tail(self.log)}"
            )

    def _answer(self, what: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._answers.get(timeout=0.5)
            except queue.Empty:
                self.check()
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the customer process did not answer {what} within {timeout_s:.0f} s\n"
                        f"{_tail(self.log)}"
                    ) from None
                continue
            if line is None:
                if self.proc is not None:
                    self.proc.wait(5)
                self.check()
                raise RuntimeError(f"the customer process closed its output ({what})")
            answer: dict[str, Any] = json.loads(line)
            if "error" in answer:
                raise RuntimeError(f"the customer process failed {what}: {answer['error']}")
            return answer

    def request(self, command: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        with self._lock:
            if self.proc is None or self.proc.stdin is None:
                raise RuntimeError("the customer process is not running")
            self.check()
            self.proc.stdin.write(json.dumps(command).encode() + b"\n")
            self.proc.stdin.flush()
            return self._answer(str(command.get("cmd")), timeout_s)

    def republished(self) -> int | None:
        """The relay's ``crm_outbox_republished_total``, or None when it cannot be read."""
        try:
            return int(self.request({"cmd": "metrics"}, 10)["republished"])
        except (RuntimeError, KeyError, ValueError):
            return None

    def stop(self) -> None:
        """Ask the process to stop its workers and exit; end it when it does not."""
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(Exception):
                    self.request({"cmd": "exit"}, 20)
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            stop_process(self.proc)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
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
        # Assigned like the services' consumers (no group), with the same client settings.
        self._consumer: KafkaConsumer = make_consumer(kafka, "bench-bare", None)
        partitions = [TopicPartition(topic, p) for p in range(kafka.topic_partitions)]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)  # the topic is new: nothing to skip
        self._thread = threading.Thread(target=self._run, name="bench-bare-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                polled = self._consumer.poll(timeout_ms=500, max_records=500)
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


class BareSide:
    """The bare baseline: a kafka-python producer process per round, a consumer here."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.topic = kafka.topic("bench-bare")
        ensure_topics(kafka, [self.topic])
        self.value_size = envelope_size()
        self.consumer = BareConsumer(kafka, self.topic)
        if not self.consumer.ready.wait(60):
            raise RuntimeError("the bare consumer was not assigned partitions within 60 s")
        warm = produce_bare(kafka, self.topic, 20, 0, self.value_size, "warm")
        self.consumer.arrivals.wait_all(warm, 30)

    def latency_round(self, count: int, rate: float, tag: str) -> list[str]:
        ids = produce_bare(self.kafka, self.topic, count, rate, self.value_size, tag)
        self.consumer.arrivals.wait_all(ids, 30)
        return ids

    def throughput_round(self, count: int, tag: str) -> tuple[int, float, int]:
        """(events arrived, seconds from the first send to the last arrival, missing)."""
        ids = produce_bare(self.kafka, self.topic, count, 0, self.value_size, tag)
        self.consumer.arrivals.wait_all(ids, max(60.0, count / 200))
        arrived = [self.consumer.arrivals.at[i] for i in ids if i in self.consumer.arrivals.at]
        produced = self.consumer.produced
        first = min((produced[i] for i in ids if i in produced), default=0.0)
        span = max(arrived) - first if arrived else math.inf
        return len(arrived), span, len(ids) - len(arrived)

    def latency(self, ids: list[str]) -> LatencyResult:
        return latency_result(ids, self.consumer.produced, self.consumer.arrivals.at)

    def stop(self) -> None:
        self.consumer.stop()


# -- the service pair ----------------------------------------------------------------------------
@dataclass
class Pair:
    """The customer service process (writer and relay) and the assignment consumer."""

    assignment: ServiceRuntime
    observer: AppliedObserver
    customer: CustomerProcess

    @property
    def relay_poll_interval_s(self) -> float:
        return float(self.customer.hello.get("relay_poll_interval_s", math.nan))

    def write_paced(self, count: int, rate: float) -> list[tuple[str, float]]:
        """``count`` events, one per transaction, ``rate`` per second (0: as fast as it goes).

        Returns their ids and ``occurred_at``.
        """
        timeout = 60.0 + (count / rate if rate > 0 else count / 100)
        answer = self.customer.request({"cmd": "paced", "count": count, "rate": rate}, timeout)
        return [(cid, at) for cid, at in answer["written"]]

    def write_burst(self, count: int, txn_size: int) -> tuple[list[str], float, float]:
        """``count`` events as fast as the writer goes, ``txn_size`` per transaction.

        Returns the ids, the first commit time and the write rate (events per second).
        """
        answer = self.customer.request(
            {"cmd": "burst", "count": count, "txn": txn_size}, max(120.0, count / 100)
        )
        return list(answer["ids"]), float(answer["first_commit"]), float(answer["write_eps"])

    def wait_applied(self, ids: Iterable[str], timeout_s: float) -> bool:
        """Wait until all ``ids`` are applied; raise when the customer process has exited."""
        pending = list(ids)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if self.observer.wait_all(pending, max(0.0, min(left, 1.0))):
                return True
            self.customer.check()
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
    migrating = build_customer(CustomerSettings(database_url=urls["customer"], kafka=kafka))
    migrating.migrate()
    migrating.engine.dispose()
    assignment = build_assignment(AssignmentSettings(database_url=urls["assignment"], kafka=kafka))
    assignment.migrate()
    observer = AppliedObserver(assignment)
    customer = CustomerProcess(kafka, urls["customer"], verbose)
    try:
        assignment.start_workers()
        assert assignment.consumer is not None
        if not assignment.consumer.ready.wait(60):
            raise RuntimeError("the assignment consumer was not assigned partitions within 60 s")
        customer.start()
        yield Pair(assignment, observer, customer)
    finally:
        customer.stop()
        assignment.stop_workers()
        observer.remove()
        assignment.engine.dispose()


@dataclass
class PipelineResult:
    latency: LatencyResult
    throughput_eps: float
    throughput_missing: int
    write_eps: float
    relay_poll_interval_s: float


def start_relay(pair: Pair) -> None:
    """Start the relay in the customer process; wait until an event written now is applied."""
    pair.customer.request({"cmd": "start_relay"})
    probe = [cid for cid, _ in pair.write_paced(1, 0)]
    if not pair.wait_applied(probe, 60):
        raise RuntimeError("no event went through the relay within 60 s of its start")


def pipeline_latency_round(pair: Pair, count: int, rate: float) -> list[str]:
    ids = [cid for cid, _ in pair.write_paced(count, rate)]
    pair.wait_applied(ids, 60)
    return ids


def pipeline_throughput_round(
    pair: Pair, count: int, txn_size: int
) -> tuple[int, float, int, float]:
    """Sustained: the relay runs while the writer, in the same process, writes as fast as it
    can. (events applied, seconds from the first commit to the last applied, missing, seconds
    the writer took)."""
    ids, first_commit, write_eps = pair.write_burst(count, txn_size)
    pair.wait_applied(ids, max(120.0, count / 100))
    arrived = [pair.observer.at[i] for i in ids if i in pair.observer.at]
    span = max(arrived) - first_commit if arrived else math.inf
    return len(arrived), span, len(ids) - len(arrived), count / write_eps


def run_interleaved(
    kafka: KafkaSettings, pair: Pair, size: Size
) -> tuple[BareResult, PipelineResult]:
    """The bare baseline and the pipeline in alternating rounds, bare first in even rounds."""
    bare = BareSide(kafka)
    try:
        start_relay(pair)
        warm = [cid for cid, _ in pair.write_paced(20, 0)]
        pair.wait_applied(warm, 30)
        per_latency = size.latency_events // size.rounds
        per_throughput = size.throughput_events // size.rounds
        bare_ids: list[str] = []
        pipe_ids: list[str] = []
        bare_tp = [0, 0.0, 0]
        pipe_tp = [0, 0.0, 0, 0.0]

        def bare_round(r: int) -> None:
            bare_ids.extend(bare.latency_round(per_latency, size.latency_rate, f"latency{r}"))
            for k, v in enumerate(bare.throughput_round(per_throughput, f"throughput{r}")):
                bare_tp[k] += v

        def pipeline_round() -> None:
            pipe_ids.extend(pipeline_latency_round(pair, per_latency, size.latency_rate))
            got = pipeline_throughput_round(pair, per_throughput, size.throughput_txn_size)
            for k, v in enumerate(got):
                pipe_tp[k] += v

        for r in range(size.rounds):
            if r % 2 == 0:
                bare_round(r)
                pipeline_round()
            else:
                pipeline_round()
                bare_round(r)
        # Latencies of the pipeline: from the envelope's occurred_at (recorded just before the
        # writer's commit) to the consumer's commit.
        pipe_latency = latency_result(pipe_ids, pair.observer.occurred, pair.observer.at)
        return (
            BareResult(bare.latency(bare_ids), bare_tp[0] / bare_tp[1], int(bare_tp[2])),
            PipelineResult(
                pipe_latency,
                pipe_tp[0] / pipe_tp[1],
                int(pipe_tp[2]),
                size.throughput_events / pipe_tp[3],
                pair.relay_poll_interval_s,
            ),
        )
    finally:
        bare.stop()


@dataclass
class DrainResult:
    throughput_eps: float
    missing: int


def run_drain(pair: Pair, size: Size) -> DrainResult:
    """The outbox fills while the relay is stopped, then the relay starts and publishes it all.

    Counted from the first consumer transaction that applied some of the events to the last (the
    events of that first transaction not counted), so that the start of the relay is left out.
    """
    pair.customer.request({"cmd": "stop_relay"})
    ids, _, _ = pair.write_burst(size.throughput_events, size.throughput_txn_size)
    pair.customer.request({"cmd": "start_relay"})
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
    write_errors: int
    present: int
    outage_s: float
    broker_stop_s: float
    republished: int | None
    duplicates: int

    @property
    def lost(self) -> int:
        return self.written - self.present


def _counter(name: str, **labels: str) -> int:
    return int(REGISTRY.get_sample_value(name, labels) or 0)


def _duplicates() -> int:
    return _counter("crm_events_duplicate_total", service="assignment", consumer="assignment")


def run_recovery(pair: Pair, broker: EmbeddedBroker, size: Size) -> RecoveryResult:
    """The customer process writes at a steady rate while the broker stops and starts again."""
    republished = pair.customer.republished()
    duplicates = _duplicates()
    # On an error the customer process's exit (the pair's teardown) stops its writer.
    pair.customer.request({"cmd": "paced_start", "rate": size.recovery_rate})
    time.sleep(2.0)
    stopped_at = time.time()
    broker.stop()
    broker_stop_s = time.time() - stopped_at
    time.sleep(size.outage_s)
    broker.start()
    restarted_at = time.time()
    first = pair.observer.first_applied_since(restarted_at, size.recovery_timeout_s)
    recovery_s = None if first is None else first - restarted_at
    time.sleep(2.0)
    answer = pair.customer.request({"cmd": "paced_stop"})
    written = [(cid, at) for cid, at in answer["written"]]
    ids = [cid for cid, _ in written]
    left = max(5.0, size.recovery_timeout_s - (time.time() - restarted_at))
    converged = pair.wait_applied(ids, left)
    converged_s = None
    if converged:
        converged_s = max(pair.observer.at[i] for i in ids) - restarted_at
    during = sum(1 for _, at in written if stopped_at <= at < restarted_at)
    republished_after = pair.customer.republished()
    return RecoveryResult(
        recovery_s,
        converged_s,
        len(ids),
        during,
        int(answer["errors"]),
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
        f"{NAME}: size {size.label}, databases {backend}, {elapsed_s:.1f} s; {PROCESSES}; "
        f"bare and pipeline measured in {size.rounds} alternating rounds",
        f"  bare kafka-python  latency p50 {bare.latency.p50_ms:7.2f} ms  "
        f"p99 {bare.latency.p99_ms:7.2f} ms  (n={size.latency_events} at "
        f"{size.latency_rate:.0f}/s, missing {bare.latency.missing})",
        f"  outbox pipeline    latency p50 {pipe.latency.p50_ms:7.2f} ms  "
        f"p99 {pipe.latency.p99_ms:7.2f} ms  max {pipe.latency.max_ms:.1f} ms  "
        f"(missing {pipe.latency.missing}; {LATENCY_START}, to the consumer's commit; the "
        f"writer's commits wake the relay, which otherwise polls every "
        f"{pipe.relay_poll_interval_s * 1000:.0f} ms)",
        f"  bare kafka-python  throughput {bare.throughput_eps:9.0f} events/s  "
        f"(n={size.throughput_events}, missing {bare.throughput_missing})",
        f"  outbox pipeline    throughput {pipe.throughput_eps:9.0f} events/s  "
        f"sustained: writer running in the customer process, first commit to last "
        f"applied (n={size.throughput_events} in transactions of "
        f"{size.throughput_txn_size}, outbox writes {pipe.write_eps:.0f}/s, "
        f"missing {pipe.throughput_missing})",
        f"  outbox pipeline    throughput {drain.throughput_eps:9.0f} events/s  "
        f"drain: relay and consumer alone, outbox filled before the relay started "
        f"(n={size.throughput_events}, "
        f"missing {drain.missing})",
    ]
    if p99_ratio is not None:
        lines.append(
            f"  p99 ratio to bare: {p99_ratio:.2f}x (goal <= 2x: {_verdict(p99_ratio <= 2)})"
        )
    for label, ratio in (("sustained", tp_ratio), ("drain", drain_ratio)):
        if ratio is not None:
            lines.append(
                f"  throughput ratio to bare, {label + ':':10} {ratio:.2f}x "
                f"(goal >= 0.5x: {_verdict(ratio >= 0.5)})"
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
        f"{rec.outage_s:.1f} s: {rec.broker_stop_s:.1f} s to stop, {size.outage_s:.0f} s down; "
        f"{rec.write_errors} failed writes) (goal 0: {_verdict(rec.lost == 0)})"
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
            "recovery_write_errors": rec.write_errors,
            "outage_s": _r(rec.outage_s, 2),
            "republished_events": rec.republished,
            "duplicates_skipped": rec.duplicates,
            "latency_events": size.latency_events,
            "throughput_events": size.throughput_events,
            "rounds": size.rounds,
            "events": size.latency_events + 2 * size.throughput_events + rec.written,
            "missing_events": pipe.latency.missing + pipe.throughput_missing + drain.missing,
            "processes": PROCESSES,
            "latency_start": LATENCY_START,
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
        with (
            temp_databases(database, ["customer", "assignment"]) as urls,
            service_pair(kafka, urls, verbose) as pair,
        ):
            bare, pipe = run_interleaved(kafka, pair, size)
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
