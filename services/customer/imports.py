"""Bulk import of customers and of core banking's daily snapshots, from CSV or JSON Lines.

A file is read as a stream, a chunk of rows at a time (``import_chunk_rows``). Each chunk is one
transaction that writes its good rows, their events (outbox), the errors of its refused rows and
the job's progress. A job interrupted by a crash or a shutdown therefore resumes where its last
chunk committed: the rows already counted in ``rows_done`` are skipped.

Rows
    A data row is a CSV record after the header, or a line of a JSON Lines file; blank ones are
    not rows. Rows are numbered from 1 in that order (the CSV header is not counted): that is the
    number the error report gives. An empty CSV cell, or a null in JSON, leaves the stored value
    as it is. A row with a bad field is refused whole, with every field error; the others go in.

Idempotence
    A customer row is matched to its record by its identity (the blind index of its resident id
    number or credit code) or by its core banking customer number, and updates the record only
    where a value differs; otherwise it counts as unchanged and records no event. A row with
    neither key is refused, since importing it twice would create it twice. A snapshot row changes
    its (customer, business date) only when a figure differs. Importing the same file again
    therefore changes nothing.

Speed
    A chunk is validated first, outside the transaction; then one query loads the chunk's existing
    customers by identity and core number, the new records and their change log go in as batched
    inserts at the flush, and the events as one insert at commit (see ``crmkit.outbox``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import ColumnElement, CursorResult, func, insert, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit import context
from crmkit.auth import Caller
from crmkit.db import utcnow
from crmkit.errors import Forbidden, NotFound
from services.customer import access, events
from services.customer.context import CustomerContext
from services.customer.domain import business_today
from services.customer.financials import apply_snapshot
from services.customer.identity import (
    IdentityError,
    normalize_mobile,
    validate_credit_code,
    validate_resident_id,
)
from services.customer.models import (
    Base,
    Change,
    Collateral,
    Contact,
    Customer,
    FinancialSnapshot,
    Guarantor,
    ImportJob,
    ImportRowError,
)
from services.customer.personal import (
    CONTACT_PHONE_CONTEXT,
    PEOPLE,
    FieldErrors,
    identity_index,
    parse_mobile,
)
from services.customer.record import (
    apply_fields,
    check_target_basis,
    given_fields,
    replace_children,
)
from services.customer.schemas import CustomerCreate, SnapshotIn
from services.customer.schemas_imports import ImportFormat, ImportKind, ImportStatus
from services.customer.service import event_payload, new_customer
from services.customer.tier_policy import NoPolicyInForce

log = logging.getLogger(__name__)

IMPORTS_PATH = "/api/v1/customers/imports"
# The import scope of callers who may write anywhere (admins, core banking's feed, the CLI).
EVERYWHERE = "/"
ACTIVE = (ImportStatus.queued.value, ImportStatus.running.value)

_CHILDREN = ("contacts", "collaterals", "guarantors")
_NESTED = frozenset({"addresses", "profile", *_CHILDREN})
CUSTOMER_COLUMNS = (frozenset(CustomerCreate.model_fields) - _NESTED) | {"address"}
_SNAPSHOT_KEYS = ("customer_id", "core_customer_no")
SNAPSHOT_COLUMNS = frozenset(SnapshotIn.model_fields) | set(_SNAPSHOT_KEYS)
# Values per IN list: far below the bind-parameter limits of SQLite and PostgreSQL whatever the
# chunk size is configured to.
_IN_BATCH = 500
# A chunk that lost a race with another writer (a unique identity, a record's version) is done
# again from the start: the second time its query sees the other writer's rows.
_CHUNK_ATTEMPTS = 3
_FIELD_MAX = 100
_REASON_MAX = 500
# New records and change-log rows go in as Core inserts of plain rows: the unit of work costs
# several times the insert itself for a record this wide.
_CUSTOMERS = Base.metadata.tables[Customer.__tablename__]
_CHANGES = Base.metadata.tables[Change.__tablename__]
_CUSTOMER_COLUMNS = tuple(
    (attr.key, attr.columns[0].key) for attr in sa_inspect(Customer).column_attrs
)


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


# -- reading files ------------------------------------------------------------------------------
class ImportFileError(ValueError):
    """The file as a whole cannot be read (unknown columns, not UTF-8, gone): the job fails."""


@dataclass(frozen=True)
class SourceRow:
    """One data row as read: its number and values, or why it could not be read."""

    number: int
    values: dict[str, Any]
    problem: str | None = None


class RowSource:
    """The data rows of an import file, read as a stream: memory does not grow with the file."""

    def __init__(self, path: Path, fmt: ImportFormat, kind: ImportKind) -> None:
        self.fmt = fmt
        self.columns = CUSTOMER_COLUMNS if kind is ImportKind.customers else SNAPSHOT_COLUMNS
        try:
            self._raw = path.open("rb")
        except OSError as exc:
            raise ImportFileError(f"the import file cannot be read: {exc.strerror}") from exc
        self.bytes_total = os.fstat(self._raw.fileno()).st_size
        # utf-8-sig: spreadsheet programs put a byte order mark in front of CSV files.
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8-sig", newline="")

    @property
    def bytes_read(self) -> int:
        """How far the file has been read (ahead of the rows handed out by a buffer at most)."""
        return self._raw.tell()

    def __enter__(self) -> RowSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._text.close()

    def __iter__(self) -> Iterator[SourceRow]:
        rows = self._csv_rows() if self.fmt is ImportFormat.csv else self._jsonl_rows()
        try:
            yield from rows
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"the file is not UTF-8 text (byte {exc.start} of a block near byte "
                f"{self.bytes_read}); save it as UTF-8"
            ) from exc

    def _csv_rows(self) -> Iterator[SourceRow]:
        reader = csv.reader(self._text)
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        self._check_header(names)
        number = 0
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            number += 1
            if len(record) > len(names):
                yield SourceRow(
                    number,
                    {},
                    f"the row has {len(record)} values but the header {len(names)} columns",
                )
                continue
            values = {
                name: cell.strip()
                for name, cell in zip(names, record, strict=False)
                if name and cell.strip()
            }
            yield SourceRow(number, values)

    def _check_header(self, names: list[str]) -> None:
        unknown = sorted({n for n in names if n} - self.columns)
        if unknown:
            raise ImportFileError(
                f"unknown columns: {', '.join(unknown)}; the columns are: "
                f"{', '.join(sorted(self.columns))}"
            )
        repeated = sorted({n for n in names if n and names.count(n) > 1})
        if repeated:
            raise ImportFileError(f"repeated columns: {', '.join(repeated)}")

    def _jsonl_rows(self) -> Iterator[SourceRow]:
        number = 0
        for line in self._text:
            if not line.strip():
                continue
            number += 1
            try:
                # Decimal: amounts are exact, never floats.
                value = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield SourceRow(number, {}, f"not valid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(value, dict):
                yield SourceRow(number, {}, "a JSON Lines row must be an object")
                continue
            yield SourceRow(number, {k: v for k, v in value.items() if v is not None})


def _chunks(rows: Iterable[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


# -- outcome of a chunk -------------------------------------------------------------------------
@dataclass
class _Tally:
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
class _Job:
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

    def advance(self, rows: int, tally: _Tally) -> None:
        self.rows_done += rows
        self.created += tally.created
        self.updated += tally.updated
        self.unchanged += tally.unchanged
        self.failed += tally.failed


def _validation_errors(
    exc: ValidationError, renames: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        path = ".".join(str(part) for part in err["loc"]) or "row"
        out.append({"field": (renames or {}).get(path, path), "reason": err["msg"]})
    return out


def _load_customers(
    session: Session, keys: Sequence[tuple[InstrumentedAttribute[Any], set[str]]]
) -> list[Customer]:
    """The customers having any of the given key values: one query per ``_IN_BATCH`` values."""
    lists = [(column, sorted(values)) for column, values in keys if values]
    found: dict[str, Customer] = {}
    start = 0
    while any(start < len(values) for _, values in lists):
        conditions: list[ColumnElement[bool]] = [
            column.in_(values[start : start + _IN_BATCH])
            for column, values in lists
            if start < len(values)
        ]
        for customer in session.scalars(select(Customer).where(or_(*conditions))):
            found[customer.id] = customer
        start += _IN_BATCH
    return list(found.values())


# -- customer rows ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _CustomerRow:
    """A customer row validated by the schema, with the keys it is matched on."""

    number: int
    cmd: CustomerCreate | None
    errors: list[dict[str, Any]]
    identity: str | None = None
    core_no: str | None = None


# Where the schema finds fault with the one ``address`` cell of a flat row.
_ADDRESS_PATHS = {
    "addresses": "address",
    "addresses.0": "address",
    "addresses.0.text": "address",
    "addresses.0.type": "address",
}


class CustomerRows:
    """Customer rows: validated as the API validates, then created or updated idempotently."""

    def __init__(self, ctx: CustomerContext) -> None:
        self.ctx = ctx

    def prepare(self, rows: Sequence[SourceRow]) -> list[_CustomerRow]:
        """Validate rows by the schema and compute their keys (pure: no database)."""
        today = business_today()
        out: list[_CustomerRow] = []
        for row in rows:
            if row.problem is not None:
                out.append(
                    _CustomerRow(row.number, None, [{"field": "row", "reason": row.problem}])
                )
                continue
            data = dict(row.values)
            renames: dict[str, str] = {}
            address = data.get("address")
            if isinstance(address, str) and "addresses" not in data:
                # A flat row's one address text is the customer's home address.
                del data["address"]
                data["addresses"] = [{"type": "home", "text": address}]
                renames = _ADDRESS_PATHS
            try:
                cmd = CustomerCreate.model_validate(data)
            except ValidationError as exc:
                out.append(_CustomerRow(row.number, None, _validation_errors(exc, renames)))
                continue
            out.append(
                _CustomerRow(row.number, cmd, [], self._identity(cmd, today), cmd.core_customer_no)
            )
        return out

    def _identity(self, cmd: CustomerCreate, today: date) -> str | None:
        """The blind index the row's identity would be stored under (None if it has none)."""
        kind = cmd.kind.value
        try:
            if kind in PEOPLE:
                if not cmd.id_number:
                    return None
                number = validate_resident_id(cmd.id_number, today=today).number
                return identity_index(self.ctx.cipher, kind, number, None)
            if not cmd.credit_code:
                return None
            return identity_index(
                self.ctx.cipher, kind, None, validate_credit_code(cmd.credit_code)
            )
        except IdentityError:
            return None  # not a key; applying the row reports the field

    def apply(self, session: Session, job: _Job, rows: Sequence[_CustomerRow]) -> _Tally:
        """Write the chunk's rows in the session's transaction (not committed here)."""
        return _CustomerChunk(session, self.ctx, job).run(rows)


class _CustomerChunk:
    """One attempt at one chunk of customer rows, in one transaction."""

    def __init__(self, session: Session, ctx: CustomerContext, job: _Job) -> None:
        self.session = session
        self.ctx = ctx
        self.job = job
        self.tally = _Tally()
        self.today = business_today()
        self.by_identity: dict[str, Customer] = {}
        self.by_core: dict[str, Customer] = {}
        # Records this chunk changed in the session, not flushed yet (see ``_persistent``).
        self.touched: set[str] = set()
        # New records without child lists, inserted together when the chunk's rows are done.
        self.pending: dict[str, Customer] = {}
        self.changes: list[dict[str, Any]] = []

    def run(self, rows: Sequence[_CustomerRow]) -> _Tally:
        valid = [r for r in rows if r.cmd is not None]
        for customer in _load_customers(
            self.session,
            [
                (Customer.identity_index, {r.identity for r in valid if r.identity}),
                (Customer.core_customer_no, {r.core_no for r in valid if r.core_no}),
            ],
        ):
            self._remember(customer)
        for row in rows:
            if row.cmd is None:
                self.tally.refuse(row.number, row.errors)
            else:
                self._row(row, row.cmd)
        self._insert_pending()
        if self.changes:
            self.session.execute(insert(_CHANGES), self.changes)
        return self.tally

    def _insert_pending(self) -> None:
        """Insert the new records collected so far, as plain rows (see ``_CUSTOMERS``)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for customer in self.pending.values():
            state = customer.__dict__  # what was set; a column never set takes its default
            row = {column: state[key] for key, column in _CUSTOMER_COLUMNS if key in state}
            groups.setdefault(tuple(row), []).append(row)
        for rows in groups.values():
            self.session.execute(insert(_CUSTOMERS), rows)
        self.pending.clear()

    def _log(self, customer_id: str, version: int, action: str, fields: Iterable[str]) -> None:
        """The change-log row ``service.log_change`` writes, collected for one insert."""
        self.changes.append(
            {
                "customer_id": customer_id,
                "version": version,
                "action": action,
                "actor": self.job.actor,
                "at": utcnow(),
                "changes": {"fields": sorted(set(fields)), "import_job": self.job.id},
            }
        )

    def _remember(self, customer: Customer) -> None:
        if customer.identity_index is not None:
            self.by_identity[customer.identity_index] = customer
        if customer.core_customer_no is not None:
            self.by_core[customer.core_customer_no] = customer

    def _row(self, row: _CustomerRow, cmd: CustomerCreate) -> None:
        by_identity = self.by_identity.get(row.identity) if row.identity else None
        by_core = self.by_core.get(row.core_no) if row.core_no else None
        if by_identity is not None and by_core is not None and by_identity is not by_core:
            self.tally.refuse(
                row.number,
                [
                    {
                        "field": "core_customer_no",
                        "reason": f"belongs to customer {by_core.id}, the identity to "
                        f"customer {by_identity.id}",
                    }
                ],
            )
            return
        existing = by_identity or by_core
        if existing is None:
            self._create(row, cmd)
        else:
            self._update(row, cmd, existing)

    def _scope_errors(self, org_unit: str, errors: FieldErrors) -> None:
        if not self.job.scope.within(org_unit):
            errors.add("org_unit", f"{org_unit} is outside your org subtree")

    def _create(self, row: _CustomerRow, cmd: CustomerCreate) -> None:
        errors = FieldErrors()
        if row.identity is None and row.core_no is None:
            key = "id_number" if cmd.kind.value in PEOPLE else "credit_code"
            if not cmd.id_number and not cmd.credit_code:
                errors.add(
                    key,
                    "an imported customer needs an identity or a core_customer_no, so that "
                    "importing it again finds it",
                )
        self._scope_errors(cmd.org_unit, errors)
        customer = new_customer(self.ctx, cmd, self.job.actor)
        check_target_basis(cmd.segment.value, cmd.data_source, cmd.lawful_basis, errors)
        apply_fields(self.session, self.ctx, customer, cmd, errors, creating=True)
        self._check_children(cmd, errors)
        if errors:
            self.tally.refuse(row.number, errors.items)
            return
        customer.version = 1  # set by the unit of work, which a batched insert goes without
        if any(name in cmd.model_fields_set for name in _CHILDREN):
            # Rare in a bank's export: this record goes through the session with its children.
            self.session.add(customer)
            replace_children(self.session, self.ctx, customer, cmd)
            self.touched.add(customer.id)
        else:
            self.pending[customer.id] = customer
        self._log(customer.id, 1, "created", given_fields(cmd))
        self.ctx.recorder.record(
            self.session,
            events.CUSTOMER_CREATED,
            event_payload(customer),
            key=customer.id,
            actor=self.job.actor,
        )
        self._remember(customer)
        self.tally.created += 1

    def _update(self, row: _CustomerRow, cmd: CustomerCreate, customer: Customer) -> None:
        customer = self._persistent(customer)
        errors = FieldErrors()
        if not self.job.scope.within(customer.org_unit):
            errors.add("org_unit", f"customer {customer.id} is outside your org subtree")
        self._scope_errors(cmd.org_unit, errors)
        if customer.merged_into is not None:
            errors.add("row", f"customer {customer.id} was merged into {customer.merged_into}")
        if cmd.kind.value != customer.kind:
            errors.add("kind", f"customer {customer.id} is {customer.kind}")
        wants_target = "segment" in cmd.model_fields_set and cmd.segment.value == "target"
        if wants_target and customer.segment != "target":
            errors.add("segment", f"customer {customer.id} is already a stock customer")
        if errors:
            self.tally.refuse(row.number, errors.items)
            return
        customer_id, old_status = customer.id, customer.status
        # Checks and child lists read the database: the record must not be flushed half-changed,
        # which would step its version twice for one update (as in update_customer).
        with self.session.no_autoflush:
            cmd = self._without_unchanged(customer, cmd)
            changed = apply_fields(self.session, self.ctx, customer, cmd, errors, creating=False)
            promoted = (
                "segment" in cmd.model_fields_set
                and cmd.segment.value == "stock"
                and customer.segment == "target"
            )
            segment = "stock" if promoted else customer.segment
            check_target_basis(segment, customer.data_source, customer.lawful_basis, errors)
            self._check_unique(customer, changed, errors)
            self._check_children(cmd, errors)
            if errors or not (
                changed or promoted or any(n in cmd.model_fields_set for n in _CHILDREN)
            ):
                # Drops what apply_fields set: a refused row changes nothing, and an unchanged one
                # must not be written (its phone was encrypted again, to an equal value).
                self.session.expire(customer)
                if errors:
                    self.tally.refuse(row.number, errors.items)
                else:
                    self.tally.unchanged += 1
                return
            changed += replace_children(self.session, self.ctx, customer, cmd)
            if promoted:
                customer.segment = "stock"
                changed.append("segment")
                if customer.status == "target":
                    customer.status = "active"
                    changed.append("status")
            customer.updated_at = utcnow()
            customer.updated_by = self.job.actor
            self._log(customer_id, customer.version + 1, "updated", changed)
        self.ctx.recorder.record(
            self.session,
            events.CUSTOMER_UPDATED,
            event_payload(customer, changed=sorted(set(changed))),
            key=customer_id,
            actor=self.job.actor,
        )
        if customer.status != old_status:
            self.ctx.recorder.record(
                self.session,
                events.CUSTOMER_STATUS_CHANGED,
                {
                    "customer_id": customer_id,
                    "old_status": old_status,
                    "new_status": customer.status,
                    "reason": f"imported as a stock customer (import job {self.job.id})",
                },
                key=customer_id,
                actor=self.job.actor,
            )
        self._remember(customer)
        self.touched.add(customer_id)
        self.tally.updated += 1

    def _persistent(self, customer: Customer) -> Customer:
        """The record in the session, ready for another row of this chunk to change it.

        A record this chunk created is inserted now and loaded; one it changed is flushed, so
        that the version steps once per change and dropping this row's edits (``expire``) keeps
        the earlier row's.
        """
        if customer.id in self.pending:
            self._insert_pending()
            loaded = self.session.get(Customer, customer.id)
            assert loaded is not None  # inserted just now, in this transaction
            self._remember(loaded)
            return loaded
        if customer.id in self.touched:
            self.session.flush()
            self.touched.clear()
        return customer

    def _without_unchanged(self, customer: Customer, cmd: CustomerCreate) -> CustomerCreate:
        """The row without what ``apply_fields`` and ``replace_children`` would count as changed
        although it is equal: the operator's id (stored again whenever given) and child lists
        (replaced whenever given)."""
        same: set[str] = set()
        if cmd.operator_id_number and customer.operator_id_index is not None:
            try:
                number = validate_resident_id(cmd.operator_id_number, today=self.today).number
            except IdentityError:
                number = None
            # The operator's index is the blind index of a resident id, as a person's identity.
            if (
                number is not None
                and identity_index(self.ctx.cipher, "individual", number, None)
                == customer.operator_id_index
            ):
                same.add("operator_id_number")
        for name in _CHILDREN:
            if name in cmd.model_fields_set and self._same_children(customer, cmd, name):
                same.add(name)
        if not same:
            return cmd
        return CustomerCreate.model_construct(_fields_set=cmd.model_fields_set - same, **dict(cmd))

    def _same_children(self, customer: Customer, cmd: CustomerCreate, name: str) -> bool:
        session = self.session
        if name == "contacts":
            contacts = session.scalars(
                select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)
            ).all()
            stored = [
                (
                    c.role,
                    c.name,
                    c.title,
                    self.ctx.cipher.decrypt(c.phone_enc, context=CONTACT_PHONE_CONTEXT)
                    if c.phone_enc
                    else None,
                    c.notes,
                )
                for c in contacts
            ]
            given = [
                (c.role.value, c.name, c.title, _mobile_or_raw(c.phone), c.notes)
                for c in cmd.contacts or []
            ]
            return stored == given
        if name == "collaterals":
            items = session.scalars(
                select(Collateral)
                .where(Collateral.customer_id == customer.id)
                .order_by(Collateral.id)
            ).all()
            return [
                (c.collateral_type, c.description, c.appraised_value, c.appraised_on) for c in items
            ] == [
                (c.collateral_type.value, c.description, c.appraised_value, c.appraised_on)
                for c in cmd.collaterals or []
            ]
        guarantors = session.scalars(
            select(Guarantor).where(Guarantor.customer_id == customer.id).order_by(Guarantor.id)
        ).all()
        return [(g.name, g.guarantor_customer_id, g.guaranteed_amount) for g in guarantors] == [
            (g.name, g.guarantor_customer_id, g.guaranteed_amount) for g in cmd.guarantors or []
        ]

    def _check_children(self, cmd: CustomerCreate, errors: FieldErrors) -> None:
        """What ``replace_children`` would refuse by rolling the whole transaction back, found
        first, so that such a row is refused alone."""
        for i, contact in enumerate(cmd.contacts or []):
            if contact.phone:
                parse_mobile(contact.phone, f"contacts.{i}.phone", errors)
        for i, guarantor in enumerate(cmd.guarantors or []):
            other = guarantor.guarantor_customer_id
            if other and self.session.get(Customer, other) is None:
                errors.add(f"guarantors.{i}.guarantor_customer_id", "no such customer")

    def _check_unique(self, customer: Customer, changed: list[str], errors: FieldErrors) -> None:
        """A changed identity or core number must not be another record's. Every record holding
        a key of the chunk was loaded, so the maps answer without a query."""
        if {"id_number", "credit_code"} & set(changed) and customer.identity_index:
            other = self.by_identity.get(customer.identity_index)
            if other is not None and other is not customer:
                field_name = "id_number" if "id_number" in changed else "credit_code"
                errors.add(field_name, f"customer {other.id} has this identity")
        if "core_customer_no" in changed and customer.core_customer_no:
            other = self.by_core.get(customer.core_customer_no)
            if other is not None and other is not customer:
                errors.add("core_customer_no", f"customer {other.id} has this number")


def _mobile_or_raw(phone: str | None) -> str | None:
    if not phone:
        return None
    try:
        return normalize_mobile(phone)
    except IdentityError:
        return phone


# -- snapshot rows ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _SnapshotRow:
    number: int
    snap: SnapshotIn | None
    errors: list[dict[str, Any]]
    customer_id: str | None = None
    core_no: str | None = None


class SnapshotRows:
    """Snapshot rows: core banking's figures of a customer on a business date, re-tiering."""

    def __init__(self, ctx: CustomerContext) -> None:
        self.ctx = ctx

    def prepare(self, rows: Sequence[SourceRow]) -> list[_SnapshotRow]:
        """Validate rows by the schema (pure: no database)."""
        out: list[_SnapshotRow] = []
        for row in rows:
            if row.problem is not None:
                out.append(
                    _SnapshotRow(row.number, None, [{"field": "row", "reason": row.problem}])
                )
                continue
            data = dict(row.values)
            keys = {name: data.pop(name, None) for name in _SNAPSHOT_KEYS}
            errors = [
                {"field": name, "reason": "must be text"}
                for name, value in keys.items()
                if value is not None and not isinstance(value, str)
            ]
            if keys["customer_id"] is None and keys["core_customer_no"] is None:
                errors.append(
                    {"field": "customer_id", "reason": "give customer_id or core_customer_no"}
                )
            products = data.get("products")
            if isinstance(products, str):
                # CSV: one cell of categories separated by semicolons.
                data["products"] = [p.strip() for p in products.split(";") if p.strip()]
            snap: SnapshotIn | None = None
            try:
                snap = SnapshotIn.model_validate(data)
            except ValidationError as exc:
                errors.extend(_validation_errors(exc))
            if errors:
                out.append(_SnapshotRow(row.number, None, errors))
                continue
            out.append(
                _SnapshotRow(row.number, snap, [], keys["customer_id"], keys["core_customer_no"])
            )
        return out

    def apply(self, session: Session, job: _Job, rows: Sequence[_SnapshotRow]) -> _Tally:
        """Write the chunk's snapshots through ``apply_snapshot`` (not committed here)."""
        tally = _Tally()
        valid = [r for r in rows if r.snap is not None]
        customers = _load_customers(
            session,
            [
                (Customer.id, {r.customer_id for r in valid if r.customer_id}),
                (Customer.core_customer_no, {r.core_no for r in valid if r.core_no}),
            ],
        )
        by_id = {c.id: c for c in customers}
        by_core = {c.core_customer_no: c for c in customers if c.core_customer_no}
        # Loaded to know which rows are new, and kept referenced so that apply_snapshot finds
        # the existing ones in the identity map instead of asking for each.
        existing = self._existing(
            session, list(by_id), {r.snap.business_date for r in valid if r.snap}
        )
        known = {(s.customer_id, s.business_date) for s in existing}
        for row in rows:
            if row.snap is None:
                tally.refuse(row.number, row.errors)
                continue
            errors = FieldErrors()
            customer = self._customer(job, row, by_id, by_core, errors)
            if customer is None:
                tally.refuse(row.number, errors.items)
                continue
            try:
                self.ctx.policies.effective_on(row.snap.business_date)
            except NoPolicyInForce as exc:
                # The snapshot could not be tiered: refused here rather than failing the chunk.
                tally.refuse(row.number, [{"field": "business_date", "reason": str(exc)}])
                continue
            key = (customer.id, row.snap.business_date)
            outcome = apply_snapshot(session, self.ctx, customer, row.snap, job.actor)
            if not outcome.changed:
                tally.unchanged += 1
            elif key in known:
                tally.updated += 1
            else:
                tally.created += 1
                known.add(key)
        return tally

    @staticmethod
    def _existing(
        session: Session, customer_ids: list[str], dates: set[date]
    ) -> list[FinancialSnapshot]:
        found: list[FinancialSnapshot] = []
        for start in range(0, len(customer_ids), _IN_BATCH):
            found.extend(
                session.scalars(
                    select(FinancialSnapshot).where(
                        FinancialSnapshot.customer_id.in_(customer_ids[start : start + _IN_BATCH]),
                        FinancialSnapshot.business_date.in_(sorted(dates)),
                    )
                ).all()
            )
        return found

    @staticmethod
    def _customer(
        job: _Job,
        row: _SnapshotRow,
        by_id: dict[str, Customer],
        by_core: dict[str, Customer],
        errors: FieldErrors,
    ) -> Customer | None:
        field_name = "customer_id" if row.customer_id else "core_customer_no"
        customer = by_id.get(row.customer_id) if row.customer_id else by_core.get(row.core_no or "")
        if customer is None or not job.scope.within(customer.org_unit):
            where = "" if job.everywhere else " in your org subtree"
            errors.add(field_name, f"no such customer{where}")
            return None
        if row.customer_id and row.core_no and customer.core_customer_no != row.core_no:
            errors.add("core_customer_no", f"is not the number of customer {customer.id}")
            return None
        if customer.merged_into is not None:
            errors.add(field_name, f"customer {customer.id} was merged into {customer.merged_into}")
            return None
        return customer


# -- the runner ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """Where a job stands after a chunk committed (for progress bars)."""

    job_id: str
    rows_done: int
    created: int
    updated: int
    unchanged: int
    failed: int
    bytes_read: int
    bytes_total: int


ProgressFn = Callable[[Progress], None]


class _JobTaken(Exception):
    """Another runner moved the job on (two processes resumed it): this one lets go."""


class ImportRunner:
    """Runs import jobs in one background thread, one job at a time, a chunk per transaction.

    ``run_job`` also runs a job in the calling thread (the CLI). Several runners, in several
    processes, may resume the same job: a chunk's progress is written only if the job still
    stands where the chunk began, so a chunk is never committed twice.
    """

    def __init__(
        self,
        sessions: Callable[[], Session],
        ctx: CustomerContext,
        *,
        chunk_rows: int,
        import_dir: Path,
    ) -> None:
        self.sessions = sessions
        self.ctx = ctx
        self.chunk_rows = max(1, chunk_rows)
        self.import_dir = import_dir
        self._queue: queue.Queue[str] = queue.Queue()
        self._waiting: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the background thread ----------------------------------------------------------------
    def submit(self, job_id: str) -> None:
        """Run the job in the background (after those submitted before it)."""
        with self._lock:
            if job_id in self._waiting:
                return
            self._waiting.add(job_id)
            self._queue.put(job_id)
            if (self._thread is None or not self._thread.is_alive()) and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._work, name="customer-imports", daemon=True
                )
                self._thread.start()

    def resume(self) -> list[str]:
        """Queue the jobs left queued or running by a previous process, oldest first."""
        with self.sessions() as session:
            ids = list(
                session.scalars(
                    select(ImportJob.id)
                    .where(ImportJob.status.in_(ACTIVE))
                    .order_by(ImportJob.created_at, ImportJob.id)
                ).all()
            )
        for job_id in ids:
            self.submit(job_id)
        if ids:
            log.info("resuming %d import jobs", len(ids))
        return ids

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the chunk in hand; an unfinished job stays running, to be resumed."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.run_job(job_id)
            except Exception:  # the thread serves the next job whatever happened to this one
                log.exception("import job %s stopped", job_id)
            finally:
                with self._lock:
                    self._waiting.discard(job_id)

    # -- one job ------------------------------------------------------------------------------
    def run_job(self, job_id: str, on_progress: ProgressFn | None = None) -> ImportStatus:
        """Run (or resume) a job to its end in this thread; returns its status afterwards.

        A job stopped by ``stop`` is left running, as after a crash: resuming continues it.
        """
        job, status = self._start(job_id)
        if job is None:
            return status
        token = context.correlation_id.set(job.id)  # the job's events share its id
        try:
            status = self._run(job, on_progress)
        except _JobTaken:
            log.info("import job %s is being run by another runner", job.id)
            status = ImportStatus.running
        except ImportFileError as exc:
            status = self.fail(job.id, str(exc))
        except Exception as exc:
            log.exception("import job %s failed", job.id)
            status = self.fail(
                job.id, f"the import stopped on an internal error ({type(exc).__name__})"
            )
        finally:
            context.correlation_id.reset(token)
        if status in (ImportStatus.finished, ImportStatus.failed):
            self._discard_upload(job.path)
        return status

    def fail(self, job_id: str, reason: str) -> ImportStatus:
        """Mark an unfinished job failed; the rows it committed stay."""
        try:
            with self.sessions() as session:
                session.execute(
                    update(ImportJob)
                    .where(ImportJob.id == job_id, ImportJob.status.in_(ACTIVE))
                    .values(status=ImportStatus.failed.value, error=reason, finished_at=utcnow())
                )
                session.commit()
        except Exception:  # the database may be what failed; the job is resumed on restart
            log.exception("could not mark import job %s failed", job_id)
            return ImportStatus.running
        return ImportStatus.failed

    def _start(self, job_id: str) -> tuple[_Job | None, ImportStatus]:
        with self.sessions() as session:
            row = session.get(ImportJob, job_id)
            if row is None:
                log.warning("import job %s does not exist", job_id)
                return None, ImportStatus.failed
            if row.status not in ACTIVE:
                return None, ImportStatus(row.status)
            row.status = ImportStatus.running.value
            job = _Job(
                id=row.id,
                kind=ImportKind(row.kind),
                fmt=ImportFormat(row.format),
                path=Path(row.file_path),
                actor=row.created_by,
                scope=scope_caller(row.org_unit, row.created_by),
                rows_done=row.rows_done,
                created=row.rows_created,
                updated=row.rows_updated,
                unchanged=row.rows_unchanged,
                failed=row.rows_failed,
            )
            session.commit()
        return job, ImportStatus.running

    def _run(self, job: _Job, on_progress: ProgressFn | None) -> ImportStatus:
        handler: CustomerRows | SnapshotRows = (
            CustomerRows(self.ctx) if job.kind is ImportKind.customers else SnapshotRows(self.ctx)
        )
        with RowSource(job.path, job.fmt, job.kind) as source:
            # Resuming: the rows of the chunks committed before are read past, not applied.
            rows = itertools.islice(iter(source), job.rows_done, None)
            for chunk in _chunks(rows, self.chunk_rows):
                if self._stop.is_set():
                    return ImportStatus.running
                tally = self._commit_chunk(job, handler, chunk)
                job.advance(len(chunk), tally)
                if on_progress is not None:
                    on_progress(
                        Progress(
                            job.id,
                            job.rows_done,
                            job.created,
                            job.updated,
                            job.unchanged,
                            job.failed,
                            source.bytes_read,
                            source.bytes_total,
                        )
                    )
        with self.sessions() as session:
            result = session.execute(
                update(ImportJob)
                .where(ImportJob.id == job.id, ImportJob.rows_done == job.rows_done)
                .values(
                    status=ImportStatus.finished.value,
                    rows_total=job.rows_done,
                    finished_at=utcnow(),
                )
            )
            if cast("CursorResult[Any]", result).rowcount != 1:
                raise _JobTaken(job.id)
            session.commit()
        return ImportStatus.finished

    def _commit_chunk(
        self, job: _Job, handler: CustomerRows | SnapshotRows, chunk: list[SourceRow]
    ) -> _Tally:
        """Apply a chunk, its errors and the job's progress in one transaction."""
        prepared: Sequence[Any] = handler.prepare(chunk)
        for attempt in range(1, _CHUNK_ATTEMPTS + 1):
            with self.sessions() as session:
                try:
                    tally = handler.apply(session, job, prepared)
                    record_progress(session, job, len(chunk), tally)
                    session.commit()
                    return tally
                except (IntegrityError, StaleDataError):
                    session.rollback()
                    if attempt == _CHUNK_ATTEMPTS:
                        raise
                    log.warning("import job %s: a concurrent writer got in first; again", job.id)
        raise AssertionError("unreachable")  # the last attempt returned or raised

    def _discard_upload(self, path: Path) -> None:
        """Uploaded files are kept until their job ends; a file the CLI named is the user's."""
        try:
            if path.resolve().is_relative_to(self.import_dir.resolve()):
                path.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove the import file %s", path, exc_info=True)


def record_progress(session: Session, job: _Job, rows: int, tally: _Tally) -> None:
    """Write the chunk's errors and move the job on, if it still stands where the chunk began."""
    if tally.errors:
        session.execute(insert(ImportRowError), [{"job_id": job.id, **e} for e in tally.errors])
    result = session.execute(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.rows_done == job.rows_done)
        .values(
            status=ImportStatus.running.value,
            rows_done=job.rows_done + rows,
            rows_created=ImportJob.rows_created + tally.created,
            rows_updated=ImportJob.rows_updated + tally.updated,
            rows_unchanged=ImportJob.rows_unchanged + tally.unchanged,
            rows_failed=ImportJob.rows_failed + tally.failed,
        )
        .execution_options(synchronize_session=False)
    )
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise _JobTaken(job.id)
