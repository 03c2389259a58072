"""Fixtures of the gateway tests: real services and the gateway, each a uvicorn server in a thread.

Nothing of ours is mocked: the customer service (and, where a test needs them, the other four)
runs its real app on a real database; the gateway talks to it over loopback HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from crmkit.broker import free_port
from crmkit.settings import KafkaSettings, ServiceSettings
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from services.assignment.app import create_app as create_assignment
from services.assignment.settings import AssignmentSettings
from services.customer.app import create_app as create_customer
from services.customer.settings import CustomerSettings
from services.notify.app import create_app as create_notify
from services.notify.settings import NotifySettings
from services.rating.app import create_app as create_rating
from services.rating.settings import RatingSettings
from services.visits.app import create_app as create_visits
from services.visits.settings import VisitsSettings
from tests.conftest import Databases

SERVICE_APPS: dict[str, tuple[type[ServiceSettings], Callable[[Any], ASGIApp]]] = {
    "customer": (CustomerSettings, create_customer),
    "rating": (RatingSettings, create_rating),
    "assignment": (AssignmentSettings, create_assignment),
    "visits": (VisitsSettings, create_visits),
    "notify": (NotifySettings, create_notify),
}


class ServerThread:
    """A uvicorn server for one ASGI app on a loopback port of its own, run in a thread."""

    def __init__(self, app: ASGIApp) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()


def dead_url() -> str:
    """An address where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def serve() -> Iterator[Callable[[ASGIApp], ServerThread]]:
    """Start an app as a server; every server started is stopped after the test."""
    started: list[ServerThread] = []

    def start(app: ASGIApp) -> ServerThread:
        server = ServerThread(app).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def start_service(
    serve: Callable[[ASGIApp], ServerThread],
    databases: Databases,
    dev_keys: tuple[str, Path],
) -> Callable[..., ServerThread]:
    """Start one real service on a fresh database; ``kafka`` for a ready broker check."""
    _, public_key = dev_keys

    def start(name: str, kafka: KafkaSettings | None = None) -> ServerThread:
        settings_cls, factory = SERVICE_APPS[name]
        extra: dict[str, Any] = {"kafka": kafka} if kafka else {}
        settings = settings_cls(
            database_url=databases.url(name),
            embedded_workers=False,
            jwt_public_key_file=str(public_key),
            log_json=False,
            **extra,
        )
        return serve(factory(settings))

    return start


@pytest.fixture
def start_gateway(
    serve: Callable[[ASGIApp], ServerThread], dev_keys: tuple[str, Path]
) -> Callable[..., ServerThread]:
    """Start a gateway; upstreams not given point at addresses where nothing listens."""
    _, public_key = dev_keys

    def start(**overrides: Any) -> ServerThread:
        values: dict[str, Any] = {f"upstream_{name}": dead_url() for name in SERVICE_APPS}
        values |= {
            "jwt_public_key_file": str(public_key),
            "dev_issuer_key_file": str(public_key.with_name("dev-jwt.pem")),
            "probe_timeout_s": 10.0,
            "log_json": False,
        }
        return serve(create_gateway(GatewaySettings(**(values | overrides))))

    return start


@pytest.fixture
def customer(start_service: Callable[..., ServerThread]) -> ServerThread:
    """The customer service (no broker: its readiness says so, its API works)."""
    return start_service("customer")


@pytest.fixture
def gateway(start_gateway: Callable[..., ServerThread], customer: ServerThread) -> ServerThread:
    """A gateway in front of the customer service; the other upstreams are down."""
    return start_gateway(upstream_customer=customer.url)


@pytest.fixture
def client(gateway: ServerThread) -> Iterator[httpx.Client]:
    """An HTTP client of the gateway."""
    with httpx.Client(base_url=gateway.url, trust_env=False, timeout=30) as http:
        yield http
