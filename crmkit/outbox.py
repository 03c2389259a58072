"""Transactional outbox: events are rows written in the transaction of the state change, and a
relay publishes them to Kafka afterwards.

The relay marks a row published only when the broker acknowledged it (acks=all), keeps going
across broker outages (rows wait, then flow in order), and when it finds its topics recreated —
the embedded broker keeps data in memory and comes back empty — it publishes the recent tail
again. Consumers dedupe by event id, so a second copy is harmless.
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import psycopg
from kafka import KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmkit import metrics
from crmkit.db import KitTables, utcnow
from crmkit.events import Envelope, EventSpec, build_envelope, envelope_json
from crmkit.heap import gc_paused
from crmkit.kafka import ConnectionCounter, TopicAdmin, make_producer
from crmkit.leader import LeaderLock
from crmkit.settings import KafkaSettings, ServiceSettings

log = logging.getLogger(__name__)

_OUTBOX_FLAG = "crm_outbox_written"
_PENDING = "crm_outbox_pending"
_PENDING_TABLE = "crm_outbox_table"
# PostgreSQL: a transaction that wrote outbox rows notifies this channel at commit, so a relay
# in another process (the production worker) wakes at once instead of at its next poll.
OUTBOX_CHANNEL = "crm_outbox"
_wakeups: dict[str, threading.Event] = {}
# Producer batching of the relay (see ``OutboxRelay._batching``).
_FLUSH_ONLY_LINGER_MS = 60_000
_BATCH_HEADROOM = 64 * 1024
_DEFAULT_MAX_REQUEST = 1024 * 1024
_RECORD_OVERHEAD = 64  # a record's framing in a v2 batch, generously
_wakeups_lock = threading.Lock()
# Rows from which ``insert_rows`` copies instead of inserting (bulk imports, not a request).
_COPY_MIN_ROWS = 50


def relay_wakeup(database_url: str) -> threading.Event:
    """The event a relay waits on; set after a commit that wrote outbox rows to that database."""
    with _wakeups_lock:
        return _wakeups.setdefault(database_url, threading.Event())


@sa_event.listens_for(Session, "after_commit")
def _wake_relay(session: Session) -> None:
    if session.info.pop(_OUTBOX_FLAG, False) and session.bind is not None:
        relay_wakeup(str(session.bind.engine.url)).set()


@sa_event.listens_for(Session, "after_rollback")
def _forget_outbox_rows(session: Session) -> None:
    for key in (_OUTBOX_FLAG, _PENDING, _PENDING_TABLE):
        session.info.pop(key, None)


def write_outbox_row(
    session: Session,
    tables: KitTables,
    topic: str,
    key: str | None,
    event_id: str,
    event_type: str,
    payload: str,
) -> None:
    """Add a row to the outbox in the session's transaction (``payload``: the JSON to send).

    Rows are collected and inserted together just before the transaction commits: one
    statement for all the events of a use case instead of a round trip each.
    """
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    pending.append(
        {
            "event_id": event_id,
            "topic": topic,
            "key": key,
            "event_type": event_type,
            "envelope": payload,
            "created_at": utcnow(),
            "attempts": 0,
        }
    )
    session.info[_PENDING_TABLE] = tables.outbox


@sa_event.listens_for(Session, "before_commit")
def _insert_outbox_rows(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    table = session.info.pop(_PENDING_TABLE, None)
    if not rows or table is None:
        return
    insert_rows(session, table, rows)
    session.info[_OUTBOX_FLAG] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX_CHANNEL})


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert plain rows of one shape: many on PostgreSQL by ``COPY``, else by executemany.

    psycopg sends an executemany as one pipelined statement per row; ``COPY`` streams the rows
    in one command. The values go through the columns' bind processing first, as they would in
    an insert; a unique violation is raised as SQLAlchemy's ``IntegrityError``, as an insert's
    is, so that a chunk that lost a race is done again.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    # A few rows (the events of one request) go faster as a plain insert.
    if dialect.name != "postgresql" or len(rows) < _COPY_MIN_ROWS:
        session.execute(insert(table), rows)
        return
    names = list(rows[0])
    # Only the columns whose type converts values (JSON, money, times) are processed.
    processed = [
        (position, process)
        for position, name in enumerate(names)
        if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    values_of = operator.itemgetter(*names)
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)  # the only PostgreSQL driver of the suite
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.quote(name) for name in names)  # every row has these keys
    statement = f"COPY {quote.format_table(table)} ({columns}) FROM STDIN"
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            write = copy.write_row
            for row in rows:
                values = list(values_of(row)) if len(names) > 1 else [row[names[0]]]
                for position, process in processed:
                    value = values[position]
                    if value is not None:
                        values[position] = process(value)
                write(values)
    except psycopg.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from exc


RECORDER_KEY = "crm.recorder"


def recorder_of(session: Session) -> EventRecorder:
    """The event recorder of the runtime that opened ``session`` (set on its session factory):
    event handlers record the events their effects cause in the consumer's transaction."""
    recorder = session.info.get(RECORDER_KEY)
    if not isinstance(recorder, EventRecorder):
        raise RuntimeError("this session was not opened by a service runtime's session factory")
    return recorder


@dataclass(frozen=True)
class EventRecorder:
    """Records a service's events into its outbox (bound to the service's name and tables)."""

    source: str
    tables: KitTables
    kafka: KafkaSettings

    def record(
        self,
        session: Session,
        spec: EventSpec,
        data: dict[str, Any],
        *,
        key: str | None,
        actor: str | None,
    ) -> Envelope:
        """Validate the payload against its schema and write the event in this transaction."""
        envelope = build_envelope(spec, data, source=self.source, key=key, actor=actor)
        self.write(session, self.prepared(spec, envelope))
        return envelope

    def prepare(
        self, spec: EventSpec, data: dict[str, Any], *, key: str | None, actor: str | None
    ) -> PreparedEvent:
        """An event validated and serialized ahead of its transaction (pure: no session), for
        work that builds many events apart from writing them (a bulk import's worker
        processes); :meth:`write` puts it in the outbox."""
        event_id, payload = envelope_json(spec, data, source=self.source, key=key, actor=actor)
        return PreparedEvent(self.kafka.topic(spec.stream), key, event_id, spec.type, payload)

    def prepared(self, spec: EventSpec, envelope: Envelope) -> PreparedEvent:
        return PreparedEvent(
            self.kafka.topic(spec.stream),
            envelope.key,
            str(envelope.id),
            spec.type,
            envelope.model_dump_json(),
        )

    def write(self, session: Session, event: PreparedEvent) -> None:
        """Write a prepared event in the session's transaction."""
        write_outbox_row(session, self.tables, *event)


class PreparedEvent(NamedTuple):
    """An event as its outbox row holds it."""

    topic: str
    key: str | None
    event_id: str
    event_type: str
    payload: str


class _CommitWaiter:
    """Waits for a commit that wrote outbox rows, or the poll interval, whichever comes first.

    In-process commits set a threading event. On PostgreSQL the relay also listens for the
    commit-time notification, which reaches it from any process.
    """

    def __init__(self, engine: Engine, local: threading.Event) -> None:
        self.local = local
        self._pg_url = (
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            if engine.dialect.name == "postgresql"
            else None
        )
        self._listener: psycopg.Connection[Any] | None = None

    def clear(self) -> None:
        self.local.clear()

    def wait(self, timeout_s: float) -> None:
        if self._pg_url is None:
            self.local.wait(timeout_s)
            return
        try:
            listener = self._listen()
            for _ in listener.notifies(timeout=timeout_s, stop_after=1):
                pass
            for _ in listener.notifies(timeout=0.0):
                pass  # one wake-up stands for every commit that came meanwhile
        except psycopg.Error:
            self.close()
            self.local.wait(timeout_s)

    def _listen(self) -> psycopg.Connection[Any]:
        if self._listener is None:
            assert self._pg_url is not None
            self._listener = psycopg.connect(self._pg_url, autocommit=True)
            self._listener.execute(f"LISTEN {OUTBOX_CHANNEL}")
        return self._listener

    def close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except psycopg.Error:
                log.debug("closing the outbox listener failed", exc_info=True)
            self._listener = None


@dataclass
class RelayStats:
    published: int = 0
    republished_tails: int = 0
    errors: int = 0
    last_error: str | None = None
    topic_ids: dict[str, str] = field(default_factory=dict)


class OutboxRelay:
    """Publishes a service's outbox to Kafka; run one per service (a lock elects the leader)."""

    def __init__(
        self,
        service: str,
        engine: Engine,
        tables: KitTables,
        settings: ServiceSettings,
        topics: Iterable[str],
    ) -> None:
        self.service = service
        self.engine = engine
        self.tables = tables
        self.settings = settings
        self.kafka: KafkaSettings = settings.kafka
        self.topics = sorted(set(topics))
        self.wakeup = relay_wakeup(str(engine.url))
        self._commits = _CommitWaiter(engine, self.wakeup)
        self.stats = RelayStats()
        self._producer: KafkaProducer | None = None
        self._connections: ConnectionCounter | None = None
        self._admin = TopicAdmin(self.kafka, f"{service}-relay-admin")
        self._leader = LeaderLock.for_engine(engine, f"outbox-relay:{service}")
        self._next_epoch_check = 0.0
        self._next_backlog_report = 0.0
        self._next_housekeeping = 0.0
        self._epoch_check_needed = True
        self._more_waiting = False
        # When each topic was last confirmed to be the one the relay knows (its id unchanged).
        self._verified_at: dict[str, datetime] = {}

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; never raises."""
        backoff = 0.2
        while not stop.is_set():
            try:
                if not self._leader.acquire():
                    stop.wait(2.0)
                    continue
                self._ensure_producer()
                self._check_broker_epoch()
                # Cleared before reading: a commit from now on wakes the wait below.
                self._commits.clear()
                self.publish_batch()
                self._report_backlog()
                self._housekeeping()
                backoff = 0.2
                # A short batch emptied the backlog: wait for the next commit instead of asking
                # the database again (a commit during the batch has already set the wake-up).
                if not self._more_waiting and not stop.is_set():
                    self._commits.wait(self.settings.relay_poll_interval_s)
            except Exception as exc:  # the loop must survive broker and database outages
                self._on_error(exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
        self.close()

    def close(self) -> None:
        self._close_producer(timeout_s=2)
        self._admin.close()
        self._commits.close()
        self._leader.release()

    def _close_producer(self, timeout_s: float) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=timeout_s)
            except Exception:  # closing a producer whose broker is gone may fail; nothing to keep
                log.debug("producer close failed", exc_info=True)
            self._producer = None

    def _on_error(self, exc: Exception) -> None:
        self.stats.errors += 1
        self.stats.last_error = repr(exc)
        self._epoch_check_needed = True
        metrics.OUTBOX_RELAY_ERRORS.labels(self.service).inc()
        log.warning("outbox relay error: %r", exc)
        if isinstance(exc, KafkaError):
            # A producer that saw the broker go away is rebuilt: fatal states do not heal.
            self._close_producer(timeout_s=0)
            self._admin.close()

    def _ensure_producer(self) -> None:
        if self._producer is None:
            self._admin.ensure(self.topics)
            self._producer = make_producer(self.kafka, f"{self.service}-relay", **self._batching())
            self._connections = ConnectionCounter(self._producer)
            self._epoch_check_needed = True

    # -- publishing -------------------------------------------------------------------------
    def _batching(self) -> dict[str, int]:
        """Producer settings that send a relay batch as at most one producer batch per partition.

        With one request in flight per connection, kafka-python keeps the batches of a partition
        in order, but when the broker refuses one of them with an error it does not retry, it
        still sends the next. Were a relay batch split into several producer batches per
        partition, a refused first part would let the second part — later events of the same
        keys — reach the topic before the re-sent first part. So records wait in the producer
        until the relay flushes (a long linger) and a producer batch holds a whole relay batch.
        """
        batch_bytes = self.settings.relay_batch_max_bytes + _BATCH_HEADROOM
        return {
            "linger_ms": _FLUSH_ONLY_LINGER_MS,
            "batch_size": batch_bytes,
            "max_request_size": max(_DEFAULT_MAX_REQUEST, batch_bytes + _BATCH_HEADROOM),
        }

    def publish_batch(self) -> int:
        """Send the oldest unpublished rows; mark the acknowledged prefix. Returns rows marked."""
        with gc_paused():  # a batch's rows, records and futures all live until it ends
            return self._publish_batch()

    def _publish_batch(self) -> int:
        outbox = self.tables.outbox
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.seq, outbox.c.topic, outbox.c.key, outbox.c.envelope)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.seq)
                .limit(self.settings.relay_batch_size)
            ).all()
        self._more_waiting = len(rows) == self.settings.relay_batch_size
        if not rows:
            return 0
        assert self._producer is not None
        futures: list[Any] = []
        size = 0
        for row in rows:
            value = row.envelope.encode()
            size += len(value) + len(row.key or "") + _RECORD_OVERHEAD
            if futures and size > self.settings.relay_batch_max_bytes:
                rows = rows[: len(futures)]  # the rest goes in the next batch, at once
                self._more_waiting = True
                break
            futures.append(self._producer.send(row.topic, key=row.key, value=value))
        self._producer.flush(timeout=self.kafka.request_timeout_ms / 1000)
        acked: list[int] = []
        failure: Exception | None = None
        for row, future in zip(rows, futures, strict=True):
            try:
                future.get(timeout=0.5)
            except Exception as exc:  # stop at the first unacknowledged row: order per key
                failure = exc
                break
            acked.append(row.seq)
        with self.engine.begin() as conn:
            if acked:
                conn.execute(
                    update(outbox).where(outbox.c.seq.in_(acked)).values(published_at=utcnow())
                )
            if failure is not None:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.seq == rows[len(acked)].seq)
                    .values(attempts=outbox.c.attempts + 1, last_error=repr(failure)[:2000])
                )
        self.stats.published += len(acked)
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(acked))
        if failure is not None:
            raise failure
        return len(acked)

    # -- broker restarts --------------------------------------------------------------------
    def _check_broker_epoch(self) -> None:
        """Detect topics that were recreated (a broker that came back empty) and re-queue the tail.

        A topic's id changes when it is created anew; the id last seen is kept in the service's
        database, so a relay that was down while the broker restarted notices it too.
        """
        now = time.monotonic()
        if self._connections is not None and self._connections.changed():
            # The producer reconnected: the broker may be a new, empty one. Check before sending.
            self._epoch_check_needed = True
        if not self._epoch_check_needed and now < self._next_epoch_check:
            return
        self._admin.ensure(self.topics)
        checked_at = utcnow()
        current = self._admin.topic_ids(self.topics)
        state = self.tables.relay_state
        with self.engine.begin() as conn:
            known = {row.topic: row.topic_id for row in conn.execute(select(state))}
            for topic, topic_id in current.items():
                previous = known.get(topic)
                if previous == topic_id:
                    self._verified_at[topic] = checked_at
                    continue
                if previous is not None:
                    self._requeue_tail(conn, topic)
                _upsert_topic_id(conn, self.tables, topic, topic_id, previous is None)
                self._verified_at[topic] = checked_at
        self.stats.topic_ids = current
        self._epoch_check_needed = False
        self._next_epoch_check = now + self.settings.relay_broker_check_interval_s

    def _requeue_tail(self, conn: Connection, topic: str) -> None:
        """Publish again what the recreated topic lost: the republish window, and at least every
        row acknowledged since the old topic was last seen alive (a broker that restarts empty
        may acknowledge writes for a topic that does not exist yet, which are then lost)."""
        outbox = self.tables.outbox
        since = utcnow() - timedelta(seconds=self.settings.relay_republish_window_s)
        last_seen_alive = self._verified_at.get(topic)
        if last_seen_alive is not None:
            since = min(since, last_seen_alive)
        result = conn.execute(
            update(outbox)
            .where(and_(outbox.c.topic == topic, outbox.c.published_at >= since))
            .values(published_at=None)
        )
        self.stats.republished_tails += 1
        metrics.OUTBOX_REPUBLISHED.labels(self.service).inc(result.rowcount or 0)
        log.warning(
            "topic %s was recreated: publishing the last %d events again", topic, result.rowcount
        )

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + 300.0
        retention = timedelta(seconds=self.settings.retention_s)
        sent, seen = prune(self.engine, self.tables, retention)
        if sent or seen:
            log.info("pruned %d published outbox rows and %d inbox entries", sent, seen)

    def _report_backlog(self) -> None:
        now = time.monotonic()
        if now < self._next_backlog_report:
            return
        self._next_backlog_report = now + 1.0
        backlog, oldest = outbox_backlog(self.engine, self.tables)
        metrics.OUTBOX_BACKLOG.labels(self.service).set(backlog)
        metrics.OUTBOX_OLDEST_AGE.labels(self.service).set(oldest)


def _upsert_topic_id(
    conn: Connection, tables: KitTables, topic: str, topic_id: str, new: bool
) -> None:
    state = tables.relay_state
    if new:
        conn.execute(insert(state).values(topic=topic, topic_id=topic_id, updated_at=utcnow()))
    else:
        conn.execute(
            update(state)
            .where(state.c.topic == topic)
            .values(topic_id=topic_id, updated_at=utcnow())
        )


def outbox_backlog(engine: Engine, tables: KitTables) -> tuple[int, float]:
    """Unpublished rows and the age in seconds of the oldest one."""
    outbox = tables.outbox
    unpublished = outbox.c.published_at.is_(None)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).where(unpublished)).scalar_one()
        oldest = conn.execute(
            select(outbox.c.created_at).where(unpublished).order_by(outbox.c.seq).limit(1)
        ).scalar_one_or_none()
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return int(count), max(0.0, age)


def prune(engine: Engine, tables: KitTables, retention: timedelta) -> tuple[int, int]:
    """Housekeeping: delete published outbox rows and inbox entries older than ``retention``.

    Returns the rows deleted from (outbox, inbox). The retention must exceed the republish
    window and the longest redelivery the consumers may see, or a duplicate could pass the inbox.
    """
    outbox, inbox = tables.outbox, tables.inbox
    cutoff = utcnow() - retention
    with engine.begin() as conn:
        sent = conn.execute(
            delete(outbox).where(
                and_(outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff)
            )
        )
        seen = conn.execute(delete(inbox).where(inbox.c.processed_at < cutoff))
    return int(sent.rowcount or 0), int(seen.rowcount or 0)
