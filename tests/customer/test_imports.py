"""Bulk imports of customers and snapshots: jobs, row errors, idempotence, scope and resume.

Row numbers in the error report count data rows from 1; the CSV header is not a row.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from services.customer import import_cli, import_customers, import_pool, import_runner, imports
from services.customer.import_jobs import RunningJob
from services.customer.import_source import SourceRow
from services.customer.imports import ImportRunner
from services.customer.models import Customer, ImportJob
from services.customer.schemas_imports import ImportFormat, ImportKind, ImportStatus
from services.customer.settings import CustomerSettings
from tests.conftest import Databases
from tests.customer.conftest import Api, _As, credit_code, resident_id, test_settings

IMPORTS = "/api/v1/customers/imports"
COLUMNS = [
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
    "data_source",
    "lawful_basis",
]
SNAPSHOT_COLUMNS = [
    "customer_id",
    "core_customer_no",
    "business_date",
    "deposits",
    "loans",
    "products",
]
BUSINESS_DATE = "2026-11-27"  # the shipped tier policy is in force from 2026-01-01


@pytest.fixture
def customer_settings(
    databases: Databases, dev_keys: tuple[str, Path], tmp_path: Path
) -> CustomerSettings:
    """The service's settings with uploads under the test's own directory."""
    return test_settings(databases, dev_keys[1], import_dir=tmp_path / "uploads")


# -- helpers ------------------------------------------------------------------------------------
def person_id(i: int) -> str:
    """A distinct valid resident id number for each ``i``."""
    birth = (date(1960, 1, 1) + timedelta(days=i)).strftime("%Y%m%d")
    return resident_id(birth, i % 1000)


def person_row(i: int, **overrides: str) -> dict[str, str]:
    row = {
        "kind": "individual",
        "name": f"Customer {i}",
        "org_unit": "/HQ/U01/B01",
        "business_line": "personal",
        "id_number": person_id(i),
        "phone": f"139{i:08d}",
        "address": f"{i} Village Road",
        "core_customer_no": f"CORE{i:06d}",
    }
    row.update(overrides)
    return row


def csv_bytes(rows: list[dict[str, str]], columns: list[str] | None = None) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def start(who: _As, body: bytes | Iterator[bytes], kind: str = "customers", **kwargs: Any) -> Any:
    headers = {"Content-Type": kwargs.pop("content_type", "text/csv")}
    return who.post(IMPORTS, params={"kind": kind, **kwargs}, content=body, headers=headers)


def wait(who: _As, url: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """Poll the job until it has finished or failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        resp = who.get(url)
        assert resp.status_code == 200, resp.text
        job: dict[str, Any] = resp.json()
        if job["status"] in {"finished", "failed"}:
            return job
        assert time.monotonic() < deadline, f"the import did not end: {job}"
        time.sleep(0.05)


def run(who: _As, body: bytes | Iterator[bytes], kind: str = "customers", **kwargs: Any) -> Any:
    resp = start(who, body, kind, **kwargs)
    assert resp.status_code == 202, resp.text
    assert resp.headers["Location"] == f"{IMPORTS}/{resp.json()['id']}"
    return wait(who, resp.headers["Location"])


def counts(job: dict[str, Any]) -> tuple[int, int, int, int]:
    return job["created"], job["updated"], job["unchanged"], job["failed"]


def errors_by_row(job: dict[str, Any]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for entry in job["errors"]:
        out.setdefault(entry["row"], set()).add(entry["field"])
    return out


def state(api: Api) -> Any:
    """The app's state (the test client types its app as a bare ASGI callable)."""
    return api.client.app.state  # type: ignore[attr-defined]


def new_job(sessions: Any, path: Path, job_id: str) -> ImportJob:
    """A customer import job of ``path`` by an administrator, queued under ``job_id``."""
    with sessions() as session:
        return imports.create_job(
            session,
            job_id=job_id,
            kind=ImportKind.customers,
            fmt=ImportFormat.csv,
            path=path,
            sha256=imports.file_sha256(path),
            scope=imports.EVERYWHERE,
            actor="admin",
        )


def events(api: Api, event_type: str) -> list[dict[str, Any]]:
    """The payloads of the outbox's events of a type, oldest first."""
    runtime = state(api).runtime
    outbox = runtime.tables.outbox
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.envelope)
            .where(outbox.c.event_type == event_type)
            .order_by(outbox.c.seq)
        ).scalars()
        return [json.loads(row)["data"] for row in rows]


def customer_count(api: Api) -> int:
    with state(api).runtime.session_factory() as session:
        return int(session.execute(select(func.count()).select_from(Customer)).scalar_one())


def find(api: Api, core_no: str) -> dict[str, Any]:
    with state(api).runtime.session_factory() as session:
        customer_id = session.execute(
            select(Customer.id).where(Customer.core_customer_no == core_no)
        ).scalar_one()
    resp = api.as_("admin").get(f"/api/v1/customers/{customer_id}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def mixed_rows() -> list[dict[str, str]]:
    """Three good rows (1, 7, 8) among five bad ones."""
    bad_check = person_id(2)[:-1] + ("0" if person_id(2)[-1] != "0" else "1")
    return [
        person_row(1),
        person_row(2, id_number=bad_check),
        person_row(3, phone="010-12345678"),
        person_row(4, kind="alien"),
        person_row(5, name=""),
        person_row(6, segment="target", core_customer_no=""),
        {
            "kind": "corporate",
            "name": "Hengda Farm Machinery Co., Ltd.",
            "org_unit": "/HQ/U01/B02",
            "business_line": "corporate",
            "credit_code": credit_code(),
            "core_customer_no": "CORP000001",
        },
        person_row(
            8,
            segment="target",
            core_customer_no="",
            data_source="township fair sign-up sheet",
            lawful_basis="consent",
        ),
    ]


def mixed_file() -> bytes:
    return csv_bytes(mixed_rows())


# -- customers ----------------------------------------------------------------------------------
def test_good_rows_go_in_and_bad_rows_are_reported_by_row_and_field(
    api: Api, tmp_path: Path
) -> None:
    admin = api.as_("admin")
    job = run(admin, mixed_file())
    assert job["status"] == "finished" and job["kind"] == "customers" and job["format"] == "csv"
    assert job["rows_total"] == job["rows_done"] == 8
    assert counts(job) == (3, 0, 0, 5)
    assert errors_by_row(job) == {
        2: {"id_number"},
        3: {"phone"},
        4: {"kind"},
        5: {"name"},
        6: {"data_source", "lawful_basis"},  # a target's personal data needs a lawful basis
    }
    check = next(e for e in job["errors"] if e["row"] == 2)
    assert "check digit" in check["reason"]
    assert job["errors_total"] == 6 and job["finished_at"] is not None
    assert list((tmp_path / "uploads").iterdir()) == []  # kept until the job ended
    assert customer_count(api) == 3
    first = find(api, "CORE000001")
    assert first["addresses"] == [{"type": "home", "text": "1 Village Road"}]
    assert first["phone"] == "139****0001" and first["status"] == "active"
    created = events(api, "customer.created")
    assert len(created) == 3
    assert {e["core_customer_no"] for e in created} == {"CORE000001", "CORP000001", None}


def test_importing_the_same_file_again_changes_nothing(api: Api) -> None:
    admin = api.as_("admin")
    body = mixed_file()
    first = run(admin, body)
    outbox_before = len(events(api, "customer.created")) + len(events(api, "customer.updated"))
    again = run(admin, body)
    assert again["file_sha256"] == first["file_sha256"]
    assert counts(again) == (0, 0, 3, 5)
    assert errors_by_row(again) == errors_by_row(first)
    assert customer_count(api) == 3
    assert len(events(api, "customer.created")) + len(events(api, "customer.updated")) == (
        outbox_before
    )
    version = find(api, "CORE000001")["version"]
    assert version == 1
    # One changed value is one update, announced with the name of what changed.
    third = run(admin, csv_bytes([person_row(1, name="Customer One"), mixed_rows()[6]]))
    assert counts(third) == (0, 1, 1, 0)
    updated = events(api, "customer.updated")
    assert [e["changed"] for e in updated] == [["name"]]
    assert find(api, "CORE000001")["name"] == "Customer One"
    assert find(api, "CORE000001")["version"] == 2


def test_a_target_found_again_in_core_banking_becomes_a_stock_customer(api: Api) -> None:
    admin = api.as_("admin")
    target = person_row(
        30, segment="target", data_source="referral", lawful_basis="consent", core_customer_no=""
    )
    assert counts(run(admin, csv_bytes([target]))) == (1, 0, 0, 0)
    stock = person_row(30, segment="stock", core_customer_no="CORE000030")
    job = run(admin, csv_bytes([stock]))
    assert counts(job) == (0, 1, 0, 0)
    customer = find(api, "CORE000030")
    assert (customer["segment"], customer["status"]) == ("stock", "active")
    assert events(api, "customer.status_changed")[-1]["new_status"] == "active"


def test_a_second_row_for_one_identity_updates_the_first(api: Api) -> None:
    admin = api.as_("admin")
    renamed = person_row(40, name="Customer Forty")
    rows = [person_row(40), person_row(41), renamed, renamed]
    job = run(admin, csv_bytes(rows))
    assert counts(job) == (2, 1, 1, 0)
    assert customer_count(api) == 2
    customer = find(api, "CORE000040")
    assert customer["name"] == "Customer Forty" and customer["version"] == 2
    assert [e["changed"] for e in events(api, "customer.updated")] == [["name"]]


def test_records_created_in_a_chunk_take_later_rows_of_the_chunk(api: Api) -> None:
    # The third row writes the chunk's new records so far to update the first; the fourth then
    # updates a record written in passing, which must be loaded rather than changed unsaved.
    admin = api.as_("admin")
    rows = [
        person_row(42),
        person_row(43),
        person_row(42, name="Customer Forty-two"),
        person_row(43, name="Customer Forty-three"),
    ]
    job = run(admin, csv_bytes(rows))
    assert counts(job) == (2, 2, 0, 0)
    assert find(api, "CORE000042")["name"] == "Customer Forty-two"
    customer = find(api, "CORE000043")
    assert customer["name"] == "Customer Forty-three" and customer["version"] == 2


def test_json_lines_carry_the_nested_shape(api: Api) -> None:
    admin = api.as_("admin")
    firm = {
        "kind": "corporate",
        "name": "Fuzhou Grain Co., Ltd.",
        "org_unit": "/HQ/U01/B01",
        "business_line": "corporate",
        "credit_code": credit_code("91350100M000200Y4"),
        "ownership_type": "private",
        "core_customer_no": "CORP000009",
        "addresses": [{"type": "business", "text": "1 Gulou Road, Fuzhou"}],
        "contacts": [{"role": "decision_maker", "name": "Chen Gang", "phone": "13900000009"}],
        "collaterals": [
            {
                "collateral_type": "real_estate",
                "description": "warehouse",
                "appraised_value": 1250000.50,  # a JSON number: read as an exact decimal
            }
        ],
        "profile": {"business": "grain wholesale"},
    }
    lines = [
        json.dumps(firm),
        "",  # blank lines are not rows
        json.dumps({**person_row(50), "address": "50 Village Road"}),
        "{not json",
        json.dumps({**person_row(51), "nickname": "Xiao Wu"}),
    ]
    body = ("\n".join(lines) + "\n").encode()
    job = run(admin, body, content_type="application/x-ndjson")
    assert job["format"] == "jsonl"
    assert counts(job) == (2, 0, 0, 2)
    assert errors_by_row(job) == {3: {"row"}, 4: {"nickname"}}
    stored = find(api, "CORP000009")
    assert stored["contacts"][0]["phone"] == "139****0009"
    assert stored["collaterals"][0]["appraised_value"] == "1250000.50"
    assert stored["profile"] == {"business": "grain wholesale"}
    again = run(admin, body, content_type="application/x-ndjson")
    assert counts(again) == (0, 0, 2, 2)
    assert events(api, "customer.updated") == []
    firm["name"] = "Fuzhou Grain Trading Co., Ltd."
    firm["contacts"] = [{"role": "decision_maker", "name": "Chen Li", "phone": "13900000009"}]
    changed = run(admin, json.dumps(firm).encode(), content_type="application/x-ndjson")
    assert counts(changed) == (0, 1, 0, 0)
    assert [e["changed"] for e in events(api, "customer.updated")] == [["contacts", "name"]]
    stored = find(api, "CORP000009")
    assert stored["version"] == 2  # one update, one version step
    assert [c["name"] for c in stored["contacts"]] == ["Chen Li"]


# -- snapshots ----------------------------------------------------------------------------------
def test_a_snapshot_import_re_tiers_customers(api: Api) -> None:
    admin = api.as_("admin")
    run(admin, csv_bytes([person_row(60), person_row(61), person_row(62)]))
    by_id = find(api, "CORE000062")["id"]
    snapshots = csv_bytes(
        [
            {
                "core_customer_no": "CORE000060",
                "business_date": BUSINESS_DATE,
                "deposits": "1000000.00",
                "products": "deposit;wealth",
            },
            {
                "core_customer_no": "CORE000061",
                "business_date": BUSINESS_DATE,
                "deposits": "150000",
            },
            {"customer_id": by_id, "business_date": BUSINESS_DATE, "loans": "10"},
            {"core_customer_no": "NOBODY", "business_date": BUSINESS_DATE, "deposits": "1"},
            {"core_customer_no": "CORE000060", "business_date": "2025-06-30", "deposits": "1"},
            {"core_customer_no": "CORE000061", "business_date": BUSINESS_DATE, "deposits": "-5"},
        ],
        SNAPSHOT_COLUMNS,
    )
    feed = api.as_client("customer.financials")
    job = run(feed, snapshots, kind="snapshots")
    assert job["kind"] == "snapshots"
    assert counts(job) == (3, 0, 0, 3)
    assert errors_by_row(job) == {
        4: {"core_customer_no"},
        5: {"business_date"},  # before the first tier policy
        6: {"deposits"},
    }
    assert find(api, "CORE000060")["tiers"]["value_tier"] == "high"
    assert find(api, "CORE000061")["tiers"]["value_tier"] == "middle"
    assert find(api, "CORE000062")["tiers"]["value_tier"] == "general"
    tier_events = len(events(api, "customer.tier_changed"))
    assert tier_events >= 3
    assert len(events(api, "customer.financials_updated")) == 3
    again = run(feed, snapshots, kind="snapshots")
    assert counts(again) == (0, 0, 3, 3)
    assert len(events(api, "customer.financials_updated")) == 3
    assert len(events(api, "customer.tier_changed")) == tier_events
    lower = csv_bytes(
        [{"core_customer_no": "CORE000060", "business_date": BUSINESS_DATE, "deposits": "5"}],
        SNAPSHOT_COLUMNS,
    )
    assert counts(run(feed, lower, kind="snapshots")) == (0, 1, 0, 0)
    assert find(api, "CORE000060")["tiers"]["value_tier"] == "general"


# -- who may import -----------------------------------------------------------------------------
def test_only_importers_may_import(api: Api, tmp_path: Path) -> None:
    body = csv_bytes([person_row(70)])
    for kind in ("customers", "snapshots"):
        refused = start(api.as_("manager.li"), body, kind=kind)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert start(api.as_client("customer.financials"), body).status_code == 403
    assert customer_count(api) == 0
    assert not (tmp_path / "uploads").exists()  # refused before the body was stored


def test_rows_outside_the_callers_subtree_are_refused(api: Api) -> None:
    admin, zhao = api.as_("admin"), api.as_("president.zhao")  # president.zhao: /HQ/U01
    run(admin, csv_bytes([person_row(80, org_unit="/HQ/U02/B01")]))
    rows = [
        person_row(81),
        person_row(82, org_unit="/HQ/U02/B01"),
        person_row(80, org_unit="/HQ/U01/B01"),  # exists in /HQ/U02: not zhao's to move
    ]
    job = run(zhao, csv_bytes(rows))
    assert counts(job) == (1, 0, 0, 2)
    assert errors_by_row(job) == {2: {"org_unit"}, 3: {"org_unit"}}
    assert find(api, "CORE000080")["org_unit"] == "/HQ/U02/B01"
    snapshot = csv_bytes(
        [{"core_customer_no": "CORE000080", "business_date": BUSINESS_DATE, "deposits": "9"}],
        SNAPSHOT_COLUMNS,
    )
    refused = run(zhao, snapshot, kind="snapshots")
    assert counts(refused) == (0, 0, 0, 1)
    assert refused["errors"][0]["reason"] == "no such customer in your org subtree"


def test_a_job_is_seen_by_its_creator_and_admins_only(api: Api) -> None:
    job = run(api.as_("president.zhao"), csv_bytes([person_row(90)]))
    url = f"{IMPORTS}/{job['id']}"
    assert api.as_("admin").get(url).status_code == 200
    for other in ("head.sun", "manager.li"):
        assert api.as_(other).get(url).status_code == 404
        assert api.as_(other).get(f"{url}/errors").status_code == 404
    assert api.as_("admin").get(f"{IMPORTS}/no-such-job").status_code == 404


# -- the error report and the file --------------------------------------------------------------
def test_the_error_report_pages_and_comes_as_csv(api: Api) -> None:
    admin = api.as_("admin")
    job = run(admin, mixed_file())
    url = f"{IMPORTS}/{job['id']}/errors"
    page = admin.get(url, params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 6 and page["limit"] == 2 and page["offset"] == 1
    assert [(e["row"], e["field"]) for e in page["items"]] == [(3, "phone"), (4, "kind")]
    report = admin.get(url, params={"format": "csv"})
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    assert "attachment" in report.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(report.text)))
    assert lines[0] == ["row", "field", "reason"]
    assert [(r[0], r[1]) for r in lines[1:]] == [
        ("2", "id_number"),
        ("3", "phone"),
        ("4", "kind"),
        ("5", "name"),
        ("6", "data_source"),
        ("6", "lawful_basis"),
    ]


def test_the_format_comes_from_the_query_or_the_content_type(api: Api) -> None:
    admin = api.as_("admin")
    body = csv_bytes([person_row(100)])
    unknown = start(admin, body, content_type="application/octet-stream")
    assert unknown.status_code == 415
    assert unknown.headers["content-type"].startswith("application/problem+json")
    named = start(admin, body, content_type="application/octet-stream", format="csv")
    assert named.status_code == 202
    assert wait(admin, named.headers["Location"])["created"] == 1
    empty = start(admin, b"")
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "body"


def test_a_csv_with_an_unknown_column_fails_as_a_whole(api: Api) -> None:
    body = b"kind,name,phnoe\nindividual,Wang Wu,13900000000\n"
    job = run(api.as_("admin"), body)
    assert job["status"] == "failed"
    assert "unknown columns: phnoe" in job["error"]
    assert job["rows_done"] == 0 and customer_count(api) == 0


def test_a_large_file_is_streamed_and_imported_in_chunks(api: Api) -> None:
    rows = 5000

    def body() -> Iterator[bytes]:
        yield csv_bytes([])  # the header
        for start_at in range(0, rows, 500):
            chunk = [person_row(i) for i in range(start_at, start_at + 500)]
            yield csv_bytes(chunk).split(b"\n", 1)[1]

    job = run(api.as_("admin"), body())
    assert job["status"] == "finished", job
    assert job["rows_total"] == rows and counts(job) == (rows, 0, 0, 0)
    assert customer_count(api) == rows
    assert len(events(api, "customer.created")) == rows


# -- crash and resume ---------------------------------------------------------------------------
class SimulatedCrash(BaseException):
    """The process dies: nothing of the runner's own handling runs."""


def test_a_job_resumes_after_a_crash_where_its_last_chunk_committed(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions, ctx = state(api).runtime.session_factory, state(api).customer_context
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_bytes([person_row(i) for i in range(200, 235)]))
    new_job(sessions, path, "00000000-0000-4000-8000-000000000001")
    real_progress = imports.record_progress
    calls = 0

    def crash_in_second_chunk(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second chunk's rows are written but not committed
            raise SimulatedCrash
        real_progress(*args)

    monkeypatch.setattr(import_runner, "record_progress", crash_in_second_chunk)
    first = ImportRunner(sessions, ctx, chunk_rows=10, import_dir=tmp_path / "uploads")
    with pytest.raises(SimulatedCrash):
        first.run_job("00000000-0000-4000-8000-000000000001")
    url = f"{IMPORTS}/00000000-0000-4000-8000-000000000001"
    crashed = api.as_("admin").get(url).json()
    assert (crashed["status"], crashed["rows_done"], crashed["created"]) == ("running", 10, 10)
    assert customer_count(api) == 10
    monkeypatch.setattr(import_runner, "record_progress", real_progress)

    restarted = ImportRunner(sessions, ctx, chunk_rows=10, import_dir=tmp_path / "uploads")
    assert restarted.resume() == ["00000000-0000-4000-8000-000000000001"]
    try:
        job = wait(api.as_("admin"), url)
    finally:
        restarted.stop()
    assert job["status"] == "finished" and job["rows_total"] == 35
    assert counts(job) == (35, 0, 0, 0)
    assert customer_count(api) == 35
    assert len(events(api, "customer.created")) == 35  # none twice, none lost
    assert path.exists()  # a file the job did not receive is not the runner's to remove


def test_a_stopped_runner_leaves_its_job_to_be_resumed(api: Api, tmp_path: Path) -> None:
    sessions, ctx = state(api).runtime.session_factory, state(api).customer_context
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_bytes([person_row(i) for i in range(300, 325)]))
    job = new_job(sessions, path, "00000000-0000-4000-8000-000000000002")
    runner = ImportRunner(sessions, ctx, chunk_rows=10, import_dir=tmp_path)
    status = runner.run_job(job.id, on_progress=lambda progress: runner.stop())
    assert status is ImportStatus.running
    with sessions() as session:
        stored = session.get(ImportJob, job.id)
        assert stored is not None and (stored.status, stored.rows_done) == ("running", 10)
    later = ImportRunner(sessions, ctx, chunk_rows=10, import_dir=tmp_path)
    assert later.run_job(job.id) is ImportStatus.finished
    assert customer_count(api) == 25


def test_two_runners_on_one_job_never_commit_a_chunk_twice(api: Api, tmp_path: Path) -> None:
    sessions, ctx = state(api).runtime.session_factory, state(api).customer_context
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_bytes([person_row(i) for i in range(400, 420)]))
    job = new_job(sessions, path, "00000000-0000-4000-8000-000000000003")
    first = ImportRunner(sessions, ctx, chunk_rows=10, import_dir=tmp_path)
    second = ImportRunner(sessions, ctx, chunk_rows=10, import_dir=tmp_path)
    outcomes: list[ImportStatus] = []

    def another_process_resumes(progress: imports.Progress) -> None:
        if not outcomes:  # after the first runner's first chunk, the second one runs the rest
            outcomes.append(second.run_job(job.id))

    # The first runner's second chunk finds the job moved on: it is rolled back, not counted.
    assert first.run_job(job.id, on_progress=another_process_resumes) is ImportStatus.running
    assert outcomes == [ImportStatus.finished]
    done = api.as_("admin").get(f"{IMPORTS}/{job.id}").json()
    assert done["status"] == "finished" and done["rows_total"] == 20
    assert counts(done) == (20, 0, 0, 0)
    assert len(events(api, "customer.created")) == 20


# -- the command line ---------------------------------------------------------------------------
def test_the_command_imports_a_file_with_progress(
    api: Api, customer_settings: CustomerSettings, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(mixed_file())
    out, err = io.StringIO(), io.StringIO()
    status = import_cli.run(
        customer_settings, path, ImportKind.customers, ImportFormat.csv, out, err
    )
    assert status == import_cli.EXIT_OK  # finished, refused rows and all
    assert "8 rows: 3 created, 0 updated, 0 unchanged, 5 refused" in out.getvalue()
    assert "row 2: id_number: check digit mismatch" in out.getvalue()
    assert "rows/s" in err.getvalue()
    assert customer_count(api) == 3
    assert path.exists()


def test_the_command_refuses_usage_errors(tmp_path: Path) -> None:
    assert import_cli.main([str(tmp_path / "missing.csv"), "--kind", "customers"]) == 2
    unnamed = tmp_path / "customers.txt"
    unnamed.write_text("kind\n")
    assert import_cli.main([str(unnamed), "--kind", "customers"]) == 2
    assert import_cli.main([str(unnamed), "--kind", "accounts"]) == 2
    named = [str(unnamed), "--kind", "customers", "--format", "csv"]
    assert import_cli.main([*named, "--database-url", "not a url"]) == 2


def test_a_gbt4754_column_sets_the_corporate_market_segment(api: Api) -> None:
    admin = api.as_("admin")
    firm_row = {**mixed_rows()[6], "industry_code": "C1311"}
    bad_row = {
        **firm_row,
        "credit_code": credit_code("91350100M000900Y4"),
        "core_customer_no": "CORP000009",
        "industry_code": "99",
    }
    body = csv_bytes([firm_row, bad_row], [*COLUMNS, "industry_code"])
    job = run(admin, body)
    assert counts(job) == (1, 0, 0, 1)
    assert errors_by_row(job) == {2: {"industry_code"}}
    assert find(api, "CORP000001")["market_segment"] == "manufacturing"
    assert counts(run(admin, body)) == (0, 0, 1, 1)


# -- worker processes ---------------------------------------------------------------------------
def test_worker_processes_prepare_the_chunks_of_a_large_import(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions, ctx = state(api).runtime.session_factory, state(api).customer_context
    rows = [*mixed_rows(), person_row(50), person_row(50, name="Customer Fifty"), person_row(51)]
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_bytes(rows))

    def not_here(*args: Any) -> Any:
        raise AssertionError("the job's process prepared a chunk: the workers did not")

    # Only this process is patched: the spawned workers prepare with the real code.
    monkeypatch.setattr(import_customers.CustomerRows, "prepare", not_here)
    runner = ImportRunner(
        sessions,
        ctx,
        chunk_rows=3,
        import_dir=tmp_path / "uploads",
        workers=2,
        parallel_min_bytes=0,
        worker_settings=state(api).runtime.settings,
    )
    job_id = "00000000-0000-4000-8000-000000000010"
    new_job(sessions, path, job_id)
    assert runner.run_job(job_id) is ImportStatus.finished
    job = api.as_("admin").get(f"{IMPORTS}/{job_id}").json()
    # As in the job's process: rows 9 and 10 are one identity (created, then renamed).
    assert counts(job) == (5, 1, 0, 5)
    assert errors_by_row(job) == {
        2: {"id_number"},
        3: {"phone"},
        4: {"kind"},
        5: {"name"},
        6: {"data_source", "lawful_basis"},
    }
    created = events(api, "customer.created")
    assert len(created) == 5 and customer_count(api) == 5
    assert {e["core_customer_no"] for e in created} == {
        "CORE000001",
        "CORP000001",
        None,
        "CORE000050",
        "CORE000051",
    }
    customer = find(api, "CORE000050")
    assert customer["name"] == "Customer Fifty" and customer["version"] == 2
    assert customer["id_number"] == person_id(50)[:6] + "********" + person_id(50)[-4:]
    # The workers' blind indexes are this process's: importing the file again finds every row.
    again_id = "00000000-0000-4000-8000-000000000011"
    new_job(sessions, path, again_id)
    assert runner.run_job(again_id) is ImportStatus.finished
    again = api.as_("admin").get(f"{IMPORTS}/{again_id}").json()
    # Rows 9 and 10 rename customer 50 back and forth; the other good rows change nothing.
    assert counts(again) == (0, 2, 4, 5)
    assert customer_count(api) == 5


def test_an_import_goes_on_in_its_own_process_when_the_workers_die(
    api: Api, tmp_path: Path
) -> None:
    ctx = state(api).customer_context
    pool = import_pool.PreparePool(state(api).runtime.settings, workers=1)

    class Broken:
        def submit(self, *args: Any) -> Any:
            raise BrokenProcessPool("a worker was killed")

        def shutdown(self, **kwargs: Any) -> None:
            pass

    pool._executor = Broken()  # type: ignore[assignment]
    chunks = [[SourceRow(1, person_row(60))], [SourceRow(2, person_row(61))]]
    handler = import_customers.CustomerRows(ctx)
    job = RunningJob(
        id="job",
        kind=ImportKind.customers,
        fmt=ImportFormat.csv,
        path=tmp_path,
        actor="admin",
        scope=imports.scope_caller(imports.EVERYWHERE, "admin"),
        rows_done=0,
        created=0,
        updated=0,
        unchanged=0,
        failed=0,
    )
    prepared = list(pool.prepared(handler, job, chunks))
    pool.close()
    assert [chunk for chunk, _ in prepared] == chunks
    rows = [row for _, chunk_rows in prepared for row in chunk_rows]
    assert [row.number for row in rows] == [1, 2]
    assert all(row.new is not None and not row.errors for row in rows)
