"""Customer master: bulk import into PostgreSQL next to a raw ``COPY`` of the same file, and read
latency through the service at 50 concurrent clients.

The import runs the service's own import job (validation, identity check digits, encryption and
blind indexes, upserts by identity, ``customer.created`` events in the outbox, progress and the
per-row error report) on a CSV of generated customers; the baseline is PostgreSQL's ``COPY`` of the
same file into a table of the same columns, in the same run. Then the customer service runs under
uvicorn on the imported database and 50 concurrent clients read customers by id and filtered
lists through HTTP with a token; the baseline is ``/healthz`` at the same concurrency (the HTTP
floor of the same process).

Goals (from the issue): import at least 25,000 rows/s and within 4x of raw COPY; GET-by-id and
filtered-list p50/p99 reported.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import func, select

from bench._common import PG_ADMIN_DSN, PG_URL, free_port, get, load
from crmkit import devauth
from crmkit.crypto import generate_key
from crmkit.identity import CREDIT_CODE_ALPHABET
from services.customer import import_cli
from services.customer.app import build_runtime
from services.customer.models import ImportJob, kit
from services.customer.schemas_imports import ImportFormat, ImportKind
from services.customer.settings import CustomerSettings

NAME = "customer_import"
REPO = Path(__file__).resolve().parent.parent
COLUMNS = (
    "kind",
    "segment",
    "name",
    "org_unit",
    "business_line",
    "id_number",
    "credit_code",
    "phone",
    "address",
    "core_customer_no",
    "archive_number",
    "importance",
)
ORG_UNITS = tuple(f"/HQ/U0{u}/B0{b}" for u in range(1, 4) for b in range(1, 6))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_FIRST_BIRTH = date(1950, 1, 1)
_BIRTH_DAYS = 20000


@dataclass(frozen=True)
class Size:
    label: str
    rows: int
    requests: int
    clients: int = 50


SMALL = Size("small", rows=100_000, requests=2_000)
# Worker processes preparing the chunks: the service's default where it uses them (more than two
# cores), else two, to show what they give on this machine.
WORKERS = CustomerSettings().import_workers or 2
FULL = Size("full", rows=1_000_000, requests=10_000)


def resident_id(i: int) -> str:
    """A unique valid resident id for ``i`` < 20,000,000 (birth date and serial from ``i``)."""
    birth = _FIRST_BIRTH + timedelta(days=i % _BIRTH_DAYS)
    first17 = f"110101{birth:%Y%m%d}{i // _BIRTH_DAYS:03d}"
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def credit_code(i: int) -> str:
    """A unique valid unified social credit code for ``i``."""
    digits = []
    n = i
    for _ in range(9):
        n, r = divmod(n, 31)
        digits.append(CREDIT_CODE_ALPHABET[r])
    body = "91350100" + "".join(reversed(digits))
    total = sum(CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(body, _CODE_WEIGHTS, strict=True))
    return body + CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def generate_csv(path: Path, rows: int, seed: int = 7) -> None:
    """Generated customers: 70% individuals, 20% farm households, 10% corporates, streamed."""
    rnd = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for i in range(rows):
            draw = rnd.random()
            org = ORG_UNITS[i % len(ORG_UNITS)]
            phone = f"13{rnd.randrange(10**9):09d}" if rnd.random() > 0.03 else ""
            if draw < 0.9:
                kind, line = (
                    ("individual", "personal") if draw < 0.7 else ("farm_household", "agricultural")
                )
                name = rnd.choice(SURNAMES) + rnd.choice(GIVEN) + rnd.choice(GIVEN)
                ident, code = resident_id(i), ""
            else:
                kind, line = "corporate", "corporate"
                name = f"{rnd.choice(SURNAMES)}{rnd.choice(GIVEN)}农业发展有限公司{i}"
                ident, code = "", credit_code(i)
            writer.writerow(
                (
                    kind,
                    "stock",
                    name,
                    org,
                    line,
                    ident,
                    code,
                    phone,
                    f"{org[-3:]}村{rnd.randrange(1, 300)}号",
                    f"C{i:010d}",
                    f"AR{i:08d}",
                    rnd.choice(("key", "important", "general")),
                )
            )


@contextlib.contextmanager
def temporary_database() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database: (SQLAlchemy URL, psycopg DSN); dropped afterwards."""
    name = f"crm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name), f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def raw_copy(dsn: str, path: Path) -> float:
    """Seconds for PostgreSQL to COPY the file into a table of the same columns."""
    columns = ", ".join(f"{c} text" for c in COLUMNS)
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE TABLE raw_customers (id bigserial primary key, {columns})")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY raw_customers ({', '.join(COLUMNS)}) "
                "FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy,
            path.open("rb") as source,
        ):
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        return time.perf_counter() - started


def stored_copy(source_dsn: str, target_dsn: str) -> tuple[float, list[str]]:
    """Seconds for PostgreSQL to COPY every row the import stored (customers, outbox, …), as
    stored, into the same tables of a freshly migrated database: the same columns, types,
    constraints and indexes. The database's own floor for writing what the import writes."""
    with psycopg.connect(source_dsn) as source:
        names = [
            name
            for (name,) in source.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version' ORDER BY 1"
            )
        ]
        tables = [
            name
            for name in names
            if source.execute(f"SELECT EXISTS (SELECT 1 FROM {name})").fetchone() == (True,)
        ]
        dumps: dict[str, bytes] = {}
        for table in tables:
            buffer = io.BytesIO()
            with source.cursor() as cur, cur.copy(f"COPY {table} TO STDOUT (FORMAT binary)") as c:
                for chunk in c:
                    buffer.write(chunk)
            dumps[table] = buffer.getvalue()
    with psycopg.connect(target_dsn) as target:
        started = time.perf_counter()
        with target.cursor() as cur:
            for table in tables:
                with cur.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as c:
                    c.write(dumps[table])
        target.commit()
        return time.perf_counter() - started, tables


def _service_env(url: str, keys: tuple[Path, Path], var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CRM_VAR_DIR": str(var_dir),
            "CRM_CUSTOMER_DATABASE_URL": url,
            "CRM_CUSTOMER_EMBEDDED_WORKERS": "false",
            "CRM_CUSTOMER_READINESS_REQUIRES_BROKER": "false",
            "CRM_JWT_PUBLIC_KEY_FILE": str(keys[1]),
            "CRM_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def read_latency(
    url: str, env: dict[str, str], size: Size, token: str, ids: list[str]
) -> dict[str, Any]:
    """Start the service on the imported database and read through HTTP."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "services.customer.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            # Clients keep their connections between phases; the default 5 s would close the
            # ones idle while the last requests of a phase finish, under the next phase's feet.
            "--timeout-keep-alive",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        rnd = random.Random(11)
        by_id = [f"/api/v1/customers/{rnd.choice(ids)}" for _ in range(size.requests)]
        lists = [
            f"/api/v1/customers?org_unit={rnd.choice(ORG_UNITS)}&kind=individual&limit=20"
            f"&q={rnd.choice(SURNAMES)}"
            for _ in range(size.requests)
        ]
        health = ["/healthz"] * size.requests
        labels = ("healthz", "get_by_id", "list")
        warm = size.clients * 2
        phases = [(get(paths[:warm]), get(paths)) for paths in (health, by_id, lists)]
        out: dict[str, Any] = dict(
            zip(labels, load(base, phases, size.clients, token), strict=True)
        )
        return out
    finally:
        proc.terminate()
        proc.wait(10)


def service_import(
    url: str, csv_path: Path, work: Path, field_env: dict[str, str], workers: int
) -> dict[str, Any]:
    """Import the file with the service's import job (as ``import_cli`` runs it), timed.

    ``workers`` processes prepare the chunks (0: the job's process does), whatever the file's
    size: the small run measures the way a large file is imported.
    """
    settings = CustomerSettings(
        database_url=url,
        field_encryption_keys=field_env["CRM_CUSTOMER_FIELD_ENCRYPTION_KEYS"],
        field_active_key_id=field_env["CRM_CUSTOMER_FIELD_ACTIVE_KEY_ID"],
        field_index_key=field_env["CRM_CUSTOMER_FIELD_INDEX_KEY"],
        import_dir=work / "imports",
        embedded_workers=False,
        import_workers=workers,
        import_parallel_min_bytes=0,
    )
    runtime = build_runtime(settings)
    runtime.migrate()  # not timed: the schema exists before an import in a running bank
    runtime.engine.dispose()
    settings.run_migrations_on_start = False
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    status = import_cli.run(settings, csv_path, ImportKind.customers, ImportFormat.csv, out, err)
    seconds = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"the import failed: {out.getvalue()} {err.getvalue()[-2000:]}")
    runtime = build_runtime(settings)
    with runtime.session_factory() as session:
        job = session.scalars(select(ImportJob)).one()
        created, failed = job.rows_created, job.rows_failed
        events = session.execute(select(func.count()).select_from(kit.outbox)).scalar_one()
    runtime.engine.dispose()
    return {"seconds": seconds, "created": created, "failed": failed, "events": events}


def run(full: bool = False, database: str = "postgres", verbose: bool = False) -> dict[str, Any]:
    """Run the benchmark (always on PostgreSQL: the issue measures the import there)."""
    size = FULL if full else SMALL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="crm-bench-import-") as tmp:
        work = Path(tmp)
        csv_path = work / "customers.csv"
        generate_csv(csv_path, size.rows)
        keys = devauth.ensure_keys(work / "keys")
        token = devauth.token_for(devauth.seeded_users()["admin"], keys[0].read_text())
        field_env = {
            "CRM_CUSTOMER_FIELD_ENCRYPTION_KEYS": f"k1:{generate_key()}",
            "CRM_CUSTOMER_FIELD_ACTIVE_KEY_ID": "k1",
            "CRM_CUSTOMER_FIELD_INDEX_KEY": generate_key(),
        }
        with temporary_database() as (_, copy_dsn):
            copy_s = raw_copy(copy_dsn, csv_path)
        with temporary_database() as (url, _):
            alone = service_import(url, csv_path, work, field_env, workers=0)
        with temporary_database() as (url, dsn):
            result = service_import(url, csv_path, work, field_env, workers=WORKERS)
            env = {**_service_env(url, keys, work / "var"), **field_env}
            with psycopg.connect(dsn) as conn:
                ids = [r[0] for r in conn.execute("SELECT id FROM customers LIMIT 5000")]
            with temporary_database() as (floor_url, floor_dsn):
                floor_runtime = build_runtime(CustomerSettings(database_url=floor_url))
                floor_runtime.migrate()
                floor_runtime.engine.dispose()
                stored_s, stored_tables = stored_copy(dsn, floor_dsn)
            latency = read_latency(url, env, size, token, ids)
    import_rps = size.rows / result["seconds"]
    alone_rps = size.rows / alone["seconds"]
    copy_rps = size.rows / copy_s
    stored_rps = size.rows / stored_s
    figures = {
        "rows": size.rows,
        "import_rows_per_s": round(import_rps, 1),
        "import_s": round(result["seconds"], 2),
        "import_created": result["created"],
        "import_failed": result["failed"],
        "import_events": result["events"],
        "import_workers": WORKERS,
        "import_in_process_rows_per_s": round(alone_rps, 1),
        "copy_ratio": round(copy_rps / import_rps, 2),
        "stored_copy_ratio": round(stored_rps / import_rps, 2),
        "get_by_id_p50_ms": latency["get_by_id"]["p50_ms"],
        "get_by_id_p99_ms": latency["get_by_id"]["p99_ms"],
        "get_by_id_rps": latency["get_by_id"]["rps"],
        "list_p50_ms": latency["list"]["p50_ms"],
        "list_p99_ms": latency["list"]["p99_ms"],
        "list_rps": latency["list"]["rps"],
        "read_failures": latency["get_by_id"]["failures"] + latency["list"]["failures"],
        "clients": size.clients,
        "size": size.label,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    baseline = {
        "copy_rows_per_s": round(copy_rps, 1),
        "copy_s": round(copy_s, 2),
        "stored_copy_rows_per_s": round(stored_rps, 1),
        "stored_copy_s": round(stored_s, 2),
        "stored_copy_tables": stored_tables,
        "healthz_p50_ms": latency["healthz"]["p50_ms"],
        "healthz_p99_ms": latency["healthz"]["p99_ms"],
    }
    met = "met" if import_rps >= 25_000 else "MISSED"
    within = "met" if copy_rps / import_rps <= 4 else "MISSED"
    print(f"{NAME}: size {size.label}, {size.rows} rows, PostgreSQL, {figures['elapsed_s']} s")
    print(f"  raw COPY          {copy_rps:10.0f} rows/s ({copy_s:.2f} s; the CSV as text)")
    print(
        f"  stored-rows COPY  {stored_rps:10.0f} rows/s ({stored_s:.2f} s; what the import "
        f"stored, into the same tables and indexes: {', '.join(stored_tables)})"
    )
    print(
        f"  service import    {import_rps:10.0f} rows/s ({result['seconds']:.2f} s, "
        f"{WORKERS} workers; {result['created']} created, {result['failed']} failed)"
    )
    print(
        f"  in-process import {alone_rps:10.0f} rows/s ({alone['seconds']:.2f} s; the job's "
        f"process prepares; with {WORKERS} workers {import_rps / alone_rps:.2f}x that)"
    )
    print(
        f"  import rows/s goal >= 25,000: {met}; COPY is {copy_rps / import_rps:.2f}x faster "
        f"(goal <= 4x: {within}); COPY of the stored rows is {stored_rps / import_rps:.2f}x faster"
    )
    for label in ("healthz", "get_by_id", "list"):
        f = latency[label]
        print(
            f"  {label:<10} at {size.clients} clients: p50 {f['p50_ms']:7.2f} ms  "
            f"p99 {f['p99_ms']:7.2f} ms  {f['rps']:8.1f} req/s  failures {f['failures']}"
        )
    print(json.dumps({"bench": NAME, "figures": figures, "baseline": baseline}))
    return figures


if __name__ == "__main__":
    run(full="--full" in sys.argv)
