"""Outbox → Kafka → inbox against the real broker and the database under test."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, func, select

from crmkit.consumer import RawRecord
from crmkit.http import create_service_app
from crmkit.outbox import OutboxRelay
from tests.integration.conftest import Pair, customer_id, published_count, wait_until

pytestmark = pytest.mark.integration


def test_every_event_is_applied_exactly_once_in_order_per_key(pair: Pair) -> None:
    pair.customer.start_workers()
    pair.effects.start_workers()
    pair.write_many(600, keys=12)
    wait_until(pair.applied_all, 60, "all events applied")
    counts = pair.effect_counts()
    assert len(counts) == 600
    assert set(counts.values()) == {1}
    for names in pair.names_in_order().values():
        assert names == [f"v{i}" for i in range(50)]


def test_redelivered_event_changes_nothing(pair: Pair) -> None:
    event_id = pair.write(customer_id(1), "Zhang San", created=True)
    outbox = pair.customer.tables.outbox
    with pair.customer.engine.connect() as conn:
        envelope = conn.execute(select(outbox.c.envelope)).scalar_one()
    record = RawRecord("t", 0, 0, envelope.encode())
    applier = pair.effects.applier
    applier.apply_batch([record])
    applier.apply_batch([record])
    applier.apply_with_retries(record, 3, 0.0)
    assert pair.effect_counts() == {event_id: 1}


def test_failing_event_is_dead_lettered_then_replayed(
    pair: Pair, auth_header: Callable[[str], dict[str, str]], dev_keys: tuple[str, object]
) -> None:
    pair.effects.settings.consumer_retry_backoff_s = 0.01
    pair.customer.start_workers()
    pair.effects.start_workers()
    good_before = pair.write(customer_id(1), "before", created=True)
    poison = pair.write(customer_id(2), "poison", created=True)
    good_after = pair.write(customer_id(3), "after", created=True)
    dead = pair.effects.tables.dead_letters
    wait_until(
        lambda: {good_before, good_after} <= set(pair.effect_counts()) and _count(pair, dead) == 1,
        30,
        "the events around the poison applied and the poison dead-lettered",
    )
    counts = pair.effect_counts()
    assert good_before in counts and poison not in counts
    with pair.effects.engine.connect() as conn:
        row = conn.execute(select(dead)).mappings().one()
    assert row["event_id"] == poison
    assert row["attempts"] == pair.effects.settings.consumer_max_attempts
    assert "cannot be applied" in row["reason"]
    # The dead letter also went to the dead-letter topic through the outbox.
    outbox = pair.effects.tables.outbox
    wait_until(lambda: published_count(pair.effects) == 1, 15, "dead letter published")
    with pair.effects.engine.connect() as conn:
        topic = conn.execute(select(outbox.c.topic)).scalar_one()
    assert topic == pair.kafka.dead_letter_topic("effects")

    pair.effects.settings.jwt_public_key_file = str(dev_keys[1])
    app = create_service_app(pair.effects, [], title="effects", description="test")
    client = TestClient(app)  # no lifespan: the runtime is already running
    listed = client.get("/api/v1/admin/effects/dead-letters", headers=auth_header("admin"))
    assert listed.status_code == 200
    assert listed.json()["total"] == 1
    assert listed.json()["items"][0]["event_id"] == poison
    refused = client.post(
        f"/api/v1/admin/effects/dead-letters/{row['id']}/replay", headers=auth_header("manager.li")
    )
    assert refused.status_code == 403

    # Still failing: the replay reports it and the event stays unapplied.
    failed = client.post(
        f"/api/v1/admin/effects/dead-letters/{row['id']}/replay", headers=auth_header("admin")
    )
    assert failed.status_code == 200 and failed.json()["applied"] is False

    # Once the cause is fixed (here: the payload repaired by an operator), replay applies it.
    with pair.effects.engine.begin() as conn:
        payload = json.loads(conn.execute(select(dead.c.payload)).scalar_one())
        payload["data"]["name"] = "repaired"
        conn.execute(dead.update().values(payload=json.dumps(payload)))
    replayed = client.post(
        f"/api/v1/admin/effects/dead-letters/{row['id']}/replay", headers=auth_header("admin")
    )
    assert replayed.json() == {"id": row["id"], "applied": True, "outcome": "applied"}
    assert pair.effect_counts()[poison] == 1
    again = client.post(
        f"/api/v1/admin/effects/dead-letters/{row['id']}/replay", headers=auth_header("admin")
    )
    assert again.json()["applied"] is True
    assert pair.effect_counts()[poison] == 1  # the inbox keeps a second replay harmless
    pending = client.get(
        "/api/v1/admin/effects/dead-letters?pending_only=true", headers=auth_header("admin")
    )
    assert pending.json()["total"] == 0


def test_unknown_version_is_dead_lettered_without_retries(pair: Pair) -> None:
    pair.write(customer_id(1), "x", created=True)
    outbox = pair.customer.tables.outbox
    with pair.customer.engine.connect() as conn:
        envelope = json.loads(conn.execute(select(outbox.c.envelope)).scalar_one())
    envelope["version"] = 9
    pair.effects.applier.apply_with_retries(
        RawRecord("t", 0, 7, json.dumps(envelope).encode()), 3, 0.0
    )
    dead = pair.effects.tables.dead_letters
    with pair.effects.engine.connect() as conn:
        row = conn.execute(select(dead)).mappings().one()
    assert row["attempts"] == 1
    assert "version 9 is not handled" in row["reason"]
    assert pair.effect_counts() == {}


def _count(pair: Pair, table: Table) -> int:
    with pair.effects.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_relay_sends_a_partitions_share_of_a_batch_as_one_producer_batch(pair: Pair) -> None:
    """A refused producer batch is not retried but the next one is sent: were one key's events
    split over two batches, a refused first half would let the second half overtake it."""
    pair.write_many(300, keys=1)
    runtime = pair.customer
    relay = OutboxRelay(
        "customer", runtime.engine, runtime.tables, runtime.settings, runtime.published_topics
    )
    try:
        relay._ensure_producer()
        relay._check_broker_epoch()
        assert relay.publish_batch() == 300
        assert relay._producer is not None
        sent = relay._producer.metrics()["producer-metrics"]
        assert sent["records-per-request-avg"] == 300
        assert sent["batch-size-max"] == sent["batch-size-avg"]
    finally:
        relay.close()


def test_relay_bounds_a_batch_by_size_and_sends_the_rest_at_once(pair: Pair) -> None:
    pair.write_many(100, keys=4)
    runtime = pair.customer
    with runtime.engine.connect() as conn:
        sizes = conn.execute(select(func.length(runtime.tables.outbox.c.envelope))).scalars().all()
    runtime.settings.relay_batch_max_bytes = sum(sizes) // 3
    relay = OutboxRelay(
        "customer", runtime.engine, runtime.tables, runtime.settings, runtime.published_topics
    )
    try:
        relay._ensure_producer()
        relay._check_broker_epoch()
        first = relay.publish_batch()
        assert 0 < first < 50
        assert relay._more_waiting, "a batch cut by size must not wait for the next commit"
        while relay._more_waiting:
            relay.publish_batch()
        assert published_count(runtime) == 100
    finally:
        relay.close()


def test_an_idle_consumer_waits_longer_per_fetch_and_speeds_up_when_events_come(
    pair: Pair,
) -> None:
    kafka = pair.effects.settings.kafka
    pair.customer.start_workers()
    pair.effects.start_workers()
    consumer = pair.effects.consumer
    assert consumer is not None
    wait_until(lambda: consumer.fetch_wait_ms == kafka.idle_fetch_max_wait_ms, 10, "idle pacing")
    pair.write(customer_id(7), "after a pause", created=True)
    wait_until(pair.applied_all, 10, "the event applied")
    assert consumer.fetch_wait_ms == kafka.fetch_max_wait_ms
