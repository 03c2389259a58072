"""The visits service over HTTP on the database under test. Customers, their owners and their
figures reach it as in production: as customer and assignment events applied by its own
consumer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.visits.app import create_app
from services.visits.settings import VisitsSettings
from tests.conftest import Databases
from tests.customer.conftest import Api
from tests.delivery import (
    deliver,
    events_of,
    financials,
    known_customer,
    limit_approved,
    money,
    owned_by,
    risk_flagged,
    runtime_of,
    status_changed,
)

__all__ = [
    "api",
    "deliver",
    "events_of",
    "financials",
    "known_customer",
    "limit_approved",
    "money",
    "owned_by",
    "risk_flagged",
    "runtime_of",
    "status_changed",
]


def visits_settings(databases: Databases, public_key: Path) -> VisitsSettings:
    return VisitsSettings(
        database_url=databases.url("visits"),
        jwt_public_key_file=str(public_key),
        embedded_workers=False,
        readiness_requires_broker=False,
    )


@pytest.fixture
def api(databases: Databases, dev_keys: tuple[str, Path]) -> Iterator[Api]:
    with TestClient(create_app(visits_settings(databases, dev_keys[1]))) as client:
        yield Api(client, {}, dev_keys[0])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of the visits service on a real database run again on PostgreSQL in CI."""
    for item in items:
        if item.path.parent.name == "visits":
            item.add_marker(pytest.mark.integration)
