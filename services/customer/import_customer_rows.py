"""Customer rows of an import up to what a chunk writes: rows validated by the schema with the
keys they are matched on, and new records as drafts inserted as plain rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import inspect as sa_inspect

from services.customer.context import CustomerContext
from services.customer.domain import business_today
from services.customer.identity import IdentityError, validate_credit_code, validate_resident_id
from services.customer.import_jobs import validation_errors
from services.customer.import_source import SourceRow
from services.customer.models import (
    Base,
    Change,
    Customer,
)
from services.customer.personal import PEOPLE, identity_index
from services.customer.schemas import CustomerCreate

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
        return {_RENAMED.get(key, key): value for key, value in self.__dict__.items()}

    def values(self) -> dict[str, Any]:
        """The draft as keyword arguments of ``Customer``."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class CustomerRow:
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


def prepare_customer_rows(ctx: CustomerContext, rows: Sequence[SourceRow]) -> list[CustomerRow]:
    """Validate rows by the schema and compute their keys (pure: no database)."""
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
        out.append(
            CustomerRow(row.number, cmd, [], _identity(ctx, cmd, today), cmd.core_customer_no)
        )
    return out


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
