"""The customer service's events on the real broker: order per customer, contracts, no PII."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from crmkit.events import Envelope, validate_payload
from crmkit.kafka import make_consumer
from crmkit.settings import KafkaSettings
from services.customer.app import create_app
from tests.conftest import Databases
from tests.customer import conftest as customer_conftest
from tests.customer.conftest import Api, person, resident_id

pytestmark = pytest.mark.integration

CUSTOMERS = "/api/v1/customers"
TIMEOUT_S = 30.0


@pytest.fixture
def live_api(
    databases: Databases, dev_keys: tuple[str, Path], kafka_settings: KafkaSettings
) -> Iterator[Api]:
    """The customer service with its relay running against the test's broker namespace."""
    settings = customer_conftest.test_settings(databases, dev_keys[1], kafka=kafka_settings)
    # ``test_settings`` fixes embedded_workers=False and cannot take it as an override.
    settings = settings.model_copy(update={"embedded_workers": True})
    with TestClient(create_app(settings)) as client:
        yield Api(client, {}, dev_keys[0])


@pytest.fixture
def topic_reader(kafka_settings: KafkaSettings) -> Iterator[KafkaConsumer]:
    consumer = make_consumer(kafka_settings, "test", None)
    try:
        yield consumer
    finally:
        consumer.close()


def read_key(
    consumer: KafkaConsumer, topic: str, key: str, wanted: int
) -> list[tuple[bytes, Envelope]]:
    """The records of ``key`` on ``topic`` from the beginning, once ``wanted`` have arrived."""
    deadline = time.monotonic() + TIMEOUT_S
    partitions: set[int] | None = None
    while partitions is None and time.monotonic() < deadline:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            time.sleep(0.1)
    assert partitions, f"topic {topic} did not appear within {TIMEOUT_S} s"
    assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assignment)
    consumer.seek_to_beginning(*assignment)
    found: list[tuple[bytes, Envelope]] = []
    while len(found) < wanted and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                if record.key == key.encode():
                    found.append((record.value, Envelope.from_bytes(record.value)))
    return found


def test_customer_events_reach_the_topic_in_order_valid_and_without_personal_data(
    live_api: Api, kafka_settings: KafkaSettings, topic_reader: KafkaConsumer
) -> None:
    number = resident_id("19850612", 318)
    first_phone, second_phone = "138 1234 5678", "+86 139-8765-4321"
    manager = live_api.as_("manager.li")
    created = manager.post(
        CUSTOMERS,
        json=person(
            id_number=number,
            phone=first_phone,
            contacts=[{"role": "other", "name": "Wife", "phone": "137 0000 2222"}],
        ),
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    url = f"{CUSTOMERS}/{customer_id}"
    patched = manager.patch(
        url,
        json={
            "status": "dormant",
            "status_reason": "no transactions for a year",
            "phone": second_phone,
            "version": 1,
        },
    )
    assert patched.status_code == 200, patched.text
    snapshot = live_api.as_client("customer.financials").put(
        f"{url}/financials", json={"business_date": "2026-11-20", "deposits": "1000000.00"}
    )
    assert snapshot.status_code == 200, snapshot.text
    assert snapshot.json()["tiers"]["value_tier"] == "high"

    expected = [
        "customer.created",
        "customer.updated",
        "customer.status_changed",
        "customer.financials_updated",
        "customer.tier_changed",
    ]
    records = read_key(topic_reader, kafka_settings.topic("customer"), customer_id, len(expected))
    envelopes = [envelope for _, envelope in records]
    assert [e.type for e in envelopes] == expected

    for raw, envelope in records:
        validate_payload(envelope.type, envelope.version, envelope.data)
        assert envelope.source == "customer"
        assert envelope.key == customer_id
        assert envelope.data["customer_id"] == customer_id
        text = raw.decode()
        for clear in (
            number,
            first_phone,
            first_phone.replace(" ", ""),
            second_phone,
            "13987654321",
            "13700002222",
        ):
            assert clear not in text, f"{clear} in clear in {envelope.type}"
    assert len({e.id for e in envelopes}) == len(expected)
    assert [e.actor for e in envelopes] == ["manager.li"] * 3 + ["core-banking"] * 2

    created_e, updated, status, financials, tiers = (e.data for e in envelopes)
    assert (created_e["status"], created_e["segment"], created_e["org_unit"]) == (
        "active",
        "stock",
        "/HQ/U01/B01",
    )
    assert set(updated["changed"]) == {"phone", "status"}
    assert updated["status"] == "dormant"
    assert (status["old_status"], status["new_status"], status["reason"]) == (
        "active",
        "dormant",
        "no transactions for a year",
    )
    assert (financials["business_date"], financials["deposits"], financials["loans"]) == (
        "2026-11-20",
        "1000000.00",
        "0.00",
    )
    assert tiers["value_tier"] == "high" and tiers["as_of"] == "2026-11-20"
    value_change: dict[str, Any] = next(
        c for c in tiers["changes"] if c["dimension"] == "value_tier"
    )
    assert (value_change["old"], value_change["new"]) == (None, "high")
