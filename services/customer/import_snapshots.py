"""Snapshot rows of an import: core banking's figures of a customer on a business date."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.customer.context import CustomerContext
from services.customer.financials import apply_snapshot
from services.customer.import_jobs import (
    IN_BATCH,
    RunningJob,
    Tally,
    load_customers,
    validation_errors,
)
from services.customer.import_source import SNAPSHOT_KEYS, SourceRow
from services.customer.models import (
    Customer,
    FinancialSnapshot,
)
from services.customer.personal import (
    FieldErrors,
)
from services.customer.schemas import SnapshotIn
from services.customer.tier_policy import NoPolicyInForce


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

    def prepare(self, job: RunningJob, rows: Sequence[SourceRow]) -> list[_SnapshotRow]:
        """Validate rows by the schema (pure: no database)."""
        out: list[_SnapshotRow] = []
        for row in rows:
            if row.problem is not None:
                out.append(
                    _SnapshotRow(row.number, None, [{"field": "row", "reason": row.problem}])
                )
                continue
            data = dict(row.values)
            keys = {name: data.pop(name, None) for name in SNAPSHOT_KEYS}
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
                errors.extend(validation_errors(exc))
            if errors:
                out.append(_SnapshotRow(row.number, None, errors))
                continue
            out.append(
                _SnapshotRow(row.number, snap, [], keys["customer_id"], keys["core_customer_no"])
            )
        return out

    def apply(self, session: Session, job: RunningJob, rows: Sequence[_SnapshotRow]) -> Tally:
        """Write the chunk's snapshots through ``apply_snapshot`` (not committed here)."""
        tally = Tally()
        valid = [r for r in rows if r.snap is not None]
        customers = load_customers(
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
        for start in range(0, len(customer_ids), IN_BATCH):
            found.extend(
                session.scalars(
                    select(FinancialSnapshot).where(
                        FinancialSnapshot.customer_id.in_(customer_ids[start : start + IN_BATCH]),
                        FinancialSnapshot.business_date.in_(sorted(dates)),
                    )
                ).all()
            )
        return found

    @staticmethod
    def _customer(
        job: RunningJob,
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
