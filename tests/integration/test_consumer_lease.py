"""Two consumers of one service on one PostgreSQL database: one applies, the other stands by."""

from __future__ import annotations

import threading

import pytest

from crmkit.consumer import EventConsumer
from crmkit.settings import KafkaSettings
from tests.conftest import Databases
from tests.integration.conftest import build_pair, wait_until

pytestmark = pytest.mark.postgres


def test_only_one_consumer_applies_and_the_other_takes_over(
    pg_databases: Databases, kafka_settings: KafkaSettings
) -> None:
    pair = build_pair(pg_databases, kafka_settings)
    effects = pair.effects
    consumers = [EventConsumer(effects.applier, effects.settings, effects.engine) for _ in range(2)]
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=c.run, args=(s,), daemon=True)
        for c, s in zip(consumers, stops, strict=True)
    ]
    try:
        pair.customer.start_workers()
        threads[0].start()
        wait_until(consumers[0].ready.is_set, 20, "the first consumer to start")
        threads[1].start()
        pair.write_many(40, keys=4)
        wait_until(pair.applied_all, 30, "the leader to apply", pair.progress)
        assert consumers[0].applied == 40
        assert consumers[1].applied == 0
        assert not consumers[1].ready.is_set(), "the standby consumer must not read"

        stops[0].set()
        threads[0].join(10)
        pair.write_many(20, keys=4)
        wait_until(pair.applied_all, 30, "the standby to take over", pair.progress)
        assert consumers[1].applied == 20, "the standby should resume at the stored positions"
        assert set(pair.effect_counts().values()) == {1}
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(10)
        pair.close()
