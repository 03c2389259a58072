"""Gateway settings from the environment: its own prefix, then the suite-wide one."""

from __future__ import annotations

import os

import pytest

from crmkit import devauth
from gateway.settings import GatewaySettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``CRM_*`` variable of the shell running the tests."""
    for name in os.environ:
        if name.startswith("CRM_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = GatewaySettings()
    assert settings.port == 8000
    assert settings.upstreams() == {
        "customer": "http://127.0.0.1:8001",
        "rating": "http://127.0.0.1:8002",
        "assignment": "http://127.0.0.1:8003",
        "visits": "http://127.0.0.1:8004",
        "notify": "http://127.0.0.1:8005",
    }
    assert settings.jwt_public_key_file == str(devauth.PUBLIC_KEY)
    assert settings.dev_issuer_key_file == str(devauth.PRIVATE_KEY)
    assert settings.dev_issuer_enabled is True


def test_gateway_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_GATEWAY_UPSTREAM_RATING", "http://rating.internal:9000/")
    monkeypatch.setenv("CRM_GATEWAY_DEV_ISSUER_ENABLED", "false")
    monkeypatch.setenv("CRM_GATEWAY_PORT", "9100")
    settings = GatewaySettings()
    assert settings.upstreams()["rating"] == "http://rating.internal:9000"
    assert settings.dev_issuer_enabled is False
    assert settings.port == 9100


def test_suite_prefix_and_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_JWT_PUBLIC_KEY_FILE", "/keys/suite.pem")
    assert GatewaySettings().jwt_public_key_file == "/keys/suite.pem"
    monkeypatch.setenv("CRM_GATEWAY_JWT_PUBLIC_KEY_FILE", "/keys/gateway.pem")
    assert GatewaySettings().jwt_public_key_file == "/keys/gateway.pem"
