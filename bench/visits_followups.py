"""Visits follow-ups: derive every customer's next contact due in one batch, and build a
manager's agenda.

The customers (100,000 at the small size, 1,000,000 full) have tiers (value tier, wealth layer,
VIP level), the owner's importance, a last contact or none, an owner since some day or none,
and a few a risk or post-sale date pending, drawn from a fixed seed.

(a) The derivation in memory: :func:`services.visits.followups.next_due` over plain values for
every customer (the plan's intervals compiled once per policy). Goal (from the issue): at least
100,000 customers/s. Beside it, the batch's own loop over rows as the database returns them
(times to convert to business dates, pending reasons, unchanged rows left out).

(b) ``derive_all`` into the database, on SQLite and on PostgreSQL: after a change of policy
version every customer is derived again, in chunks of the service's chunk size (read the care
rows with status and owner, derive, write back only where the row is as read). Baselines in the
same database: a bare set-based update of as many care rows, chunk by chunk (no reading, no
Python: the database's floor for rewriting them with their indexes), and a bare bulk insert of
as many rows into a table of the same shape.

(c) ``GET /api/v1/staff/{id}/agenda`` of a manager with 800 customers for today, every one due
but the 20 visited today (some with open complaints, a risk status, a limit ending soon),
through the service's routes in-process: the first page of 100 (the screen) and all of them in
one response, p50/p99, next to ``/healthz`` on the same client. Goal: p99 under 50 ms.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Column, Index, MetaData, Table, func, select, text, update

from bench._common import temporary_database
from crmkit import devauth
from crmkit.clock import business_today
from crmkit.db import utcnow
from crmkit.heap import gc_paused
from crmkit.outbox import insert_rows
from services.visits import followups
from services.visits.app import build_runtime, create_app
from services.visits.models import Base, CustomerCare
from services.visits.settings import VisitsSettings

NAME = "visits_followups"
TODAY = date(2026, 11, 30)
OLD_PLAN = "2025-06-01"
ORG_UNITS = tuple(f"/HQ/U{u:02d}/B{b:02d}" for u in range(1, 11) for b in range(1, 11))
MANAGERS = tuple(
    f"cm{n}.{unit[4:7].lower()}{unit[8:].lower()}" for unit in ORG_UNITS for n in (1, 2)
)
SEED_CHUNK = 20_000
CHUNK = followups.DERIVE_CHUNK
BOOK = 800
BOOK_MANAGER = "cm.bench"
BOOK_UNIT = "/HQ/U01/B01"
READS = 300


@dataclass(frozen=True)
class Size:
    label: str
    customers: int


SMALL = Size("small", 100_000)
FULL = Size("full", 1_000_000)


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    org_unit: str
    status: str
    value_tier: str | None
    wealth_layer: str | None
    vip_level: str | None
    importance: str | None
    last_contact_at: datetime | None
    owner_id: str | None
    owner_since: datetime | None
    next_due_on: date | None
    due_reason: str | None


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai


def generate(count: int, seed: int = 7) -> Iterator[Customer]:
    """``count`` customers from a fixed seed, as the consumer and earlier visits left them."""
    rnd = random.Random(seed)
    for n in range(count):
        draw = rnd.random()
        last = _at(TODAY - timedelta(days=rnd.randrange(400))) if rnd.random() < 0.7 else None
        owned = rnd.random() < 0.9
        pending = rnd.random()
        due, reason = None, None
        if pending < 0.02:
            due, reason = TODAY + timedelta(days=rnd.randrange(4)), "risk"
        elif pending < 0.04:
            due, reason = TODAY + timedelta(days=rnd.randrange(8)), "post_sale"
        elif pending < 0.6:
            due, reason = TODAY + timedelta(days=rnd.randrange(-60, 180)), "cycle"
        unit = ORG_UNITS[n % len(ORG_UNITS)]
        yield Customer(
            customer_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            org_unit=unit,
            status="closed" if rnd.random() < 0.02 else "active",
            value_tier="high"
            if draw < 0.05
            else "middle"
            if draw < 0.25
            else "general"
            if draw < 0.85
            else None,
            wealth_layer=rnd.choice((None, None, None, "layer_1", "layer_2", "layer_3", "layer_4")),
            vip_level=rnd.choice(("gold", "platinum", "diamond")) if rnd.random() < 0.05 else None,
            importance=rnd.choice(("high", "low", "normal", None, None, None, None, None)),
            last_contact_at=last,
            owner_id=MANAGERS[n % len(MANAGERS)] if owned else None,
            owner_since=_at(TODAY - timedelta(days=rnd.randrange(730))) if owned else None,
            next_due_on=due,
            due_reason=reason,
        )


# -- (a) the derivation in memory --------------------------------------------------------------
def pure(customers: list[Customer]) -> dict[str, Any]:
    """``next_due`` for every customer over plain values (dates already business dates)."""
    plan = followups.compiled_on(TODAY)
    inputs = [
        (
            c.value_tier,
            c.wealth_layer,
            c.vip_level,
            c.importance,
            c.last_contact_at.date() if c.last_contact_at else None,
            c.owner_since.date() if c.owner_since else TODAY,
            (c.next_due_on, c.due_reason)
            if c.next_due_on is not None and c.due_reason in ("risk", "post_sale")
            else None,
        )
        for c in customers
    ]
    next_due = followups.next_due
    with gc_paused():
        started = time.perf_counter()
        derived = [next_due(plan, *i) for i in inputs]
        seconds = time.perf_counter() - started
    pending = sum(1 for d in derived if d is not None and d[1] != "cycle")
    rows = [_book_row(c) for c in customers]
    with gc_paused():
        started = time.perf_counter()
        changed = followups.derive_rows(plan, rows, TODAY)
        rows_s = time.perf_counter() - started
    return {
        "seconds": seconds,
        "per_s": len(customers) / seconds,
        "pending_kept": pending,
        "rows_s": rows_s,
        "rows_per_s": len(rows) / rows_s,
        "rows_changed": len(changed),
    }


def _book_row(c: Customer) -> tuple[Any, ...]:
    """A row as :func:`followups._book_query` returns it."""
    return (
        c.customer_id,
        c.status,
        c.value_tier,
        c.wealth_layer,
        c.vip_level,
        c.importance,
        c.last_contact_at,
        c.owner_since,
        c.next_due_on,
        c.due_reason,
        OLD_PLAN,
        _at(TODAY),
    )


# -- (b) the batch into a database -------------------------------------------------------------


def _care_row(c: Customer, now: datetime) -> dict[str, Any]:
    return {
        "customer_id": c.customer_id,
        "org_unit": c.org_unit,
        "value_tier": c.value_tier,
        "wealth_layer": c.wealth_layer,
        "vip_level": c.vip_level,
        "aum": None,
        "business_date": None,
        "importance": c.importance,
        "owner_id": c.owner_id,
        "last_contact_at": c.last_contact_at,
        "last_channel": "phone" if c.last_contact_at else None,
        "next_due_on": c.next_due_on,
        "due_reason": c.due_reason,
        "plan_version": OLD_PLAN,
        "reminded_for": None,
        "risk_status": "warning" if c.due_reason == "risk" else None,
        "credit_limit_expires_on": None,
        "updated_at": now,
    }


def seed(runtime: Any, customers: list[Customer]) -> None:
    """The copies of customers and owners and the care rows, as the consumer left them."""
    tables = Base.metadata.tables
    now = utcnow()
    for start in range(0, len(customers), SEED_CHUNK):
        chunk = customers[start : start + SEED_CHUNK]
        with runtime.session_factory() as session:
            insert_rows(
                session,
                tables["customer_refs"],
                [
                    {
                        "customer_id": c.customer_id,
                        "name": f"Customer {c.customer_id[:8]}",
                        "kind": "individual",
                        "org_unit": c.org_unit,
                        "business_line": "personal",
                        "status": c.status,
                        "as_of": now,
                    }
                    for c in chunk
                ],
            )
            insert_rows(
                session,
                tables["owner_refs"],
                [
                    {
                        "customer_id": c.customer_id,
                        "staff_id": c.owner_id,
                        "role": "owner",
                        "since": c.owner_since,
                    }
                    for c in chunk
                    if c.owner_id is not None
                ],
            )
            insert_rows(
                session, tables[CustomerCare.__tablename__], [_care_row(c, now) for c in chunk]
            )
            session.commit()
    _analyze(runtime)


def _analyze(runtime: Any) -> None:
    with runtime.session_factory() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE"))
        session.commit()


def timed_derivation(runtime: Any) -> dict[str, Any]:
    started = time.perf_counter()
    result = followups.derive_all(runtime.session_factory, CHUNK, TODAY)
    seconds = time.perf_counter() - started
    again = time.perf_counter()
    second = followups.derive_all(runtime.session_factory, CHUNK, TODAY)
    again_s = time.perf_counter() - again
    return {
        "seconds": seconds,
        "walked": result.walked,
        "changed": result.changed,
        "again_s": again_s,
        "again_changed": second.changed,
    }


def bare_update(runtime: Any, customer_ids: list[str]) -> float:
    """Seconds to rewrite the due date, reason, plan version and time of the care rows by one
    set-based update per chunk of ids (their id range)."""
    table = Base.metadata.tables[CustomerCare.__tablename__]
    ordered = sorted(customer_ids)
    now = utcnow()
    started = time.perf_counter()
    for start in range(0, len(ordered), CHUNK):
        first, last = ordered[start], ordered[min(start + CHUNK, len(ordered)) - 1]
        with runtime.session_factory() as session:
            session.execute(
                update(table)
                .where(table.c.customer_id >= first, table.c.customer_id <= last)
                .values(
                    next_due_on=TODAY + timedelta(days=30),
                    due_reason="cycle",
                    plan_version="bare",
                    updated_at=now,
                )
            )
            session.commit()
    return time.perf_counter() - started


def bare_insert(runtime: Any, customers: list[Customer]) -> float:
    """Seconds to insert as many care-shaped rows in bulk into a copy of the table (the same
    columns and indexes), chunk by chunk."""
    table = Base.metadata.tables[CustomerCare.__tablename__]
    copy = Table(
        "bench_customer_care",
        MetaData(),
        *[
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns
        ],
    )
    for index in table.indexes:
        Index(f"bench_{index.name}", *[copy.c[c.name] for c in index.columns])
    copy.create(runtime.engine)
    now = utcnow()
    rows = [_care_row(c, now) for c in customers]
    started = time.perf_counter()
    for start in range(0, len(rows), CHUNK):
        with runtime.session_factory() as session:
            insert_rows(session, copy, rows[start : start + CHUNK])
            session.commit()
    return time.perf_counter() - started


def batch_on(backend: str, customers: list[Customer], tmp: Path) -> dict[str, Any]:
    """(b) on one backend: seed, the timed derivation, the bare update and insert."""
    with temporary_database(backend, tmp) as url:
        runtime = build_runtime(
            VisitsSettings(database_url=url, embedded_workers=False, log_level="WARNING")
        )
        runtime.migrate()
        seed(runtime, customers)
        result = timed_derivation(runtime)
        result["bare_update_s"] = bare_update(runtime, [c.customer_id for c in customers])
        result["bare_insert_s"] = bare_insert(runtime, customers)
        runtime.engine.dispose()
    result["per_s"] = result["walked"] / result["seconds"]
    result["bare_update_per_s"] = result["walked"] / result["bare_update_s"]
    result["bare_insert_per_s"] = result["walked"] / result["bare_insert_s"]
    return result


# -- (c) the agenda ----------------------------------------------------------------------------
def seed_book(runtime: Any, client: TestClient, admin: dict[str, str]) -> list[str]:
    """The manager's 800 customers, every one due by today (last contacted 300 to 700 days
    ago); 5 % at risk, 10 % with a limit ending within 30 days, 40 open complaints and 20 visits
    recorded today (those 20 are then due again later)."""
    rnd = random.Random(11)
    now = utcnow()
    tiers = ("high", "middle", "general", None)
    book = [
        Customer(
            customer_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            org_unit=BOOK_UNIT,
            status="active",
            value_tier=rnd.choice(tiers),
            wealth_layer=rnd.choice((None, "layer_2", "layer_3")),
            vip_level="gold" if rnd.random() < 0.1 else None,
            importance=rnd.choice(("high", "low", None, None)),
            last_contact_at=_at(TODAY - timedelta(days=rnd.randrange(300, 700))),
            owner_id=BOOK_MANAGER,
            owner_since=_at(TODAY - timedelta(days=500)),
            next_due_on=None,
            due_reason=None,
        )
        for _ in range(BOOK)
    ]
    tables = Base.metadata.tables
    with runtime.session_factory() as session:
        insert_rows(
            session,
            tables["customer_refs"],
            [
                {
                    "customer_id": c.customer_id,
                    "name": f"Book customer {n}",
                    "kind": "individual",
                    "org_unit": BOOK_UNIT,
                    "business_line": "personal",
                    "status": "active",
                    "as_of": now,
                }
                for n, c in enumerate(book)
            ],
        )
        insert_rows(
            session,
            tables["owner_refs"],
            [
                {
                    "customer_id": c.customer_id,
                    "staff_id": BOOK_MANAGER,
                    "role": "owner",
                    "since": c.owner_since,
                }
                for c in book
            ],
        )
        rows = []
        for n, c in enumerate(book):
            row = _care_row(c, now)
            row["risk_status"] = "warning" if n % 20 == 0 else None
            row["credit_limit_expires_on"] = TODAY + timedelta(days=10) if n % 10 == 1 else None
            rows.append(row)
        insert_rows(session, tables[CustomerCare.__tablename__], rows)
        session.commit()
    followups.derive_all(runtime.session_factory, CHUNK, TODAY)
    for c in book[:40]:
        body = {
            "customer_id": c.customer_id,
            "channel": "phone",
            "category": "service",
            "description": "Waited too long",
        }
        resp = client.post("/api/v1/complaints", json=body, headers=admin)
        assert resp.status_code == 201, resp.text
    for c in book[40:60]:
        visit = {
            "customer_id": c.customer_id,
            "visited_at": (now - timedelta(minutes=30)).isoformat(),
            "channel": "in_person",
            "visit_type": "maintenance",
            "participants": [{"staff_id": BOOK_MANAGER, "role": "lead"}],
            "purpose": "Review",
            "opportunities": ["deposit"],
        }
        resp = client.post("/api/v1/visits", json=visit, headers=admin)
        assert resp.status_code == 201, resp.text
    _analyze(runtime)
    return [c.customer_id for c in book]


def agenda_latency(
    settings: VisitsSettings, runtime: Any, keys: tuple[Path, Path]
) -> dict[str, Any]:
    pem = keys[0].read_text()
    admin = {"Authorization": f"Bearer {devauth.token_for(devauth.seeded_users()['admin'], pem)}"}
    manager_token = devauth.sign(
        {
            "sub": BOOK_MANAGER,
            "name": BOOK_MANAGER,
            "roles": ["customer_manager"],
            "org_unit": BOOK_UNIT,
        },
        pem,
    )
    manager = {"Authorization": f"Bearer {manager_token}"}
    out: dict[str, Any] = {}
    with TestClient(create_app(settings)) as client:
        seed_book(runtime, client, admin)
        day = business_today_or(TODAY)
        base = f"/api/v1/staff/{BOOK_MANAGER}/agenda?date={day}"
        phases = (
            ("healthz", "/healthz"),
            ("agenda_page", f"{base}&limit=100"),
            ("agenda_all", f"{base}&limit=1000"),
        )
        for label, path in phases:
            for _ in range(20):
                client.get(path, headers=manager)  # warm-up
            latencies = []
            for _ in range(READS):
                started = time.perf_counter()
                resp = client.get(path, headers=manager)
                latencies.append((time.perf_counter() - started) * 1000)
                assert resp.status_code == 200, resp.text
            latencies.sort()
            out[label] = {
                "p50_ms": round(latencies[len(latencies) // 2], 2),
                "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
            }
        body = client.get(f"{base}&limit=1000", headers=manager).json()
    out["due"] = body["due"]
    out["with_complaints"] = sum(1 for i in body["items"] if i["open_complaints"])
    out["visits_today"] = body["activity"]["visits"]
    return out


def business_today_or(day: date) -> date:
    """The agenda's base day: today's business date, never before the bench's fixed day."""
    return max(business_today(), day)


# -- the run -----------------------------------------------------------------------------------
def run(full: bool = False, database: str = "sqlite", verbose: bool = False) -> dict[str, Any]:
    """Run (a), then (b) on SQLite and on PostgreSQL, then (c) on ``database``; print and
    return the figures."""
    size = FULL if full else SMALL
    began = time.perf_counter()
    customers = list(generate(size.customers))
    memory = pure(customers)
    batches: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="crm-bench-visits-") as tmp:
        work = Path(tmp)
        for backend in ("sqlite", "postgres"):
            batches[backend] = batch_on(backend, customers, work)
        keys = devauth.ensure_keys(work / "keys")
        with temporary_database(database, work) as url:
            settings = VisitsSettings(
                database_url=url,
                embedded_workers=False,
                readiness_requires_broker=False,
                jwt_public_key_file=str(keys[1]),
                log_level="WARNING",
            )
            runtime = build_runtime(settings)
            runtime.migrate()
            seed(runtime, customers[: min(len(customers), 100_000)])
            settings.run_migrations_on_start = False
            agenda = agenda_latency(settings, runtime, keys)
            with runtime.engine.connect() as conn:
                care_rows = conn.execute(
                    select(func.count()).select_from(CustomerCare)
                ).scalar_one()
            runtime.engine.dispose()
    goal = "met" if memory["per_s"] >= 100_000 else "MISSED"
    agenda_goal = "met" if agenda["agenda_all"]["p99_ms"] < 50 else "MISSED"
    figures: dict[str, Any] = {
        "customers": size.customers,
        "derive_customers_per_s": round(memory["per_s"], 1),
        "derive_s": round(memory["seconds"], 3),
        "derive_goal_100000_per_s": goal,
        "derive_rows_per_s": round(memory["rows_per_s"], 1),
        "derive_rows_changed": memory["rows_changed"],
    }
    for backend, b in batches.items():
        figures[f"derive_all_{backend}_customers_per_s"] = round(b["per_s"], 1)
        figures[f"derive_all_{backend}_s"] = round(b["seconds"], 2)
        figures[f"derive_all_{backend}_changed"] = b["changed"]
        figures[f"derive_all_{backend}_again_s"] = round(b["again_s"], 2)
        figures[f"derive_all_{backend}_again_changed"] = b["again_changed"]
    figures.update(
        {
            "agenda_customers": BOOK,
            "agenda_due": agenda["due"],
            "agenda_with_complaints": agenda["with_complaints"],
            "agenda_visits_today": agenda["visits_today"],
            "agenda_page_p50_ms": agenda["agenda_page"]["p50_ms"],
            "agenda_page_p99_ms": agenda["agenda_page"]["p99_ms"],
            "agenda_all_p50_ms": agenda["agenda_all"]["p50_ms"],
            "agenda_all_p99_ms": agenda["agenda_all"]["p99_ms"],
            "agenda_goal_p99_under_50_ms": agenda_goal,
            "agenda_database": database,
            "agenda_database_care_rows": int(care_rows),
            "chunk_size": CHUNK,
            "size": size.label,
            "elapsed_s": round(time.perf_counter() - began, 1),
        }
    )
    baseline: dict[str, Any] = {}
    for backend, b in batches.items():
        baseline[f"bare_update_{backend}_rows_per_s"] = round(b["bare_update_per_s"], 1)
        baseline[f"bare_update_{backend}_s"] = round(b["bare_update_s"], 2)
        baseline[f"bare_insert_{backend}_rows_per_s"] = round(b["bare_insert_per_s"], 1)
        baseline[f"bare_insert_{backend}_s"] = round(b["bare_insert_s"], 2)
    baseline["healthz_p50_ms"] = agenda["healthz"]["p50_ms"]
    baseline["healthz_p99_ms"] = agenda["healthz"]["p99_ms"]
    _print(size, figures, memory, batches, agenda, database, goal, agenda_goal)
    print(json.dumps({"bench": NAME, "figures": figures, "baseline": baseline}))
    return figures


def _print(
    size: Size,
    figures: dict[str, Any],
    memory: dict[str, Any],
    batches: dict[str, dict[str, Any]],
    agenda: dict[str, Any],
    database: str,
    goal: str,
    agenda_goal: str,
) -> None:
    print(f"{NAME}: size {size.label}, {size.customers} customers, {figures['elapsed_s']} s")
    print(
        f"  (a) next_due in memory: {memory['per_s']:12.0f} customers/s ({memory['seconds']:.2f} s;"
        f" {memory['pending_kept']} pending dates kept); goal >= 100,000/s: {goal}"
    )
    print(
        f"      the batch's loop over database-shaped rows: {memory['rows_per_s']:.0f} rows/s "
        f"({memory['rows_changed']} changed)"
    )
    for backend, b in batches.items():
        print(
            f"  (b) derive_all on {backend:<8} {b['per_s']:10.0f} customers/s "
            f"({b['seconds']:.2f} s; {b['changed']} changed; a second run {b['again_s']:.2f} s, "
            f"{b['again_changed']} changed)"
        )
        print(
            f"      bare update {b['bare_update_per_s']:.0f} rows/s ({b['bare_update_s']:.2f} s): "
            f"derive_all takes {b['seconds'] / b['bare_update_s']:.1f}x that; bare insert "
            f"{b['bare_insert_per_s']:.0f} rows/s ({b['bare_insert_s']:.2f} s): "
            f"{b['seconds'] / b['bare_insert_s']:.1f}x"
        )
    for label, name in (
        ("healthz", "GET /healthz"),
        ("agenda_page", "agenda, first 100"),
        ("agenda_all", "agenda, all due"),
    ):
        f = agenda[label]
        print(
            f"  (c) {name:<18} ({database}, in-process): p50 {f['p50_ms']:7.2f} ms  "
            f"p99 {f['p99_ms']:7.2f} ms"
        )
    print(
        f"      {agenda['due']} due, {agenda['with_complaints']} with open complaints, "
        f"{agenda['visits_today']} visits today; goal p99 < 50 ms: {agenda_goal}"
    )


if __name__ == "__main__":
    run(full="--full" in sys.argv, database="postgres" if "--postgres" in sys.argv else "sqlite")
