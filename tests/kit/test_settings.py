"""Settings: the service prefix wins over the suite prefix; embedded defaults are safe."""

from __future__ import annotations

import pytest

from services.customer.settings import CustomerSettings
from services.rating.settings import RatingSettings


def test_suite_prefix_applies_to_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_JWT_AUDIENCE", "bank")
    assert CustomerSettings().jwt_audience == "bank"
    assert RatingSettings().jwt_audience == "bank"


def test_service_prefix_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "sqlite:///shared.db")
    monkeypatch.setenv("CRM_CUSTOMER_DATABASE_URL", "postgresql+psycopg://db/customer")
    assert CustomerSettings().database_url == "postgresql+psycopg://db/customer"
    assert RatingSettings().database_url == "sqlite:///shared.db"


def test_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CRM_CUSTOMER_DATABASE_URL", "CRM_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    settings = CustomerSettings()
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith(
        "var/customer.db"
    )
    assert settings.embedded_workers is True
    assert settings.topic == "crm.customer"
    assert settings.dead_letter_topic == "crm.dlq.customer"


def test_kafka_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("CRM_KAFKA_NAMESPACE", "uat")
    settings = CustomerSettings()
    assert settings.kafka.bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    assert settings.topic == "uat.customer"
