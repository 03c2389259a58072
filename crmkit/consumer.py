"""Idempotent event consumers: inbox, positions kept with the effects, retries, dead letters.

A consumer is assigned every partition of the topics it reads (no consumer group: no joins, no
rebalance pauses) and keeps its position in each partition in the service's own database. A
polled batch is applied in one transaction that also records each event id in the inbox and the
new positions, so a crash either keeps all of it or none. A redelivered event finds its id in the
inbox and changes nothing. When a batch fails, its events are retried one by one with backoff;
one that keeps failing — or whose type version the service does not know — is recorded as a dead
letter (listed and replayable through the admin API) and sent to the dead-letter topic. Worker
replicas share the work by role: a lock elects the one that consumes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError
from sqlalchemy import CursorResult, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crmkit import context, metrics
from crmkit.db import KitTables, utcnow
from crmkit.events import Envelope
from crmkit.heap import gc_paused
from crmkit.kafka import ConnectionCounter, TopicAdmin, make_consumer
from crmkit.leader import LeaderLock
from crmkit.outbox import write_outbox_row
from crmkit.settings import ServiceSettings

log = logging.getLogger(__name__)

Handler = Callable[[Session, Envelope], None]
ManyHandler = Callable[[Session, list[Envelope]], None]
# (topic, partition) -> (topic id, next offset to read)
Positions = dict[tuple[str, int], tuple[str, int]]


class DatabaseUnavailable(Exception):
    """The service database cannot be reached: the events wait; they are not the problem."""


class UnsupportedEvent(Exception):
    """An event this consumer cannot apply whatever the retries (unknown version, bad payload)."""


@dataclass(frozen=True)
class Subscription:
    """A handler for one event type and the payload versions it understands.

    ``many`` marks a handler that takes a run of consecutive events at once (in their order),
    so a batch costs one statement instead of one per event.
    """

    event_type: str
    versions: frozenset[int]
    handler: Handler | None = None
    many: ManyHandler | None = None


@dataclass
class HandlerRegistry:
    """The event types a consumer applies, declared in a service's ``handlers.py``."""

    streams: set[str] = field(default_factory=set)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)

    def on(
        self, stream: str, event_type: str, versions: Iterable[int] = (1,)
    ) -> Callable[[Handler], Handler]:
        """Register a handler for ``event_type`` published on ``stream`` (the producing service)."""

        def register(fn: Handler) -> Handler:
            self.streams.add(stream)
            self.subscriptions[event_type] = Subscription(event_type, frozenset(versions), fn)
            return fn

        return register

    def on_many(
        self, stream: str, event_type: str, versions: Iterable[int] = (1,)
    ) -> Callable[[ManyHandler], ManyHandler]:
        """Register a handler that applies consecutive events of ``event_type`` in one call.

        Consecutive events whose types share the same handler function are passed together, in
        the order they were published. The handler runs outside any one event's correlation
        context, so it should not record events of its own.
        """

        def register(fn: ManyHandler) -> ManyHandler:
            self.streams.add(stream)
            self.subscriptions[event_type] = Subscription(event_type, frozenset(versions), many=fn)
            return fn

        return register


@dataclass(frozen=True)
class RawRecord:
    """What a consumer needs of a Kafka record (also rebuilt from a stored dead letter)."""

    topic: str
    partition: int
    offset: int
    value: bytes


class EventApplier:
    """Applies events to a service database through the inbox; shared by consumer and replay."""

    def __init__(
        self,
        service: str,
        consumer_name: str,
        registry: HandlerRegistry,
        tables: KitTables,
        session_factory: sessionmaker[Session],
        dead_letter_topic: str,
    ) -> None:
        self.service = service
        self.name = consumer_name
        self.registry = registry
        self.tables = tables
        self.session_factory = session_factory
        self.dead_letter_topic = dead_letter_topic

    def apply(self, session: Session, record: RawRecord) -> bool:
        """Apply one record in the session's transaction. False when it was a duplicate."""
        return self.apply_all(session, [record]) == 1

    def apply_all(self, session: Session, records: list[RawRecord]) -> int:
        """Apply records in order in the session's transaction; return how many took effect.

        Ids already in the inbox (or twice in the batch) are skipped; each applied event's id is
        added to the inbox in the same transaction.
        """
        wanted = self._relevant(records)
        if not wanted:
            return 0
        inbox = self.tables.inbox
        seen = set(
            session.execute(
                select(inbox.c.event_id).where(
                    inbox.c.consumer == self.name,
                    inbox.c.event_id.in_([str(env.id) for env in wanted]),
                )
            ).scalars()
        )
        applied: list[dict[str, Any]] = []
        run: list[Envelope] = []  # consecutive events for one many-handler
        run_handler: ManyHandler | None = None
        for envelope in wanted:
            event_id = str(envelope.id)
            if event_id in seen:
                metrics.EVENTS_DUPLICATE.labels(self.service, self.name).inc()
                continue
            seen.add(event_id)
            subscription = self.registry.subscriptions[envelope.type]
            if envelope.version not in subscription.versions:
                raise UnsupportedEvent(
                    f"{envelope.type} version {envelope.version} is not handled "
                    f"(known: {sorted(subscription.versions)})"
                )
            if run and subscription.many is not run_handler:
                assert run_handler is not None
                run_handler(session, run)
                run = []
            if subscription.many is not None:
                run_handler = subscription.many
                run.append(envelope)
            else:
                assert subscription.handler is not None
                with _event_context(envelope):
                    subscription.handler(session, envelope)
            applied.append(
                {
                    "consumer": self.name,
                    "event_id": event_id,
                    "event_type": envelope.type,
                    "processed_at": utcnow(),
                    "outcome": "applied",
                }
            )
        if run:
            assert run_handler is not None
            run_handler(session, run)
        if applied:
            session.execute(insert(inbox), applied)
            for event_type, count in Counter(row["event_type"] for row in applied).items():
                metrics.EVENTS_PROCESSED.labels(self.service, self.name, event_type).inc(count)
        return len(applied)

    def _relevant(self, records: list[RawRecord]) -> list[Envelope]:
        """The envelopes of the records whose type this consumer handles."""
        out: list[Envelope] = []
        for record in records:
            try:
                envelope = Envelope.from_bytes(record.value)
            except (ValidationError, ValueError) as exc:
                raise UnsupportedEvent(f"not a valid event envelope: {exc}") from exc
            if envelope.type in self.registry.subscriptions:
                out.append(envelope)
        return out

    def apply_batch(self, records: list[RawRecord], positions: Positions | None = None) -> None:
        """All records and the positions after them in one transaction (the fast path)."""
        with self.session_factory() as session, session.begin():
            self.apply_all(session, records)
            if positions:
                self.save_positions(session, positions)

    def save_positions(self, session: Session, positions: Positions) -> None:
        """Record where the consumer stands, in the session's transaction."""
        table = self.tables.consumer_offsets
        now = utcnow()
        for (topic, partition), (topic_id, next_offset) in positions.items():
            where = (
                (table.c.consumer == self.name)
                & (table.c.topic == topic)
                & (table.c.partition == partition)
            )
            values = {"topic_id": topic_id, "next_offset": next_offset, "updated_at": now}
            result = cast(
                CursorResult[Any], session.execute(update(table).where(where).values(**values))
            )
            if result.rowcount == 0:
                session.execute(
                    insert(table).values(
                        consumer=self.name, topic=topic, partition=partition, **values
                    )
                )

    def load_positions(self) -> Positions:
        table = self.tables.consumer_offsets
        with self.session_factory() as session:
            rows = session.execute(select(table).where(table.c.consumer == self.name)).all()
        return {(r.topic, r.partition): (r.topic_id, r.next_offset) for r in rows}

    def apply_with_retries(
        self,
        record: RawRecord,
        max_attempts: int,
        backoff_s: float,
        stop: threading.Event | None = None,
    ) -> None:
        """One record in its own transaction, retried; dead-lettered when it keeps failing."""
        reason = ""
        for attempt in range(1, max_attempts + 1):
            try:
                with self.session_factory() as session, session.begin():
                    self.apply(session, record)
                return
            except UnsupportedEvent as exc:
                self.dead_letter(record, str(exc), attempt)
                return
            except IntegrityError:
                # Another replica applied the same event concurrently: the inbox key held.
                metrics.EVENTS_DUPLICATE.labels(self.service, self.name).inc()
                return
            except (OperationalError, InterfaceError) as exc:
                if _connection_lost(exc):
                    raise DatabaseUnavailable(str(exc)) from exc
                reason = f"{type(exc).__name__}: {exc}"
                self._count_failure(record, attempt, max_attempts, reason)
                if attempt < max_attempts and self._backoff(backoff_s, attempt, stop):
                    raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                self._count_failure(record, attempt, max_attempts, reason)
                if attempt < max_attempts and self._backoff(backoff_s, attempt, stop):
                    raise
        self.dead_letter(record, reason, max_attempts)

    def _count_failure(self, record: RawRecord, attempt: int, of: int, reason: str) -> None:
        metrics.EVENTS_FAILED.labels(self.service, self.name).inc()
        log.warning(
            "event at %s/%d@%d failed (attempt %d/%d): %s",
            record.topic,
            record.partition,
            record.offset,
            attempt,
            of,
            reason,
        )

    @staticmethod
    def _backoff(backoff_s: float, attempt: int, stop: threading.Event | None) -> bool:
        """Wait before the next attempt; True when the consumer is stopping meanwhile."""
        delay = backoff_s * (2 ** (attempt - 1))
        if stop is None:
            time.sleep(delay)
            return False
        return stop.wait(delay)

    def dead_letter(self, record: RawRecord, reason: str, attempts: int) -> None:
        """Keep the event for listing and replay and publish it to the dead-letter topic."""
        event_id, event_type, key = _peek(record.value)
        dead = self.tables.dead_letters
        with self.session_factory() as session, session.begin():
            if (
                event_id is not None
                and session.execute(
                    select(dead.c.id).where(
                        dead.c.consumer == self.name, dead.c.event_id == event_id
                    )
                ).first()
            ):
                return
            session.execute(
                insert(dead).values(
                    consumer=self.name,
                    event_id=event_id,
                    event_type=event_type,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    payload=record.value.decode("utf-8", "replace"),
                    reason=reason[:4000],
                    attempts=attempts,
                    created_at=utcnow(),
                )
            )
            write_outbox_row(
                session,
                self.tables,
                self.dead_letter_topic,
                key,
                _new_id(),
                "dead_letter",
                json.dumps(
                    {
                        "consumer": self.name,
                        "reason": reason[:4000],
                        "attempts": attempts,
                        "source_topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "event_id": event_id,
                        "event_type": event_type,
                        "payload": record.value.decode("utf-8", "replace"),
                    }
                ),
            )
        metrics.EVENTS_DEAD_LETTERED.labels(self.service, self.name).inc()
        log.error("event %s (%s) dead-lettered by %s: %s", event_id, event_type, self.name, reason)


class EventConsumer:
    """One service's consumer, on its own thread (kafka-python is not thread-safe).

    It assigns itself every partition of its topics and starts each where the service database
    says it stopped, or at the beginning when the topic is new or was recreated (its id changed:
    a broker that came back empty). Whenever the client opened a new connection — the broker may
    have restarted — and every few seconds otherwise, the topic ids are checked before anything
    polled is applied, so a recreated topic is read from its start and never from the old
    position, which would skip its first records and break the order per key.
    """

    def __init__(self, applier: EventApplier, settings: ServiceSettings, engine: Engine) -> None:
        self.applier = applier
        self.settings = settings
        self.ready = threading.Event()
        self.applied = 0
        self.rewinds = 0  # times a recreated topic was started again from its beginning
        self._consumer: KafkaConsumer | None = None
        self._connections: ConnectionCounter | None = None
        self._admin = TopicAdmin(settings.kafka, f"{applier.name}-consumer-admin")
        self._lease = LeaderLock.for_engine(engine, f"consumer:{applier.service}:{applier.name}")
        self._topic_ids: dict[str, str] = {}
        self._next_topic_check = 0.0
        self._db_backoff = _Backoff(0.5, 5.0)
        self._last_records_at = time.monotonic()

    @property
    def topics(self) -> list[str]:
        return sorted(self.settings.kafka.topic(s) for s in self.applier.registry.streams)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, surviving broker and database outages."""
        backoff = 0.5
        while not stop.is_set():
            try:
                if not self._lease.acquire():
                    self._close()
                    stop.wait(2.0)
                    continue
                if self._consumer is None:
                    self._open()
                self._poll_once(stop)
                backoff = 0.5
            except Exception as exc:
                log.warning("consumer %s error: %r", self.applier.name, exc)
                self._close()
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self._close()
        self._lease.release()

    def _open(self) -> None:
        """Build the client, assign every partition and seek to the stored positions."""
        topics = self.topics
        # Create what we read with the configured partitions before anyone else can make the
        # broker auto-create it with its own count.
        self._admin.ensure(topics)
        layout = self._admin.partitions(topics)
        missing = set(topics) - set(layout)
        if missing:
            raise RuntimeError(f"topics not available yet: {sorted(missing)}")
        consumer = make_consumer(self.settings.kafka, self.applier.name, None)
        try:
            self._connections = ConnectionCounter(consumer)
            stored = self.applier.load_positions()
            assignment = [TopicPartition(t, p) for t, (_, n) in layout.items() for p in range(n)]
            consumer.assign(assignment)
            recreated = False
            for tp in assignment:
                position = stored.get((tp.topic, tp.partition))
                if position is not None and position[0] == layout[tp.topic][0]:
                    consumer.seek(tp, position[1])
                else:
                    recreated = recreated or position is not None
                    consumer.seek_to_beginning(tp)
            self.rewinds += recreated
        except Exception:
            consumer.close()
            raise
        self._consumer = consumer
        self._last_records_at = time.monotonic()
        self._topic_ids = {t: topic_id for t, (topic_id, _) in layout.items()}
        self._next_topic_check = time.monotonic() + self.settings.relay_broker_check_interval_s
        self.ready.set()

    def _poll_once(self, stop: threading.Event) -> None:
        assert self._consumer is not None and self._connections is not None
        polled = self._consumer.poll(timeout_ms=500, max_records=500)
        self._pace_fetches(bool(polled))
        check = self._connections.changed() or time.monotonic() >= self._next_topic_check
        if check and not self._topics_unchanged(polled):
            return
        if not polled:
            return
        records = [
            RawRecord(m.topic, m.partition, m.offset, m.value)
            for messages in polled.values()
            for m in messages
        ]
        positions: Positions = {
            (tp.topic, tp.partition): (self._topic_ids[tp.topic], msgs[-1].offset + 1)
            for tp, msgs in polled.items()
        }
        try:
            self._apply(records, positions, stop)
        except DatabaseUnavailable as exc:
            # Read the batch again once the database is back; nothing was committed.
            log.warning("database unavailable, holding events: %s", exc)
            self._rewind(polled)
            stop.wait(self._db_backoff.next())
            return
        self._db_backoff.reset()
        self.applied += len(records)
        for tp, msgs in polled.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - msgs[-1].offset - 1)
                metrics.CONSUMER_LAG.labels(self.applier.service, self.applier.name, tp.topic).set(
                    lag
                )

    def _pace_fetches(self, got_records: bool) -> None:
        """Short fetch waits while events flow, long ones once the topics have gone quiet.

        The broker does not wake a waiting fetch when data arrives, so the wait bounds latency;
        kafka-python reads it from its fetcher's config for every fetch it sends.
        """
        assert self._consumer is not None
        kafka = self.settings.kafka
        now = time.monotonic()
        if got_records:
            self._last_records_at = now
            wait = kafka.fetch_max_wait_ms
        elif now - self._last_records_at >= kafka.idle_after_s:
            wait = kafka.idle_fetch_max_wait_ms
        else:
            return
        fetcher_config: dict[str, Any] = self._consumer._fetcher.config  # no public setter
        if fetcher_config.get("fetch_max_wait_ms") != wait:
            fetcher_config["fetch_max_wait_ms"] = wait

    @property
    def fetch_wait_ms(self) -> int | None:
        """The fetch wait in use (None while no client is open)."""
        if self._consumer is None:
            return None
        return int(self._consumer._fetcher.config["fetch_max_wait_ms"])

    def _topics_unchanged(self, polled: dict[TopicPartition, list[Any]]) -> bool:
        """Check the topic ids before applying ``polled``; False when it must not be applied.

        A recreated topic closes the client: the next one starts from the stored positions,
        and a position stored under the old topic id means the beginning of the new topic.
        """
        assert self._consumer is not None
        try:
            current = self._admin.topic_ids(self.topics)
        except Exception as exc:
            # Cannot tell which topic the records came from: read them again after a check.
            log.info("topic check failed, holding the batch: %r", exc)
            self._rewind(polled)
            self._next_topic_check = 0.0
            return False
        self._next_topic_check = time.monotonic() + self.settings.relay_broker_check_interval_s
        changed = sorted(t for t in self.topics if current.get(t) != self._topic_ids.get(t))
        if not changed:
            return True
        log.warning("topics %s were recreated: reading them from the beginning", changed)
        self._close()
        return False

    def _rewind(self, polled: dict[TopicPartition, list[Any]]) -> None:
        assert self._consumer is not None
        for tp, messages in polled.items():
            self._consumer.seek(tp, messages[0].offset)

    def _apply(self, records: list[RawRecord], positions: Positions, stop: threading.Event) -> None:
        try:
            with gc_paused():  # the batch's envelopes and rows all live until it ends
                self.applier.apply_batch(records, positions)
            return
        except (OperationalError, InterfaceError) as exc:
            if _connection_lost(exc):
                raise DatabaseUnavailable(str(exc)) from exc
        except Exception:
            log.info("batch of %d failed; applying its events one by one", len(records))
        for record in records:
            self.applier.apply_with_retries(
                record,
                self.settings.consumer_max_attempts,
                self.settings.consumer_retry_backoff_s,
                stop,
            )
        try:
            with self.applier.session_factory() as session, session.begin():
                self.applier.save_positions(session, positions)
        except (OperationalError, InterfaceError) as exc:
            if _connection_lost(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            raise

    def _close(self) -> None:
        self._admin.close()
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:
                log.debug("consumer close failed", exc_info=True)
            self._consumer = None
            self._connections = None


class _Backoff:
    """Exponential waits between retries against an unavailable dependency."""

    def __init__(self, first_s: float, cap_s: float) -> None:
        self.first_s, self.cap_s, self._current = first_s, cap_s, first_s

    def next(self) -> float:
        wait, self._current = self._current, min(self._current * 2, self.cap_s)
        return wait

    def reset(self) -> None:
        self._current = self.first_s


def _connection_lost(exc: DBAPIError) -> bool:
    """True for errors that say the database went away rather than that the event is bad."""
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    markers = (
        "connection",
        "could not connect",
        "server closed",
        "terminating",
        "database is locked",
        "does not allow connections",
        "disk i/o error",
        "unable to open database",
    )
    return any(marker in text for marker in markers)


@contextmanager
def _event_context(envelope: Envelope) -> Iterator[None]:
    tokens = (
        context.correlation_id.set(envelope.correlation_id or str(envelope.id)),
        context.causation_id.set(str(envelope.id)),
    )
    try:
        yield
    finally:
        context.correlation_id.reset(tokens[0])
        context.causation_id.reset(tokens[1])


def _peek(raw: bytes) -> tuple[str | None, str | None, str | None]:
    try:
        value: Any = json.loads(raw)
        return (
            str(value.get("id")) if value.get("id") else None,
            value.get("type"),
            value.get("key"),
        )
    except (ValueError, AttributeError):
        return None, None, None


def _new_id() -> str:
    return str(uuid.uuid4())


def replay_dead_letter(applier: EventApplier, dead_letter_id: int) -> tuple[bool, str]:
    """Apply a dead letter again through the inbox; returns (applied, outcome text)."""
    dead = applier.tables.dead_letters
    with applier.session_factory() as session:
        row = session.execute(select(dead).where(dead.c.id == dead_letter_id)).mappings().first()
    if row is None:
        raise LookupError(dead_letter_id)
    record = RawRecord(row["topic"], row["partition"], row["offset"], row["payload"].encode())
    try:
        with applier.session_factory() as session, session.begin():
            applier.apply(session, record)
            _mark_replayed(session, applier.tables, dead_letter_id, "applied")
        return True, "applied"
    except Exception as exc:
        outcome = f"failed: {type(exc).__name__}: {exc}"[:2000]
        with applier.session_factory() as session, session.begin():
            _mark_replayed(session, applier.tables, dead_letter_id, outcome)
        return False, outcome


def _mark_replayed(session: Session, tables: KitTables, dead_letter_id: int, outcome: str) -> None:
    dead = tables.dead_letters
    session.execute(
        update(dead)
        .where(dead.c.id == dead_letter_id)
        .values(replayed_at=utcnow() if outcome == "applied" else None, replay_outcome=outcome)
    )
