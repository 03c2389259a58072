"""Rating campaign: score and compute limits for every customer of a campaign, and assess one
customer through the API.

The customers (100,000 at the small size, 1,000,000 full; individuals, individual businesses,
corporates and institutions) have core banking's figures and last year's confirmed assessment
with every manual factor entered, drawn from a fixed seed over each scorecard's bins and choices.

(a) The core of the campaign, in memory: per customer the scorecard in force for its kind scores
the bank's figures and the entries, and the limit formula calculates the limit of the grade —
what the batch does per customer, without the database. Goal (from the issue): at least 50,000
customers/s on this machine.

(b) The campaign's batch end to end, on SQLite and on PostgreSQL: started like a campaign of the
head office, it walks the customers in id order in chunks of the service's chunk size, reads
their figures and latest assessment, rates them, writes the assessments, their
``rating.assessed`` events, the progress and the cursor, one transaction per chunk. Baseline: a
bare bulk insert of as many assessment rows, chunk by chunk, into a table of the same shape in
the same database — the floor of the write.

(c) ``POST /api/v1/ratings`` (a full assessment of a random customer) through the service under
uvicorn, by 50 concurrent clients, p50/p99; baseline ``GET /healthz`` at the same concurrency.
"""

from __future__ import annotations

import contextlib
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
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Column, Index, MetaData, Table, func, select, text

from bench._common import Request, free_port, load, temporary_database
from crmkit import devauth
from crmkit.db import utcnow
from crmkit.heap import gc_paused
from crmkit.outbox import insert_rows
from services.rating import campaigns
from services.rating.app import build_runtime
from services.rating.limits import formula_for
from services.rating.models import Assessment, Base, CustomerFigures
from services.rating.models_campaigns import RatingCampaign
from services.rating.schemas_campaigns import CampaignIn
from services.rating.scoring import Scorecard, repayment_record, scorecard_for
from services.rating.settings import RatingSettings

NAME = "rating_campaign"
REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 30)
LAST_YEAR = date(2025, 9, 20)
KINDS = (
    ("individual", "personal", 70),
    ("individual_business", "personal", 15),
    ("corporate", "corporate", 10),
    ("institution", "corporate", 5),
)
ORG_UNITS = tuple(f"/HQ/U{u:02d}/B{b:02d}" for u in range(1, 11) for b in range(1, 11))
VARIANTS = 500  # distinct sets of entries per kind
SEED_CHUNK = 20_000
CHUNK = RatingSettings().campaign_chunk_size


@dataclass(frozen=True)
class Size:
    label: str
    customers: int
    requests: int
    clients: int = 50


SMALL = Size("small", 100_000, 2_000)
FULL = Size("full", 1_000_000, 10_000)


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    kind: str
    line: str
    org_unit: str
    deposits: Decimal
    loans: Decimal
    overdue: Decimal
    entries: dict[str, object]


# -- the customers -----------------------------------------------------------------------------
def _entry(factor: Any, rnd: random.Random) -> object:
    """A value of a manual factor: a choice, or a number inside a random bin."""
    if factor.type == "choice":
        return rnd.choice(factor.choices).value
    index = rnd.randrange(len(factor.bins))
    bounds = [b.min for b in factor.bins]
    low = bounds[index] if index > 0 else Decimal(0)
    high = bounds[index + 1] if index + 1 < len(bounds) else (low or Decimal(1)) * 2
    return str((low + (high - low) * Decimal(rnd.randrange(100)) / 100).quantize(Decimal(1)))


def entry_variants(card: Scorecard, rnd: random.Random) -> list[dict[str, object]]:
    """``VARIANTS`` sets of entries of every manual factor of ``card``."""
    manual = [f for f in card.policy.factors if f.source == "manual"]
    return [{f.code: _entry(f, rnd) for f in manual} for _ in range(VARIANTS)]


def generate(count: int, seed: int = 7) -> Iterator[Customer]:
    """``count`` customers in scope of a head-office campaign, from a fixed seed."""
    rnd = random.Random(seed)
    kinds = [(kind, line) for kind, line, _ in KINDS]
    weights = [w for _, _, w in KINDS]
    variants = {kind: entry_variants(scorecard_for(kind, DAY), rnd) for kind, _ in kinds}
    for n in range(count):
        kind, line = rnd.choices(kinds, weights)[0]
        draw = rnd.random()
        yield Customer(
            customer_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            kind=kind,
            line=line,
            org_unit=ORG_UNITS[n % len(ORG_UNITS)],
            deposits=Decimal(rnd.randrange(1_000_000_00)).scaleb(-2),
            loans=Decimal(rnd.randrange(30_000_00)).scaleb(-2) if draw < 0.4 else Decimal("0.00"),
            overdue=Decimal("1200.00") if draw < 0.03 else Decimal("0.00"),
            entries=rnd.choice(variants[kind]),
        )


# -- (a) the core ------------------------------------------------------------------------------
def core(customers: list[Customer]) -> dict[str, Any]:
    """Score and calculate the limit of every customer in memory, as the batch does per
    customer (the scorecard and formula of its kind, the bank's figures and its entries)."""
    tools = {kind: (scorecard_for(kind, DAY), formula_for(kind, DAY)) for kind, _, _ in KINDS}
    graded = limits = indicated = 0
    total = Decimal("0.00")
    started = time.perf_counter()
    with gc_paused():
        for c in customers:
            card, formula = tools[c.kind]
            system = {
                "deposit_balance": c.deposits,
                "repayment_record": repayment_record(c.loans, c.overdue),
            }
            rated = campaigns.rate(card, formula, system, c.entries, c.loans)
            if rated.result.grade is not None:
                graded += 1
            if rated.limit is not None:
                limits += 1
                if not rated.limit.missing:
                    indicated += 1
                    total += rated.limit.total_amount
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "per_s": len(customers) / seconds,
        "graded": graded,
        "limits": limits,
        "indicated": indicated,
        "indicative_total": total,
    }


# -- (b) the batch into a database -------------------------------------------------------------


def seed(runtime: Any, customers: list[Customer]) -> None:
    """The service's copies of the customers, their figures and last year's confirmed
    assessment with the entries (as the consumer and last year's campaign left them)."""
    tables = Base.metadata.tables
    now = utcnow()
    decided = now - timedelta(days=430)
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
                        "kind": c.kind,
                        "org_unit": c.org_unit,
                        "business_line": c.line,
                        "status": "active",
                        "as_of": now,
                    }
                    for c in chunk
                ],
            )
            insert_rows(
                session,
                tables[CustomerFigures.__tablename__],
                [
                    {
                        "customer_id": c.customer_id,
                        "vip_level": None,
                        "value_tier": None,
                        "business_date": DAY - timedelta(days=1),
                        "deposits": c.deposits,
                        "loans": c.loans,
                        "aum": c.deposits,
                        "overdue_amount": c.overdue,
                        "previous_business_date": None,
                        "previous_deposits": None,
                        "products": ["deposit"],
                        "updated_at": now,
                    }
                    for c in chunk
                ],
            )
            insert_rows(
                session,
                tables[Assessment.__tablename__],
                [_last_year(c, decided) for c in chunk],
            )
            session.commit()
    with runtime.session_factory() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE"))
        session.commit()


def _last_year(c: Customer, decided: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "customer_id": c.customer_id,
        "kind": c.kind,
        "org_unit": c.org_unit,
        "business_line": c.line,
        "scorecard_id": c.kind,
        "scorecard_version": "2025-01-01",
        "inputs": c.entries,
        "lines": [],
        "missing": [],
        "score": Decimal("70.00"),
        "computed_grade": "A",
        "proposed_grade": None,
        "adjustment_reason": None,
        "final_grade": "A",
        "status": "confirmed",
        "trigger": "campaign",
        "campaign_id": None,
        "assessed_by": "system",
        "assessed_at": decided,
        "decided_by": "approver",
        "decided_at": decided,
        "decision_note": None,
        "valid_until": LAST_YEAR + timedelta(days=365),
        "version": 1,
    }


def timed_batch(runtime: Any) -> dict[str, Any]:
    """Create and start a head-office campaign and run its batch to the end, timed."""
    from crmkit.auth import Caller

    admin = Caller("bench", "bench", frozenset({"admin"}), "/HQ")
    with runtime.session_factory() as session:
        campaign = campaigns.create(session, CampaignIn(name="bench", year=2026), admin)
        campaign = campaigns.start(session, campaign.id, admin)
    started = time.perf_counter()
    walked = campaigns.run_batch(runtime.session_factory, runtime.recorder, campaign, CHUNK)
    seconds = time.perf_counter() - started
    with runtime.session_factory() as session:
        done = session.get(RatingCampaign, campaign.id)
        assert done is not None and done.status == "done"
        events = session.execute(
            select(func.count()).select_from(runtime.tables.outbox)
        ).scalar_one()
        template = session.scalars(
            select(Assessment).where(Assessment.campaign_id == campaign.id).limit(1)
        ).one()
        counts = (done.walked, done.graded, done.incomplete)
    return {
        "seconds": seconds,
        "walked": walked,
        "graded": counts[1],
        "incomplete": counts[2],
        "events": int(events),
        "template": {c.name: getattr(template, c.key) for c in Assessment.__table__.columns},
    }


def bare_insert(runtime: Any, rows: int, template: dict[str, Any]) -> float:
    """Seconds to insert ``rows`` assessment rows like ``template``, ``CHUNK`` a transaction,
    into a table of the same columns and indexes."""
    table = Base.metadata.tables[Assessment.__tablename__]
    copy = Table(
        "bench_assessments",
        MetaData(),
        *[
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns
        ],
    )
    for index in table.indexes:
        Index(f"bench_{index.name}", *[copy.c[c.name] for c in index.columns])
    copy.create(runtime.engine)
    started = time.perf_counter()
    for start in range(0, rows, CHUNK):
        data = [
            {**template, "id": str(uuid.uuid4()), "customer_id": str(uuid.uuid4())}
            for _ in range(min(CHUNK, rows - start))
        ]
        with runtime.session_factory() as session:
            insert_rows(session, copy, data)
            session.commit()
    return time.perf_counter() - started


def batch_on(backend: str, customers: list[Customer], tmp: Path) -> dict[str, Any]:
    """(b) on one backend: seed, the timed batch, the bare insert."""
    with temporary_database(backend, tmp) as url:
        runtime = build_runtime(
            RatingSettings(database_url=url, embedded_workers=False, log_level="WARNING")
        )
        runtime.migrate()
        seed(runtime, customers)
        result = timed_batch(runtime)
        result["bare_s"] = bare_insert(runtime, result["walked"], result.pop("template"))
        runtime.engine.dispose()
    result["per_s"] = result["walked"] / result["seconds"]
    result["bare_per_s"] = result["walked"] / result["bare_s"]
    return result


# -- (c) one assessment through the API --------------------------------------------------------


def api_latency(
    url: str, keys: tuple[Path, Path], customers: list[Customer], size: Size, var: Path
) -> dict[str, Any]:
    """Start the service under uvicorn on the batch's database and assess through HTTP."""
    port = free_port()
    env = {
        **os.environ,
        "CRM_VAR_DIR": str(var),
        "CRM_RATING_DATABASE_URL": url,
        "CRM_RATING_EMBEDDED_WORKERS": "false",
        "CRM_RATING_READINESS_REQUIRES_BROKER": "false",
        "CRM_RATING_RUN_MIGRATIONS_ON_START": "false",
        "CRM_JWT_PUBLIC_KEY_FILE": str(keys[1]),
        "CRM_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "services.rating.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-keep-alive",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    token = devauth.token_for(devauth.seeded_users()["admin"], keys[0].read_text())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        rnd = random.Random(11)
        count = size.requests + size.clients * 2
        chosen = rnd.sample(customers, count)  # one assessment per customer: no lock waits
        posts: list[Request] = [
            ("POST", "/api/v1/ratings", {"customer_id": c.customer_id, "inputs": c.entries})
            for c in chosen
        ]
        health: list[Request] = [("GET", "/healthz", None)] * count
        warm = size.clients * 2
        phases = [(health[:warm], health[warm:]), (posts[:warm], posts[warm:])]
        figures = load(base, phases, size.clients, token)
        out: dict[str, Any] = dict(zip(("healthz", "assess"), figures, strict=True))
        return out
    finally:
        proc.terminate()
        proc.wait(10)


# -- the run -----------------------------------------------------------------------------------
def run(full: bool = False, database: str = "sqlite", verbose: bool = False) -> dict[str, Any]:
    """Run (a), then (b) on SQLite and on PostgreSQL, then (c) on ``database``; print and
    return the figures."""
    size = FULL if full else SMALL
    began = time.perf_counter()
    customers = list(generate(size.customers))
    pure = core(customers)
    batches: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="crm-bench-rating-") as tmp:
        work = Path(tmp)
        for backend in ("sqlite", "postgres"):
            batches[backend] = batch_on(backend, customers, work)
        keys = devauth.ensure_keys(work / "keys")
        with temporary_database(database, work) as url:
            runtime = build_runtime(
                RatingSettings(database_url=url, embedded_workers=False, log_level="WARNING")
            )
            runtime.migrate()
            seed(runtime, customers)
            runtime.engine.dispose()
            latency = api_latency(url, keys, customers, size, work / "var")
    goal = "met" if pure["per_s"] >= 50_000 else "MISSED"
    figures: dict[str, Any] = {
        "customers": size.customers,
        "core_customers_per_s": round(pure["per_s"], 1),
        "core_s": round(pure["seconds"], 2),
        "core_graded": pure["graded"],
        "core_limits": pure["limits"],
        "core_limits_with_inputs": pure["indicated"],
        "core_goal_50000_per_s": goal,
    }
    for backend, b in batches.items():
        figures[f"batch_{backend}_customers_per_s"] = round(b["per_s"], 1)
        figures[f"batch_{backend}_s"] = round(b["seconds"], 2)
        figures[f"batch_{backend}_graded"] = b["graded"]
        figures[f"batch_{backend}_events"] = b["events"]
    figures.update(
        {
            "assess_p50_ms": latency["assess"]["p50_ms"],
            "assess_p99_ms": latency["assess"]["p99_ms"],
            "assess_rps": latency["assess"]["rps"],
            "assess_failures": latency["assess"]["failures"],
            "api_database": database,
            "clients": size.clients,
            "chunk_size": CHUNK,
            "size": size.label,
            "elapsed_s": round(time.perf_counter() - began, 1),
        }
    )
    baseline: dict[str, Any] = {}
    for backend, b in batches.items():
        baseline[f"bare_insert_{backend}_rows_per_s"] = round(b["bare_per_s"], 1)
        baseline[f"bare_insert_{backend}_s"] = round(b["bare_s"], 2)
    baseline["healthz_p50_ms"] = latency["healthz"]["p50_ms"]
    baseline["healthz_p99_ms"] = latency["healthz"]["p99_ms"]
    print(f"{NAME}: size {size.label}, {size.customers} customers, {figures['elapsed_s']} s")
    print(
        f"  (a) core, score + limit in memory: {pure['per_s']:10.0f} customers/s "
        f"({pure['seconds']:.2f} s; {pure['graded']} graded, {pure['limits']} limits, "
        f"{pure['indicated']} with every input); goal >= 50,000/s: {goal}"
    )
    for backend, b in batches.items():
        print(
            f"  (b) batch on {backend:<8} {b['per_s']:10.0f} customers/s ({b['seconds']:.2f} s; "
            f"{b['graded']} graded, {b['incomplete']} incomplete, {b['events']} events); bare "
            f"insert {b['bare_per_s']:.0f} rows/s ({b['bare_s']:.2f} s): the batch takes "
            f"{b['seconds'] / b['bare_s']:.1f}x that"
        )
    for label, name in (("healthz", "GET /healthz"), ("assess", "POST /ratings")):
        f = latency[label]
        print(
            f"  (c) {name:<13} at {size.clients} clients ({database}): p50 {f['p50_ms']:7.2f} ms"
            f"  p99 {f['p99_ms']:7.2f} ms  {f['rps']:8.1f} req/s  failures {f['failures']}"
        )
    print(json.dumps({"bench": NAME, "figures": figures, "baseline": baseline}))
    return figures


if __name__ == "__main__":
    run(full="--full" in sys.argv, database="postgres" if "--postgres" in sys.argv else "sqlite")
