"""The assignment service over HTTP on the database under test, with the seeded users' org tree
and staff, and customers known from ``customer.created`` events applied by its own consumer."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crmkit.consumer import RawRecord
from crmkit.errors import Conflict
from crmkit.events import build_envelope
from services.assignment.app import create_app
from services.assignment.settings import AssignmentSettings
from services.customer.events import CUSTOMER_CREATED
from tests.conftest import Databases
from tests.customer.conftest import Api

UNITS = [
    ("/HQ", "Head office 总行", "head_office"),
    ("/HQ/U01", "Union 01 县联社", "county_union"),
    ("/HQ/U01/B01", "Outlet B01", "outlet"),
    ("/HQ/U01/B02", "Outlet B02", "outlet"),
    ("/HQ/U02", "Union 02", "county_union"),
    ("/HQ/U02/B01", "Outlet U02-B01", "outlet"),
]
# The seeded users who hold books, plus staff of another union.
STAFF = [
    ("head.sun", ["outlet_head"], "/HQ/U01/B01", None),
    ("manager.li", ["customer_manager"], "/HQ/U01/B01", 3),
    ("manager.zhou", ["customer_manager"], "/HQ/U01/B02", None),
    ("teller.wang", ["teller"], "/HQ/U01/B01", None),
    ("auditor.chen", ["auditor"], "/HQ", None),
    ("manager.far", ["customer_manager"], "/HQ/U02/B01", None),
]


def assignment_settings(databases: Databases, public_key: Path) -> AssignmentSettings:
    return AssignmentSettings(
        database_url=databases.url("assignment"),
        jwt_public_key_file=str(public_key),
        embedded_workers=False,
        readiness_requires_broker=False,
    )


@pytest.fixture
def api(databases: Databases, dev_keys: tuple[str, Path]) -> Iterator[Api]:
    with TestClient(create_app(assignment_settings(databases, dev_keys[1]))) as client:
        yield Api(client, {}, dev_keys[0])


@pytest.fixture
def org(api: Api) -> Api:
    """The org tree and staff of the tests, entered through the API by the administrator."""
    admin = api.as_("admin")
    for path, name, kind in UNITS:
        resp = admin.post("/api/v1/org-units", json={"path": path, "name": name, "type": kind})
        assert resp.status_code == 201, resp.text
    for staff_id, roles, unit, capacity in STAFF:
        body: dict[str, Any] = {"id": staff_id, "name": staff_id, "roles": roles, "org_unit": unit}
        if capacity is not None:
            body["capacity"] = capacity
        resp = admin.post("/api/v1/staff", json=body)
        assert resp.status_code == 201, resp.text
    return api


_offsets = itertools.count()


def known_customer(api: Api, org_unit: str = "/HQ/U01/B01", name: str = "Zhang San") -> str:
    """A customer the service learns of from a ``customer.created`` event, as in production."""
    customer_id = str(uuid.uuid4())
    envelope = build_envelope(
        CUSTOMER_CREATED,
        {
            "customer_id": customer_id,
            "kind": "individual",
            "name": name,
            "org_unit": org_unit,
            "business_line": "personal",
            "status": "active",
            "segment": "stock",
        },
        source="customer",
        key=customer_id,
        actor="manager.li",
    )
    record = RawRecord("crm.customer", 0, next(_offsets), envelope.to_bytes())
    api.client.app.state.runtime.applier.apply_batch([record])  # type: ignore[attr-defined]
    return customer_id


def race(runtime: Any, calls: list[Callable[..., str]]) -> Counter[str]:
    """Run ``call(session, recorder)`` for every call at once, each in its own session and
    connection (a barrier lines them up); count their outcomes, a Conflict counting as
    "conflict"."""
    barrier = threading.Barrier(len(calls))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(call: Callable[..., str]) -> None:
        with runtime.session_factory() as session:
            barrier.wait()
            try:
                outcome = call(session, runtime.recorder)
            except Conflict:
                outcome = "conflict"
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of the assignment service on a real database run again on PostgreSQL in CI."""
    for item in items:
        if item.path.parent.name == "assignment":
            item.add_marker(pytest.mark.integration)
