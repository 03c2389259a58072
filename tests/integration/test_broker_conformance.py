"""What the suite relies on from its Kafka-protocol broker, checked against whichever broker runs.

By default the embedded broker; set ``CRM_CONFORMANCE_BOOTSTRAP`` to check another (an Apache
Kafka cluster before a production switch).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from crmkit.broker import EmbeddedBroker
from crmkit.kafka import ensure_topics, make_consumer, make_producer
from crmkit.settings import KafkaSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def conformance_kafka(broker: EmbeddedBroker) -> KafkaSettings:
    bootstrap = os.environ.get("CRM_CONFORMANCE_BOOTSTRAP", broker.bootstrap)
    return KafkaSettings(bootstrap_servers=bootstrap, namespace=f"conf{uuid.uuid4().hex[:8]}")


@pytest.fixture
def topic(conformance_kafka: KafkaSettings) -> str:
    name = conformance_kafka.topic("conformance")
    ensure_topics(conformance_kafka, [name])
    return name


def _produce(kafka: KafkaSettings, topic: str, items: list[tuple[str, str]]) -> None:
    producer = make_producer(kafka, "conformance")
    for key, value in items:
        producer.send(topic, key=key, value=value.encode())
    producer.flush()
    producer.close()


def _drain(consumer: KafkaConsumer, expected: int, timeout_s: float = 30) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout_s
    while len(seen) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            seen.extend((r.key.decode(), r.value.decode()) for r in records)
    return seen


@pytest.fixture
def consumers(conformance_kafka: KafkaSettings) -> Iterator[list[KafkaConsumer]]:
    made: list[KafkaConsumer] = []
    yield made
    for consumer in made:
        consumer.close()


def test_topics_are_created_with_the_configured_partitions(
    conformance_kafka: KafkaSettings, topic: str, consumers: list[KafkaConsumer]
) -> None:
    consumer = make_consumer(conformance_kafka, "probe", None)
    consumers.append(consumer)
    assert consumer.partitions_for_topic(topic) == set(range(conformance_kafka.topic_partitions))
    assert ensure_topics(conformance_kafka, [topic]) == []


def test_order_per_key_is_kept(
    conformance_kafka: KafkaSettings, topic: str, consumers: list[KafkaConsumer]
) -> None:
    items = [(f"key-{i % 7}", str(i)) for i in range(700)]
    _produce(conformance_kafka, topic, items)
    consumer = make_consumer(conformance_kafka, "order", f"{topic}.order")
    consumers.append(consumer)
    consumer.subscribe([topic])
    seen = _drain(consumer, len(items))
    assert len(seen) == len(items)
    per_key: dict[str, list[int]] = {}
    for key, value in seen:
        per_key.setdefault(key, []).append(int(value))
    assert all(values == sorted(values) for values in per_key.values())
    assert sum(len(v) for v in per_key.values()) == 700


def test_group_rebalances_when_a_second_consumer_joins(
    conformance_kafka: KafkaSettings, topic: str
) -> None:
    group = f"{topic}.rebalance"
    stop = threading.Event()
    members = [_Member(conformance_kafka, group, topic, "first", stop)]
    members[0].start()
    try:
        _wait(lambda: len(members[0].assignment) == conformance_kafka.topic_partitions, 30)
        members.append(_Member(conformance_kafka, group, topic, "second", stop))
        members[1].start()
        _wait(
            lambda: (
                all(m.assignment for m in members)
                and sum(len(m.assignment) for m in members) == conformance_kafka.topic_partitions
            ),
            40,
        )
        assert not members[0].assignment & members[1].assignment
    finally:
        stop.set()
        for member in members:
            member.join(timeout=15)


class _Member(threading.Thread):
    """A group member polling on its own thread, as consumers run in the services."""

    def __init__(
        self, kafka: KafkaSettings, group: str, topic: str, name: str, stop: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.kafka, self.group, self.topic, self.member, self.stop = kafka, group, topic, name, stop
        self.assignment: set[TopicPartition] = set()

    def run(self) -> None:
        consumer = make_consumer(self.kafka, self.member, self.group)
        consumer.subscribe([self.topic])
        while not self.stop.is_set():
            consumer.poll(timeout_ms=1000)
            self.assignment = set(consumer.assignment())
        consumer.close()


def _wait(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "the group did not settle"
        time.sleep(0.1)


def test_consumer_resumes_from_its_committed_offset(
    conformance_kafka: KafkaSettings, topic: str, consumers: list[KafkaConsumer]
) -> None:
    group = f"{topic}.resume"
    _produce(conformance_kafka, topic, [("same-key", f"a{i}") for i in range(50)])
    first = make_consumer(conformance_kafka, "resume-1", group)
    first.subscribe([topic])
    records = []
    deadline = time.monotonic() + 30
    while len(records) < 50 and time.monotonic() < deadline:
        for batch in first.poll(timeout_ms=1000).values():
            records.extend(batch)
    assert [r.value.decode() for r in records] == [f"a{i}" for i in range(50)]
    # Commit only the first 30: the next consumer of the group must start at a30.
    a30 = records[30]
    partition = TopicPartition(a30.topic, a30.partition)
    first.commit({partition: OffsetAndMetadata(a30.offset, "", -1)})
    first.close()

    _produce(conformance_kafka, topic, [("same-key", f"b{i}") for i in range(5)])
    second = make_consumer(conformance_kafka, "resume-2", group)
    consumers.append(second)
    second.subscribe([topic])
    resumed = [v for _, v in _drain(second, 25)]
    assert resumed == [f"a{i}" for i in range(30, 50)] + [f"b{i}" for i in range(5)]
