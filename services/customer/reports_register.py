"""The customer register 客户名册表 (seed 001): one row per customer in the caller's scope, with
the columns the seed states, newest balances and a masked contact; JSON pages or streamed CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.csvout import BOM, csv_cell
from crmkit.schemas import Page
from services.customer import access
from services.customer.models import Customer, FinancialSnapshot
from services.customer.reports import (
    BATCH_ROWS,
    ensure_may_read_reports,
    first_address,
    in_scope,
    newest_snapshot,
    responsible_manager,
)
from services.customer.schemas import Segment
from services.customer.schemas_reports import REGISTER_COLUMNS, RegisterRow


@dataclass(frozen=True)
class RegisterFilter:
    """Which customers the register lists, within the caller's scope."""

    org_unit: str | None = None
    owner: str | None = None
    segment: Segment | None = None


def _register_conditions(caller: Caller, flt: RegisterFilter) -> list[ColumnElement[bool]]:
    conditions = in_scope(caller, flt.org_unit)
    if flt.owner:
        # Owner or team member, as the customer list's owner filter reads it: a manager's book.
        conditions.append(access.in_book_of(flt.owner))
    if flt.segment is not None:
        conditions.append(Customer.segment == flt.segment.value)
    return conditions


def _register_query(caller: Caller, flt: RegisterFilter) -> Select[tuple[Any, ...]]:
    return (
        select(
            Customer.id,
            Customer.name,
            Customer.kind,
            Customer.segment,
            Customer.status,
            Customer.org_unit,
            responsible_manager().label("owner"),
            Customer.addresses,
            Customer.phone_masked,
            FinancialSnapshot.deposits,
            FinancialSnapshot.loans,
            FinancialSnapshot.business_date,
            Customer.relationship_evaluation,
            Customer.cooperation_direction,
            Customer.importance,
            Customer.importance_review_date,
            Customer.archive_number,
        )
        .select_from(Customer)
        .outerjoin(FinancialSnapshot, newest_snapshot())
        .where(*_register_conditions(caller, flt))
        .order_by(Customer.org_unit, Customer.name_key, Customer.id)
    )


def _register_row(row: Any) -> RegisterRow:
    return RegisterRow(
        customer_id=row.id,
        name=row.name,
        kind=row.kind,
        segment=row.segment,
        status=row.status,
        org_unit=row.org_unit,
        owner=row.owner,
        address=first_address(row.addresses),
        contact=row.phone_masked,
        deposits=row.deposits,
        loans=row.loans,
        balances_as_of=row.business_date,
        relationship_evaluation=row.relationship_evaluation,
        cooperation_direction=row.cooperation_direction,
        importance=row.importance,
        importance_review_date=row.importance_review_date,
        archive_number=row.archive_number,
    )


def register_page(
    session: Session, caller: Caller, flt: RegisterFilter, limit: int, offset: int
) -> Page[RegisterRow]:
    """One page of the customer register 客户名册表, ordered by org unit, name and id."""
    ensure_may_read_reports(caller)
    total = session.execute(
        select(func.count()).select_from(Customer).where(*_register_conditions(caller, flt))
    ).scalar_one()
    rows = session.execute(_register_query(caller, flt).limit(limit).offset(offset)).all()
    return Page[RegisterRow](
        items=[_register_row(row) for row in rows], total=total, limit=limit, offset=offset
    )


def register_csv(session: Session, caller: Caller, flt: RegisterFilter) -> Iterator[bytes]:
    """Every register row in scope as CSV chunks; the caller is checked before the first byte."""
    ensure_may_read_reports(caller)
    return _register_chunks(session, _register_query(caller, flt))


def _register_chunks(session: Session, query: Select[tuple[Any, ...]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([label for _, label in REGISTER_COLUMNS])
    yield (BOM + buffer.getvalue()).encode("utf-8")
    result = session.execute(query.execution_options(yield_per=BATCH_ROWS))
    for batch in result.partitions():
        buffer.seek(0)
        buffer.truncate()
        for row in batch:
            line = _register_row(row)
            writer.writerow([csv_cell(getattr(line, name)) for name, _ in REGISTER_COLUMNS])
        yield buffer.getvalue().encode("utf-8")
