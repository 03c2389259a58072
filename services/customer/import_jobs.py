"""Import jobs: who may import what, queueing a job, its error report; and what the row
handlers and the runner share (the tally of a chunk, the running job, loading customers)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from crmkit.auth import Caller
from crmkit.db import one_of, utcnow
from crmkit.errors import Forbidden, NotFound
from services.customer import access
from services.customer.models import (
    Customer,
    ImportJob,
    ImportRowError,
)
from services.customer.schemas_imports import ImportFormat, ImportKind, ImportStatus

IMPORTS_PATH = "/api/v1/customers/imports"
# The import scope of callers who may write anywhere (admins, core banking's feed, the CLI).
EVERYWHERE = "/"
ACTIVE = (ImportStatus.queued.value, ImportStatus.running.value)
# Values per IN list: far below the bind-parameter limits of SQLite and PostgreSQL whatever the
# chunk size is configured to.
IN_BATCH = 500
_FIELD_MAX = 100
_REASON_MAX = 500


# -- who may import what ------------------------------------------------------------------------
def import_scope(caller: Caller, kind: ImportKind) -> str:
    """The org subtree an import by ``caller`` may write in; Forbidden if they may not import.

    The scope is kept on the job (``ImportJob.org_unit``), so a job resumed after a restart
    checks its rows against the same subtree without the caller's token.
    """
    if kind is ImportKind.customers:
        if not access.may_import(caller):
            raise Forbidden("only administrators and branch presidents import customers")
        return EVERYWHERE if access.is_admin(caller) else caller.org_unit
    # Core banking's figures are bank-wide, as in the single-snapshot API.
    if access.is_admin(caller) or access.may_record_financials(caller):
        return EVERYWHERE
    if access.may_import(caller):
        return caller.org_unit
    raise Forbidden(
        "only core banking's feed, operations staff, administrators and branch presidents "
        "import snapshots"
    )


def scope_caller(scope: str, actor: str) -> Caller:
    """A caller standing for a job's scope, to check rows with ``Caller.within``."""
    return Caller(subject=actor, name=actor, roles=frozenset(), org_unit=scope)


# -- jobs ---------------------------------------------------------------------------------------
def create_job(
    session: Session,
    *,
    job_id: str,
    kind: ImportKind,
    fmt: ImportFormat,
    path: Path,
    sha256: str,
    scope: str,
    actor: str,
) -> ImportJob:
    """Queue an import of the file at ``path`` (commits)."""
    job = ImportJob(
        id=job_id,
        kind=kind.value,
        format=fmt.value,
        status=ImportStatus.queued.value,
        file_sha256=sha256,
        file_path=str(path),
        rows_total=0,
        rows_done=0,
        rows_created=0,
        rows_updated=0,
        rows_unchanged=0,
        rows_failed=0,
        org_unit=scope,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(job)
    session.commit()
    return job


def load_job(session: Session, caller: Caller, job_id: str) -> ImportJob:
    """The job if the caller may see it (admins, and whoever started it); else 404."""
    job = session.get(ImportJob, job_id)
    if job is None or not (access.is_admin(caller) or job.created_by == caller.subject):
        raise NotFound(f"no import job {job_id}")
    return job


def error_page(
    session: Session, job_id: str, limit: int, offset: int
) -> tuple[list[ImportRowError], int]:
    """A page of a job's error report in row order, and the number of entries in all."""
    total = session.execute(
        select(func.count()).select_from(ImportRowError).where(ImportRowError.job_id == job_id)
    ).scalar_one()
    rows = session.scalars(
        select(ImportRowError)
        .where(ImportRowError.job_id == job_id)
        .order_by(ImportRowError.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total)


def error_batches(
    session: Session, job_id: str, batch: int = 1000
) -> Iterator[list[ImportRowError]]:
    """The whole error report in row order, a batch at a time (a report may be large)."""
    after = 0
    while True:
        rows = list(
            session.scalars(
                select(ImportRowError)
                .where(ImportRowError.job_id == job_id, ImportRowError.id > after)
                .order_by(ImportRowError.id)
                .limit(batch)
            ).all()
        )
        if not rows:
            return
        yield rows
        after = rows[-1].id


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# -- outcome of a chunk -------------------------------------------------------------------------
@dataclass
class Tally:
    """What a chunk did; the errors are rows for ``import_errors``."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, row: int, items: Iterable[dict[str, Any]]) -> None:
        self.failed += 1
        for item in items:
            self.errors.append(
                {
                    "row": row,
                    "field": str(item["field"])[:_FIELD_MAX],
                    "reason": str(item["reason"])[:_REASON_MAX],
                }
            )


@dataclass
class RunningJob:
    """A running job as the runner keeps it between chunks."""

    id: str
    kind: ImportKind
    fmt: ImportFormat
    path: Path
    actor: str
    scope: Caller
    rows_done: int
    created: int
    updated: int
    unchanged: int
    failed: int

    @property
    def everywhere(self) -> bool:
        return self.scope.org_unit == EVERYWHERE

    def advance(self, rows: int, tally: Tally) -> None:
        self.rows_done += rows
        self.created += tally.created
        self.updated += tally.updated
        self.unchanged += tally.unchanged
        self.failed += tally.failed


def validation_errors(
    exc: ValidationError, renames: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        path = ".".join(str(part) for part in err["loc"]) or "row"
        out.append({"field": (renames or {}).get(path, path), "reason": err["msg"]})
    return out


def load_customers(
    session: Session, keys: Sequence[tuple[InstrumentedAttribute[Any], set[str]]]
) -> list[Customer]:
    """The customers having any of the given key values: one query per ``IN_BATCH`` values."""
    lists = [(column, sorted(values)) for column, values in keys if values]
    found: dict[str, Customer] = {}
    start = 0
    while any(start < len(values) for _, values in lists):
        conditions: list[ColumnElement[bool]] = [
            one_of(session, column, values[start : start + IN_BATCH])
            for column, values in lists
            if start < len(values)
        ]
        for customer in session.scalars(select(Customer).where(or_(*conditions))):
            found[customer.id] = customer
        start += IN_BATCH
    return list(found.values())
