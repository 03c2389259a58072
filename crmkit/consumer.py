"""Idempotent event consumers: inbox, retries with backoff, dead letters and replay.

A consumer applies a polled batch in one transaction that also records each event id in the
inbox; only after that commit does it commit the Kafka offsets. A redelivered event finds its id in
the inbox and changes nothing. When a batch fails, its events are retried one by one with backoff;
one that keeps failing — or whose type version the service does not know — is recorded as a dead
letter (listed and replayable through the admin API) and sent to the dead-letter topic.
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
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata
from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crmkit import context, metrics
from crmkit.db import KitTables, utcnow
from crmkit.events import Envelope
from crmkit.kafka import TopicAdmin, make_consumer
from crmkit.outbox import write_outbox_row
from crmkit.settings import ServiceSettings

log = logging.getLogger(__name__)

Handler = Callable[[Session, Envelope], None]


class DatabaseUnavailable(Exception):
    """The service database cannot be reached: the events wait; they are not the problem."""


class UnsupportedEvent(Exception):
    """An event this consumer cannot apply whatever the retries (unknown version, bad payload)."""


@dataclass(frozen=True)
class Subscription:
    """A handler for one event type and the payload versions it understands."""

    event_type: str
    versions: frozenset[int]
    handler: Handler


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

    def apply_batch(self, records: list[RawRecord]) -> None:
        """All records in one transaction (the fast path)."""
        with self.session_factory() as session, session.begin():
            self.apply_all(session, records)

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
    """One Kafka consumer in a group, on its own thread (kafka-python is not thread-safe)."""

    def __init__(self, applier: EventApplier, settings: ServiceSettings, group_id: str) -> None:
        self.applier = applier
        self.settings = settings
        self.group_id = group_id
        self.ready = threading.Event()
        self.applied = 0
        self._consumer: KafkaConsumer | None = None
        self._admin = TopicAdmin(settings.kafka, f"{applier.name}-consumer-admin")
        self._topic_ids: dict[str, str] = {}
        self._next_topic_check = 0.0
        self._db_backoff = _Backoff(0.5, 5.0)

    @property
    def topics(self) -> list[str]:
        return sorted(self.settings.kafka.topic(s) for s in self.applier.registry.streams)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, surviving broker and database outages."""
        backoff = 0.5
        while not stop.is_set():
            try:
                if self._consumer is None:
                    topics = self.topics
                    # Create what we read with the configured partitions before anyone else can
                    # make the broker auto-create it with its own count.
                    self._admin.ensure(topics)
                    self._consumer = make_consumer(
                        self.settings.kafka, f"{self.applier.name}", self.group_id
                    )
                    self._consumer.subscribe(topics)
                self._poll_once(stop)
                backoff = 0.5
            except Exception as exc:
                log.warning("consumer %s error: %r", self.applier.name, exc)
                self._close()
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self._close()

    def _poll_once(self, stop: threading.Event) -> None:
        assert self._consumer is not None
        # Short poll timeouts make kafka-python drop successful joins: poll for at least 1 s.
        polled = self._consumer.poll(timeout_ms=1000, max_records=500)
        if self._consumer.assignment():
            self.ready.set()
        self._watch_topics()
        if not polled:
            return
        records = [
            RawRecord(m.topic, m.partition, m.offset, m.value)
            for messages in polled.values()
            for m in messages
        ]
        try:
            self._apply(records, stop)
        except DatabaseUnavailable as exc:
            # Read the batch again once the database is back; nothing was committed.
            log.warning("database unavailable, holding events: %s", exc)
            for tp, messages in polled.items():
                self._consumer.seek(tp, messages[0].offset)
            stop.wait(self._db_backoff.next())
            return
        self._db_backoff.reset()
        self.applied += len(records)
        # Offsets go to the broker only after the transaction; a lost commit means redelivery,
        # which the inbox absorbs, so the commit need not block the next poll.
        offsets = {
            tp: OffsetAndMetadata(msgs[-1].offset + 1, "", -1) for tp, msgs in polled.items()
        }
        self._consumer.commit_async(offsets, callback=self._on_commit)
        for tp, msgs in polled.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - msgs[-1].offset - 1)
                metrics.CONSUMER_LAG.labels(self.applier.service, self.applier.name, tp.topic).set(
                    lag
                )

    def _apply(self, records: list[RawRecord], stop: threading.Event) -> None:
        try:
            self.applier.apply_batch(records)
        except (OperationalError, InterfaceError) as exc:
            if _connection_lost(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            self._apply_one_by_one(records, stop)
        except Exception:
            self._apply_one_by_one(records, stop)

    def _apply_one_by_one(self, records: list[RawRecord], stop: threading.Event) -> None:
        for record in records:
            self.applier.apply_with_retries(
                record,
                self.settings.consumer_max_attempts,
                self.settings.consumer_retry_backoff_s,
                stop,
            )

    def _on_commit(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception):
            log.info("offset commit failed (events will be redelivered and deduped): %r", response)

    def _watch_topics(self) -> None:
        """Start a recreated topic (broker came back empty) from its beginning.

        The consumer's position in the old topic would otherwise skip the first records of the
        new one; reading them again is harmless, the inbox dedupes.
        """
        now = time.monotonic()
        if now < self._next_topic_check:
            return
        self._next_topic_check = now + self.settings.relay_broker_check_interval_s
        assert self._consumer is not None
        try:
            current = self._admin.topic_ids(self.topics)
        except Exception as exc:
            log.info("topic check failed: %r", exc)
            return
        changed = {
            t for t, tid in current.items() if t in self._topic_ids and self._topic_ids[t] != tid
        }
        self._topic_ids.update(current)
        if changed:
            restart = [tp for tp in self._consumer.assignment() if tp.topic in changed]
            log.warning(
                "topics %s were recreated: reading them from the beginning", sorted(changed)
            )
            if restart:
                self._consumer.seek_to_beginning(*restart)

    def _close(self) -> None:
        self._admin.close()
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:
                log.debug("consumer close failed", exc_info=True)
            self._consumer = None


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
