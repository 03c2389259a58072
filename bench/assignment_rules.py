"""Assignment rules: place every unowned customer of a bank with its staff, and read a book.

The bank: a head office, 10 unions of 10 outlets each; per outlet an outlet head, five customer
managers (two personal, two agricultural, one corporate line), a wealth manager, a lobby manager
and two tellers, with a president per union and a head-office leader (1,011 staff). The customers
(known to the service as its consumer would have kept them: ``customer_refs`` and
``customer_profiles``) have tiers, wealth layers, VIP levels and loans drawn from a fixed seed.
Timed: the run as ``POST /assignment-runs`` does it — planning by the policy in force (one query
for the customers, one for the staff) and applying it (ownerships and ``ownership.assigned``
events, in chunks). Baseline: inserting the same number of ownership rows in bulk, without rules,
events or checks, into a table of the same shape in the same database — the floor of the write.

Then a manager's book of 800 customers is read through the service's HTTP routes
(``GET /staff/{id}/book``, 100 a page) in-process, next to ``/healthz`` on the same client.

Goal (from the issue): 100,000 customers across 1,000 staff in under 10 s; the book query p99
reported.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Column, Index, MetaData, Table, func, select, text

from bench._common import temporary_database
from crmkit import devauth
from crmkit.db import utcnow
from crmkit.outbox import insert_rows
from services.assignment import rules
from services.assignment.app import build_runtime, create_app
from services.assignment.models import Base, CustomerProfile, OrgUnit, Ownership, Staff
from services.assignment.settings import AssignmentSettings

NAME = "assignment_rules"
OUTLET_STAFF = (
    ("head", ["outlet_head"], None, None),
    ("cm1", ["customer_manager"], "personal", 1500),
    ("cm2", ["customer_manager"], "personal", 1500),
    ("cm3", ["customer_manager"], "agricultural", 1500),
    ("cm4", ["customer_manager"], "agricultural", 1500),
    ("cm5", ["customer_manager"], "corporate", 1500),
    ("wm", ["wealth_manager"], None, 1500),
    ("lobby", ["lobby_manager"], None, 1500),
    ("teller1", ["teller"], None, None),
    ("teller2", ["teller"], None, None),
)
BOOK_SIZE = 800
BOOK_READS = 300


@dataclass(frozen=True)
class Size:
    label: str
    customers: int
    unions: int
    outlets_per_union: int


SMALL = Size("small", 100_000, 10, 10)
FULL = Size("full", 100_000, 10, 10)


def seed_bank(runtime: Any, size: Size) -> list[str]:
    """The org tree, the staff and the customers; returns the outlets' paths."""
    now = utcnow()
    units = [{"path": "/HQ", "name": "HQ", "type": "head_office", "parent_path": None}]
    staff: list[dict[str, Any]] = [_staff("leader.hq", ["head_office_leader"], "/HQ", None, None)]
    outlets: list[str] = []
    for u in range(size.unions):
        union = f"/HQ/U{u:02d}"
        units.append({"path": union, "name": union, "type": "county_union", "parent_path": "/HQ"})
        staff.append(_staff(f"president.u{u:02d}", ["branch_president"], union, None, None))
        for b in range(size.outlets_per_union):
            outlet = f"{union}/B{b:02d}"
            outlets.append(outlet)
            units.append({"path": outlet, "name": outlet, "type": "outlet", "parent_path": union})
            for key, roles, line, capacity in OUTLET_STAFF:
                staff.append(_staff(f"{key}.u{u:02d}b{b:02d}", roles, outlet, line, capacity))
    rnd = random.Random(7)
    refs: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    for n in range(size.customers):
        customer_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        kind, line = rnd.choices(
            (
                ("individual", "personal"),
                ("farm_household", "agricultural"),
                ("corporate", "corporate"),
            ),
            weights=(70, 20, 10),
        )[0]
        draw = rnd.random()
        refs.append(
            {
                "customer_id": customer_id,
                "name": f"Customer {n}",
                "kind": kind,
                "org_unit": outlets[n % len(outlets)],
                "business_line": line,
                "status": "active",
                "as_of": now,
            }
        )
        profiles.append(
            {
                "customer_id": customer_id,
                "kind": kind,
                "segment": "stock",
                "market_segment": None,
                "value_tier": "high" if draw < 0.02 else "middle" if draw < 0.15 else "general",
                "wealth_layer": rnd.choice((None, None, None, "layer_2", "layer_3", "layer_4")),
                "vip_level": "gold" if rnd.random() < 0.05 else None,
                "business_date": date(2026, 11, 27),
                "deposits": None,
                "loans": "50000.00" if rnd.random() < 0.2 else "0.00",
                "aum": None,
                "products": ["payroll_agency"] if kind == "corporate" and draw < 0.3 else [],
                "updated_at": now,
            }
        )
    tables = Base.metadata.tables
    with runtime.session_factory() as session:
        insert_rows(
            session,
            tables["org_units"],
            [{**u, "created_at": now, "created_by": "bench"} for u in units],
        )
        insert_rows(session, tables["staff"], staff)
        for start in range(0, len(refs), 20_000):
            insert_rows(session, tables["customer_refs"], refs[start : start + 20_000])
            insert_rows(session, tables["customer_profiles"], profiles[start : start + 20_000])
        session.commit()
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE"))
            session.commit()
    return outlets


def _staff(
    staff_id: str, roles: list[str], unit: str, line: str | None, capacity: int | None
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": staff_id,
        "name": staff_id,
        "roles": roles,
        "business_line": line,
        "grade": None,
        "grade_certified_on": None,
        "grade_expires_on": None,
        "org_unit": unit,
        "capacity": capacity,
        "status": "active",
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def timed_run(runtime: Any) -> dict[str, Any]:
    started = time.perf_counter()
    with runtime.session_factory() as session:
        plan = rules.plan(session, "/HQ", date(2026, 11, 30))
    planned = time.perf_counter()
    applied = rules.apply(
        runtime.session_factory, runtime.recorder, plan.placements, "bench", plan.policy.version
    )
    finished = time.perf_counter()
    return {
        "considered": len(plan.placements),
        "placed": len(plan.placed),
        "applied": applied,
        "by_rule": plan.by_rule(),
        "plan_s": planned - started,
        "apply_s": finished - planned,
        "seconds": finished - started,
    }


def bare_insert(runtime: Any, rows: int) -> float:
    """Seconds to insert ``rows`` ownership-shaped rows in bulk into a copy of the table."""
    table = Base.metadata.tables[Ownership.__tablename__]
    # The same columns and indexes (the partial ones too), without the foreign key.
    copy = Table(
        "bench_ownerships",
        MetaData(),
        *[
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns
        ],
    )
    for index in table.indexes:
        Index(
            f"bench_{index.name}",
            *[copy.c[c.name] for c in index.columns],
            unique=index.unique,
            **index.dialect_kwargs,
        )
    copy.create(runtime.engine)
    now = utcnow()
    data = [
        {
            "customer_id": str(uuid.uuid4()),
            "staff_id": "leader.hq",
            "org_unit": "/HQ",
            "reason": "rule",
            "note": None,
            "started_at": now,
            "started_by": "bench",
        }
        for _ in range(rows)
    ]
    started = time.perf_counter()
    for start in range(0, rows, rules.CHUNK):
        with runtime.session_factory() as session:
            insert_rows(session, copy, data[start : start + rules.CHUNK])
            session.commit()
    return time.perf_counter() - started


def book_latency(
    settings: AssignmentSettings, runtime: Any, keys: tuple[Path, Path]
) -> dict[str, Any]:
    """Give one manager a book of ``BOOK_SIZE`` customers and read it page by page."""
    manager = "cm1.u00b00"
    with runtime.session_factory() as session:
        owned = session.execute(
            select(func.count())
            .select_from(Ownership)
            .where(Ownership.staff_id == manager, Ownership.ended_at.is_(None))
        ).scalar_one()
        extra = [
            {
                "customer_id": str(uuid.uuid4()),
                "staff_id": manager,
                "org_unit": "/HQ/U00/B00",
                "reason": "rule",
                "note": None,
                "started_at": utcnow(),
                "started_by": "bench",
            }
            for _ in range(max(0, BOOK_SIZE - int(owned)))
        ]
        insert_rows(session, Base.metadata.tables[Ownership.__tablename__], extra)
        session.commit()
    token = devauth.token_for(devauth.seeded_users()["admin"], keys[0].read_text())
    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, Any] = {}
    with TestClient(create_app(settings)) as client:
        pages = [
            f"/api/v1/staff/{manager}/book?limit=100&offset={100 * (i % 8)}"
            for i in range(BOOK_READS)
        ]
        for label, paths in (("healthz", ["/healthz"] * BOOK_READS), ("book", pages)):
            for p in paths[:20]:
                client.get(p, headers=headers)  # warm-up
            latencies = []
            for p in paths:
                started = time.perf_counter()
                resp = client.get(p, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                assert resp.status_code == 200, resp.text
            latencies.sort()
            out[label] = {
                "p50_ms": round(latencies[len(latencies) // 2], 2),
                "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
            }
        total = client.get(pages[0], headers=headers).json()["total"]
    out["book_total"] = total
    return out


def run(full: bool = False, database: str = "sqlite", verbose: bool = False) -> dict[str, Any]:
    """Run the benchmark on temporary SQLite or PostgreSQL databases; print and return figures."""
    backend = database
    size = FULL if full else SMALL
    began = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="crm-bench-assign-") as tmp,
        temporary_database(backend, Path(tmp)) as url,
    ):
        keys = devauth.ensure_keys(Path(tmp) / "keys")
        settings = AssignmentSettings(
            database_url=url,
            embedded_workers=False,
            readiness_requires_broker=False,
            jwt_public_key_file=str(keys[1]),
        )
        runtime = build_runtime(settings)
        runtime.migrate()
        seed_bank(runtime, size)
        with runtime.session_factory() as session:
            staff_count = session.execute(select(func.count()).select_from(Staff)).scalar_one()
            units = session.execute(select(func.count()).select_from(OrgUnit)).scalar_one()
        result = timed_run(runtime)
        bare_s = bare_insert(runtime, result["applied"])
        with runtime.engine.connect() as conn:
            outbox_rows = conn.execute(
                select(func.count()).select_from(runtime.tables.outbox)
            ).scalar_one()
            profiles = conn.execute(select(func.count()).select_from(CustomerProfile)).scalar_one()
        settings.run_migrations_on_start = False
        book = book_latency(settings, runtime, keys)
        runtime.engine.dispose()
    rate = result["applied"] / result["seconds"] if result["seconds"] else 0.0
    bare_rate = result["applied"] / bare_s if bare_s else 0.0
    figures = {
        "customers": size.customers,
        "profiles": profiles,
        "staff": staff_count,
        "org_units": units,
        "seconds": round(result["seconds"], 2),
        "plan_s": round(result["plan_s"], 2),
        "apply_s": round(result["apply_s"], 2),
        "assignments": result["applied"],
        "unplaced": result["considered"] - result["placed"],
        "assignments_per_s": round(rate, 1),
        "events": outbox_rows,
        "by_rule": result["by_rule"],
        "book_size": book["book_total"],
        "book_p50_ms": book["book"]["p50_ms"],
        "book_p99_ms": book["book"]["p99_ms"],
        "backend": backend,
        "size": size.label,
        "elapsed_s": round(time.perf_counter() - began, 1),
    }
    baseline = {
        "bare_insert_s": round(bare_s, 2),
        "bare_insert_rows_per_s": round(bare_rate, 1),
        "healthz_p50_ms": book["healthz"]["p50_ms"],
        "healthz_p99_ms": book["healthz"]["p99_ms"],
    }
    goal = "met" if result["seconds"] < 10 else "MISSED"
    print(f"{NAME}: size {size.label}, database {backend}, {figures['elapsed_s']} s")
    print(
        f"  run: {result['applied']} of {result['considered']} unowned customers placed with "
        f"{staff_count} staff in {result['seconds']:.2f} s (plan {result['plan_s']:.2f} s, apply "
        f"{result['apply_s']:.2f} s): {rate:.0f} assignments/s; goal < 10 s: {goal}"
    )
    print(
        f"  bare bulk insert of as many ownership rows: {bare_s:.2f} s ({bare_rate:.0f} rows/s); "
        f"the run takes {result['seconds'] / bare_s if bare_s else float('nan'):.1f}x that"
    )
    print(f"  by rule: {json.dumps(result['by_rule'])}; events written {outbox_rows}")
    print(
        f"  book of {book['book_total']} customers, 100 a page: p50 {book['book']['p50_ms']} ms "
        f"p99 {book['book']['p99_ms']} ms (healthz p50 {book['healthz']['p50_ms']} ms p99 "
        f"{book['healthz']['p99_ms']} ms, same in-process client)"
    )
    print(json.dumps({"bench": NAME, "figures": figures, "baseline": baseline}))
    return figures


if __name__ == "__main__":
    run(full="--full" in sys.argv, database="postgres" if "--postgres" in sys.argv else "sqlite")
