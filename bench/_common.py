"""What the benchmarks share: temporary databases, free ports, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
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


Request = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body
# A phase of a load: the requests that open the connections and fill caches (not measured),
# then the requests measured.
Phase = tuple[list[Request], list[Request]]


def get(paths: list[str]) -> list[Request]:
    return [("GET", path, None) for path in paths]


async def _load(
    base: str, phases: list[Phase], clients: int, token: str
) -> list[tuple[list[float], int, float]]:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    results: list[tuple[list[float], int, float]] = []
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60
    ) as client:

        async def phase(requests: list[Request]) -> tuple[list[float], int, float]:
            queue: asyncio.Queue[Request] = asyncio.Queue()
            for r in requests:
                queue.put_nowait(r)
            latencies: list[float] = []
            failures = 0

            async def worker() -> None:
                nonlocal failures
                while True:
                    try:
                        method, path, body = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    started = time.perf_counter()
                    try:
                        status = (await client.request(method, path, json=body)).status_code
                    except httpx.TransportError:
                        status = 0  # counted as a failure, not hidden: the figure prints it
                    latencies.append((time.perf_counter() - started) * 1000)
                    if status >= 300:
                        failures += 1

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            return latencies, failures, time.perf_counter() - began

        for warm_up, measured in phases:
            await phase(warm_up)
            results.append(await phase(measured))
    return results


def load(base: str, phases: list[Phase], clients: int, token: str) -> list[dict[str, Any]]:
    """Each phase's requests by ``clients`` concurrent clients over kept-alive connections
    (opened by the phase's warm-up first): p50/p99 latency (ms), requests/s and failures."""
    return [
        {
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
            "rps": round(len(latencies) / elapsed, 1),
            "failures": failures,
        }
        for latencies, failures, elapsed in asyncio.run(_load(base, phases, clients, token))
    ]
