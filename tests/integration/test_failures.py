"""Nothing is lost and nothing applied twice when a process or the broker goes away mid-work."""

from __future__ import annotations

import signal
import time

import pytest

from crmkit.broker import EmbeddedBroker
from crmkit.settings import KafkaSettings
from tests.integration.conftest import Pair, customer_id, wait_until

pytestmark = pytest.mark.integration


def _assert_exactly_once_in_order(pair: Pair, keys: int) -> None:
    counts = pair.effect_counts()
    assert len(counts) == len(pair.written)
    assert set(counts.values()) == {1}, "an event was applied more than once"
    per_key = len(pair.written) // keys
    for cid, names in pair.names_in_order().items():
        assert names == [f"v{i}" for i in range(per_key)], f"{cid} applied out of order: {names}"


def test_relay_killed_mid_batch_loses_nothing_and_applies_nothing_twice(pair: Pair) -> None:
    pair.write_many(4000, keys=8)
    pair.effects.start_workers()
    relay = pair.spawn_relay()
    total = len(pair.written)
    wait_until(lambda: pair.published_count() > 0, 30, "the relay to publish")
    relay.send_signal(signal.SIGKILL)
    relay.wait()
    published_at_kill = pair.published_count()
    assert 0 < published_at_kill < total, "the kill must land mid-work"
    pair.spawn_relay()
    wait_until(lambda: pair.published_count() == total, 60, "the restarted relay to finish")
    wait_until(pair.applied_all, 60, "every event applied")
    _assert_exactly_once_in_order(pair, keys=8)


def test_consumer_killed_before_its_commit_reprocesses_without_double_effects(
    pair: Pair,
) -> None:
    pair.write_many(1500, keys=6)
    pair.customer.start_workers()
    crashing = pair.spawn_consumer(crash_after_batches=2)
    assert crashing.wait(timeout=60) == 9, "the consumer should die inside its second batch"
    applied_before = len(pair.effect_counts())
    assert 0 < applied_before < len(pair.written)
    pair.spawn_consumer()
    wait_until(pair.applied_all, 60, "every event applied after the restart")
    _assert_exactly_once_in_order(pair, keys=6)


def test_broker_outage_events_wait_then_arrive_in_order(
    restartable_broker: EmbeddedBroker, pair: Pair
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=restartable_broker.bootstrap, namespace=pair.kafka.namespace
    )
    pair.customer.settings.kafka = kafka
    pair.effects.settings.kafka = kafka
    pair.customer.start_workers()
    pair.effects.start_workers()
    keys = 5
    customers = [customer_id(i) for i in range(keys)]
    sequence = 0

    def write_round() -> None:
        nonlocal sequence
        for cid in customers:
            pair.write(cid, f"v{sequence}")
        sequence += 1

    for _ in range(10):
        write_round()
    wait_until(pair.applied_all, 30, "events before the outage")

    restartable_broker.stop()
    outage_started = time.monotonic()
    while time.monotonic() - outage_started < 10:
        write_round()
        time.sleep(0.5)
    restartable_broker.start()
    for _ in range(10):
        write_round()
    recovery_s = wait_until(pair.applied_all, 60, "events written during the outage", pair.progress)
    print(f"recovered {recovery_s:.2f} s after the broker restart")
    _assert_exactly_once_in_order(pair, keys)
    assert pair.effects.consumer is not None
    assert pair.effects.consumer.rewinds >= 1, "the recreated topic went unnoticed"
    assert pair.customer.relay is not None
    assert pair.customer.relay.stats.republished_tails >= 1, "the empty broker went unnoticed"
    assert recovery_s < 30


def test_a_recreated_topic_is_read_from_its_start_not_from_the_old_position(
    restartable_broker: EmbeddedBroker, pair: Pair
) -> None:
    """Without the tail republished, the new topic holds only the newer events; a consumer at
    its old position would skip as many of them as it had read from the old topic."""
    kafka = KafkaSettings(
        bootstrap_servers=restartable_broker.bootstrap, namespace=pair.kafka.namespace
    )
    pair.customer.settings.kafka = kafka
    pair.customer.settings.relay_republish_window_s = 0
    pair.effects.settings.kafka = kafka
    pair.customer.start_workers()
    pair.effects.start_workers()
    cid = customer_id(0)
    for n in range(20):
        pair.write(cid, f"v{n}")
    wait_until(pair.applied_all, 30, "events before the restart")
    restartable_broker.stop()
    restartable_broker.start()
    for n in range(20, 50):
        pair.write(cid, f"v{n}")
    wait_until(pair.applied_all, 60, "events after the restart", pair.progress)
    _assert_exactly_once_in_order(pair, keys=1)


def test_a_restarted_consumer_resumes_where_its_database_says(pair: Pair) -> None:
    pair.write_many(30, keys=3)
    pair.customer.start_workers()
    pair.effects.start_workers()
    wait_until(pair.applied_all, 30, "the first events")
    pair.effects.stop_workers()
    pair.write_many(12, keys=3)
    pair.effects.start_workers()
    wait_until(pair.applied_all, 30, "the later events")
    assert pair.effects.consumer is not None
    assert pair.effects.consumer.applied == 12, "the restarted consumer read old events again"
    assert set(pair.effect_counts().values()) == {1}
