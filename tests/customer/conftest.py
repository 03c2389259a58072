"""The customer service over HTTP on the database under test, with tokens of the seeded users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crmkit import devauth
from crmkit.crypto import generate_key
from crmkit.identity import CREDIT_CODE_ALPHABET
from crmkit.settings import KafkaSettings
from services.customer.app import create_app
from services.customer.settings import CustomerSettings
from tests.conftest import Databases

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def resident_id(birth: str = "19900307", serial: int = 457, region: str = "110101") -> str:
    """A valid resident id number (check digit computed) for a birth date and serial."""
    first17 = f"{region}{birth}{serial:03d}"
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def credit_code(body: str = "91350100M000100Y4") -> str:
    """A valid unified social credit code for its first 17 characters."""
    total = sum(CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(body, _CODE_WEIGHTS, strict=True))
    return body + CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def test_settings(
    databases: Databases, public_key: Path, kafka: KafkaSettings | None = None, **extra: Any
) -> CustomerSettings:
    values: dict[str, Any] = {
        "database_url": databases.url("customer"),
        "jwt_public_key_file": str(public_key),
        "embedded_workers": False,
        "readiness_requires_broker": False,
        "field_encryption_keys": f"k1:{generate_key()}",
        "field_active_key_id": "k1",
        "field_index_key": generate_key(),
    }
    if kafka is not None:
        values["kafka"] = kafka
    values.update(extra)
    return CustomerSettings(**values)


# A helper, not a test, although its name starts with "test_" (modules import it).
test_settings.__test__ = False  # type: ignore[attr-defined]


@dataclass
class Api:
    """A test client plus tokens: ``api.as_("manager.li").get(...)``."""

    client: TestClient
    tokens: dict[str, str]
    private_pem: str

    def as_(self, user: str) -> _As:
        return _As(self.client, {"Authorization": f"Bearer {self.token(user)}"})

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = devauth.token_for(devauth.seeded_users()[user], self.private_pem)
        return self.tokens[user]

    def as_client(self, scope: str) -> _As:
        token = devauth.sign(
            {"sub": "core-banking", "client": True, "scope": scope, "roles": [], "org_unit": "/"},
            self.private_pem,
        )
        return _As(self.client, {"Authorization": f"Bearer {token}"})


@dataclass
class _As:
    client: TestClient
    headers: dict[str, str]

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.request("PATCH", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        return self.request("PUT", url, **kwargs)


@pytest.fixture
def customer_settings(databases: Databases, dev_keys: tuple[str, Path]) -> CustomerSettings:
    return test_settings(databases, dev_keys[1])


@pytest.fixture
def api(customer_settings: CustomerSettings, dev_keys: tuple[str, Path]) -> Iterator[Api]:
    with TestClient(create_app(customer_settings)) as client:
        yield Api(client, {}, dev_keys[0])


def person(**overrides: Any) -> dict[str, Any]:
    """A valid individual stock customer in outlet /HQ/U01/B01."""
    body: dict[str, Any] = {
        "kind": "individual",
        "name": "Zhang San 张三",
        "org_unit": "/HQ/U01/B01",
        "business_line": "personal",
        "id_number": resident_id(),
        "phone": "138 1234 5678",
    }
    body.update(overrides)
    return body


def firm(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "corporate",
        "name": "Hengda Farm Machinery Co., Ltd.",
        "org_unit": "/HQ/U01/B01",
        "business_line": "corporate",
        "credit_code": credit_code(),
        "ownership_type": "private",
    }
    body.update(overrides)
    return body


CreateFn = Callable[..., dict[str, Any]]


# Modules of pure rules; every other module here talks to a real database.
PURE_MODULES = frozenset({"test_identity.py", "test_tiers.py", "test_segments.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of the customer service on a real database run again on PostgreSQL in CI."""
    for item in items:
        if item.path.parent.name == "customer" and item.path.name not in PURE_MODULES:
            item.add_marker(pytest.mark.integration)
