"""Starts the whole suite as ``make run`` does and checks that it is ready and events flow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crmkit.broker import free_port
from crmkit.devstack import SERVICES
from tests.customer.conftest import resident_id

pytestmark = [pytest.mark.smoke, pytest.mark.xdist_group("smoke")]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    ports = {name: free_port() for name in ("gateway", *SERVICES)}
    env = {
        **os.environ,
        "CRM_VAR_DIR": str(tmp_path_factory.mktemp("var")),
        "PYTHONPATH": str(REPO),
        "CRM_BROKER_PORT": str(free_port()),
    }
    env.update({f"CRM_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmkit.devstack", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield ports
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError("the suite did not stop on Ctrl-C within 30 s") from None


def _get(url: str, **kwargs: object) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=3, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError:
        return None


def test_every_service_and_the_gateway_become_ready(stack: dict[str, int]) -> None:
    gateway = f"http://127.0.0.1:{stack['gateway']}"
    deadline = time.monotonic() + 120
    ready = None
    while time.monotonic() < deadline:
        ready = _get(f"{gateway}/readyz")
        if ready is not None and ready.status_code == 200:
            break
        time.sleep(0.5)
    assert ready is not None and ready.status_code == 200, ready.text if ready else "no answer"
    assert set(ready.json()["upstreams"]) == set(SERVICES)
    for name in SERVICES:
        resp = _get(f"http://127.0.0.1:{stack[name]}/readyz")
        assert resp is not None and resp.status_code == 200, name
        assert resp.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_events_flow_from_customer_to_every_consumer(stack: dict[str, int]) -> None:
    gateway = f"http://127.0.0.1:{stack['gateway']}"
    login = httpx.post(
        f"{gateway}/api/v1/auth/token",
        json={"username": "admin", "password": "crm-dev"},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    created = httpx.post(
        f"{gateway}/api/v1/customers",
        headers=headers,
        timeout=10,
        json={
            "kind": "farm_household",
            "name": "Wang Dahai",
            "org_unit": "/HQ/U01/B01",
            "business_line": "agricultural",
            "id_number": resident_id("19680402", 135),
        },
    )
    assert created.status_code == 201, created.text
    assert (
        httpx.get(
            f"{gateway}/api/v1/customers/{created.json()['id']}", headers=headers, timeout=10
        ).json()["name"]
        == "Wang Dahai"
    )
    for name in ("rating", "assignment", "visits", "notify"):
        deadline = time.monotonic() + 60
        applied = 0
        while time.monotonic() < deadline and applied < 1:
            status = httpx.get(f"{gateway}/api/v1/admin/{name}/status", headers=headers, timeout=10)
            assert status.status_code == 200, status.text
            applied = status.json()["consumer_applied"]
            time.sleep(0.3)
        assert applied >= 1, f"{name} did not receive customer.created"
