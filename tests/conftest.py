"""Fixtures shared by every test: the real broker, real databases, keys and tokens.

The database backend of the integration tests is chosen by ``CRM_TEST_DATABASE`` (``sqlite``, the
default, or ``postgres``); tests about locking or concurrent writers ask for PostgreSQL directly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from crmkit import devauth
from crmkit.broker import EmbeddedBroker
from crmkit.settings import KafkaSettings

PG_ADMIN_DSN = os.environ.get("CRM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_BACKEND = os.environ.get("CRM_TEST_DATABASE", "sqlite")


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker (Tansu) on a free loopback port, one per test process."""
    instance = EmbeddedBroker()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def kafka_settings(broker: EmbeddedBroker) -> KafkaSettings:
    """Broker settings in a namespace of the test's own: its topics and groups are fresh."""
    return KafkaSettings(bootstrap_servers=broker.bootstrap, namespace=f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="session")
def dev_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A key pair for tokens: (private PEM, public key file)."""
    directory = tmp_path_factory.mktemp("keys")
    private_path, public_path = devauth.ensure_keys(directory)
    return private_path.read_text(), public_path


@pytest.fixture(scope="session")
def token_for(dev_keys: tuple[str, Path]) -> Callable[[str], str]:
    private, _ = dev_keys
    users = devauth.seeded_users()

    def make(username: str) -> str:
        return devauth.token_for(users[username], private)

    return make


@pytest.fixture(scope="session")
def auth_header(token_for: Callable[[str], str]) -> Callable[[str], dict[str, str]]:
    def make(username: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(username)}"}

    return make


def _create_pg_database() -> str:
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Databases:
    """Creates databases for a test on one backend and drops them afterwards."""

    def __init__(self, backend: str, directory: Path) -> None:
        self.backend = backend
        self.directory = directory
        self._pg: list[str] = []

    def url(self, label: str) -> str:
        if self.backend == "postgres":
            name = _create_pg_database()
            self._pg.append(name)
            return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        return f"sqlite:///{self.directory / (label + '-' + uuid.uuid4().hex[:6] + '.db')}"

    def drop_all(self) -> None:
        for name in self._pg:
            _drop_pg_database(name)


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[Databases]:
    """Databases on the backend under test (``CRM_TEST_DATABASE``)."""
    dbs = Databases(TEST_BACKEND, tmp_path)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def pg_databases(tmp_path: Path) -> Iterator[Databases]:
    """Databases on PostgreSQL whatever the backend under test (locking, concurrent writers)."""
    dbs = Databases("postgres", tmp_path)
    yield dbs
    dbs.drop_all()
