"""Customer rows of an import up to what a chunk writes: rows validated by the schema with the
keys they are matched on, and new records as drafts inserted as plain rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import inspect as sa_inspect

from crmkit.identity import IdentityError, validate_credit_code, validate_resident_id
from crmkit.outbox import PreparedEvent
from services.customer import events
from services.customer.context import CustomerContext
from services.customer.domain import business_today
from services.customer.import_jobs import RunningJob, validation_errors
from services.customer.import_source import CHILD_LISTS, SourceRow
from services.customer.models import (
    Base,
    Change,
    Customer,
)
from services.customer.personal import PEOPLE, FieldErrors, identity_index
from services.customer.record import apply_fields, check_target_basis, given_fields
from services.customer.schemas import CustomerCreate
from services.customer.service import event_payload, new_customer_values

# New records and change-log rows go in as Core inserts of plain rows: the unit of work costs
# several times the insert itself for a record this wide.
CUSTOMERS_TABLE = Base.metadata.tables[Customer.__tablename__]
CHANGES_TABLE = Base.metadata.tables[Change.__tablename__]
_CUSTOMER_COLUMNS = tuple(
    (attr.key, attr.columns[0].key) for attr in sa_inspect(Customer).column_attrs
)


def _column_defaults() -> dict[str, Any]:
    """The Python-side defaults of the record's columns, by attribute (scalars only: a callable
    default is called per draft, see ``Draft``)."""
    out: dict[str, Any] = {}
    for attr in sa_inspect(Customer).column_attrs:
        default = attr.columns[0].default
        if default is not None and getattr(default, "is_scalar", False):
            out[attr.key] = getattr(default, "arg", None)
    return out


# A new record's attributes before anything is set: None, or the column's scalar default.
_BLANK = {key: None for key, _ in _CUSTOMER_COLUMNS} | _column_defaults()
_CALLABLE_DEFAULTS = tuple(
    (attr.key, attr.columns[0].default)
    for attr in sa_inspect(Customer).column_attrs
    if attr.columns[0].default is not None
    and getattr(attr.columns[0].default, "is_callable", False)
)
# Attributes named otherwise than their column (none today): renamed when a draft becomes a row.
_RENAMED = {key: column for key, column in _CUSTOMER_COLUMNS if key != column}


class Draft:
    """A new customer record as a plain object: every column attribute, unset ones at their
    default (or None), as a ``Customer`` the import has not built.

    ``apply_fields`` and the ``store_*`` helpers only get and set attributes, so they work on a
    draft unchanged; instrumented attributes and the mapped constructor cost several times the
    rest of a new row, and the draft is inserted as a plain row anyway (``CUSTOMERS_TABLE``). An
    attribute that is not a column would make that insert fail, not vanish.
    """

    # The attributes the import reads itself (the others through ``record``).
    id: str
    identity_index: str | None
    core_customer_no: str | None
    version: int

    def __init__(self, values: dict[str, Any]) -> None:
        state = self.__dict__
        state.update(_BLANK)
        for key, default in _CALLABLE_DEFAULTS:
            state[key] = default.arg(None)
        state.update(values)

    @property
    def record(self) -> Customer:
        """The draft as the record helpers type it (they use its attributes only)."""
        return cast(Customer, self)

    def row(self) -> dict[str, Any]:
        """The draft as a row of the customers table."""
        if not _RENAMED:
            return dict(self.__dict__)
        return {_RENAMED.get(key, key): value for key, value in self.__dict__.items()}

    def values(self) -> dict[str, Any]:
        """The draft as keyword arguments of ``Customer``."""
        return dict(self.__dict__)


# The columns of a new record as ``NewRecord.values`` holds them: all but the two times, which
# the chunk's transaction sets (aware datetimes cost more to move between processes than the
# rest of the row).
_TIMES = ("created_at", "updated_at")
NEW_COLUMNS: tuple[str, ...] = tuple(
    str(_RENAMED.get(key, key)) for key in _BLANK if key not in _TIMES
)
_NEW_KEYS = tuple(key for key in _BLANK if key not in _TIMES)


@dataclass(frozen=True, slots=True)
class NewRecord:
    """What creating a row's record writes, worked out before the chunk's transaction: the
    record's columns, the change-log fields and the ``customer.created`` event. It stands if the
    row turns out to be new; a row matching an existing record is applied as an update instead.
    """

    id: str
    identity_index: str | None
    core_customer_no: str | None
    values: tuple[Any, ...]  # by NEW_COLUMNS
    fields: list[str]
    event: PreparedEvent

    def row(self, now: datetime) -> dict[str, Any]:
        """The record as a row of the customers table, created and updated at ``now``."""
        out = dict(zip(NEW_COLUMNS, self.values, strict=True))
        out.update(created_at=now, updated_at=now)
        return out


@dataclass(frozen=True)
class CustomerRow:
    """A customer row validated by the schema, with the keys it is matched on and, for a row
    without child lists, what creating it would write (or why it could not be created)."""

    number: int
    cmd: CustomerCreate | None
    errors: list[dict[str, Any]]
    identity: str | None = None
    core_no: str | None = None
    new: NewRecord | None = None
    new_errors: list[dict[str, Any]] | None = None


# Where the schema finds fault with the one ``address`` cell of a flat row.
_ADDRESS_PATHS = {
    "addresses": "address",
    "addresses.0": "address",
    "addresses.0.text": "address",
    "addresses.0.type": "address",
}


def prepare_customer_rows(
    ctx: CustomerContext, job: RunningJob, rows: Sequence[SourceRow]
) -> list[CustomerRow]:
    """Validate rows by the schema, compute their keys and what creating each would write
    (pure: no database, so that worker processes can do it)."""
    today = business_today()
    out: list[CustomerRow] = []
    for row in rows:
        if row.problem is not None:
            out.append(CustomerRow(row.number, None, [{"field": "row", "reason": row.problem}]))
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
            out.append(CustomerRow(row.number, None, validation_errors(exc, renames)))
            continue
        identity = _identity(ctx, cmd, today)
        if any(name in cmd.model_fields_set for name in CHILD_LISTS):
            # Rare in a bank's export: created through the session with its children.
            out.append(CustomerRow(row.number, cmd, [], identity, cmd.core_customer_no))
            continue
        new, errors = new_record(ctx, job, cmd, identity)
        out.append(
            CustomerRow(
                row.number,
                cmd,
                [],
                identity,
                cmd.core_customer_no,
                new,
                errors.items if errors else None,
            )
        )
    return out


def check_new(job: RunningJob, cmd: CustomerCreate, identity: str | None) -> FieldErrors:
    """What refuses a new record before its fields are applied."""
    errors = FieldErrors()
    if identity is None and cmd.core_customer_no is None:
        key = "id_number" if cmd.kind.value in PEOPLE else "credit_code"
        if not cmd.id_number and not cmd.credit_code:
            errors.add(
                key,
                "an imported customer needs an identity or a core_customer_no, so that "
                "importing it again finds it",
            )
    if not job.scope.within(cmd.org_unit):
        errors.add("org_unit", f"{cmd.org_unit} is outside your org subtree")
    return errors


def new_draft(
    ctx: CustomerContext, job: RunningJob, cmd: CustomerCreate, errors: FieldErrors
) -> Draft:
    """A new record with the row's fields applied (``errors`` collects what is wrong)."""
    draft = Draft(new_customer_values(cmd, job.actor))
    check_target_basis(cmd.segment.value, cmd.data_source, cmd.lawful_basis, errors)
    apply_fields(ctx, draft.record, cmd, errors, creating=True)
    draft.version = 1  # set by the unit of work, which a batched insert goes without
    return draft


def new_record(
    ctx: CustomerContext, job: RunningJob, cmd: CustomerCreate, identity: str | None
) -> tuple[NewRecord | None, FieldErrors]:
    """What creating the row's record (without child lists) writes, or why it cannot."""
    errors = check_new(job, cmd, identity)
    draft = new_draft(ctx, job, cmd, errors)
    if errors:
        return None, errors
    state = draft.__dict__
    event = ctx.recorder.prepare(
        events.CUSTOMER_CREATED, event_payload(draft.record), key=draft.id, actor=job.actor
    )
    return (
        NewRecord(
            draft.id,
            draft.identity_index,
            draft.core_customer_no,
            tuple(state[key] for key in _NEW_KEYS),
            sorted(given_fields(cmd)),
            event,
        ),
        errors,
    )


def _identity(ctx: CustomerContext, cmd: CustomerCreate, today: date) -> str | None:
    """The blind index the row's identity would be stored under (None if it has none)."""
    kind = cmd.kind.value
    try:
        if kind in PEOPLE:
            if not cmd.id_number:
                return None
            number = validate_resident_id(cmd.id_number, today=today).number
            return identity_index(ctx.cipher, kind, number, None)
        if not cmd.credit_code:
            return None
        return identity_index(ctx.cipher, kind, None, validate_credit_code(cmd.credit_code))
    except IdentityError:
        return None  # not a key; applying the row reports the field
