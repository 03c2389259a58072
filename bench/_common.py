"""What the benchmarks share: temporary databases, free ports, percentiles."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@contextlib.contextmanager
def temporary_database(backend: str, directory: Path, stem: str = "bench") -> Iterator[str]:
    """A fresh database's SQLAlchemy URL: a new SQLite file in ``directory``, or a PostgreSQL
    database on the local server, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'{stem}-{uuid.uuid4().hex[:6]}.db'}"
        return
    name = f"crm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile ``p`` (0 to 100) of ``values``; NaN for none."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
