"""Customer rows of an import: validated as the API validates, then created or updated
idempotently (matched by identity or core banking customer number)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.db import utcnow
from crmkit.identity import (
    IdentityError,
    normalize_mobile,
)
from crmkit.outbox import insert_rows
from services.customer import events
from services.customer.context import CustomerContext
from services.customer.domain import business_today
from services.customer.import_customer_rows import (
    CHANGES_TABLE,
    CUSTOMERS_TABLE,
    CustomerRow,
    NewRecord,
    check_new,
    new_draft,
    prepare_customer_rows,
)
from services.customer.import_jobs import RunningJob, Tally, load_customers
from services.customer.import_source import CHILD_LISTS, SourceRow
from services.customer.models import (
    Collateral,
    Contact,
    Customer,
    Guarantor,
)
from services.customer.personal import (
    CONTACT_PHONE_CONTEXT,
    FieldErrors,
    parse_mobile,
)
from services.customer.record import (
    apply_fields,
    check_target_basis,
    given_fields,
    replace_children,
)
from services.customer.schemas import CustomerCreate
from services.customer.service import event_payload


# -- customer rows ------------------------------------------------------------------------------
class CustomerRows:
    """Customer rows: validated as the API validates, then created or updated idempotently."""

    def __init__(self, ctx: CustomerContext) -> None:
        self.ctx = ctx

    def prepare(self, job: RunningJob, rows: Sequence[SourceRow]) -> list[CustomerRow]:
        """Validate rows by the schema, compute their keys and what creating each would write
        (pure: no database)."""
        return prepare_customer_rows(self.ctx, job, rows)

    def apply(self, session: Session, job: RunningJob, rows: Sequence[CustomerRow]) -> Tally:
        """Write the chunk's rows in the session's transaction (not committed here)."""
        return _CustomerChunk(session, self.ctx, job).run(rows)


class _CustomerChunk:
    """One attempt at one chunk of customer rows, in one transaction."""

    def __init__(self, session: Session, ctx: CustomerContext, job: RunningJob) -> None:
        self.session = session
        self.ctx = ctx
        self.job = job
        self.tally = Tally()
        self.today = business_today()
        # A key's record: loaded, or a new one this chunk created (see ``_persistent``).
        self.by_identity: dict[str, Customer | NewRecord] = {}
        self.by_core: dict[str, Customer | NewRecord] = {}
        # Records this chunk changed in the session, not flushed yet (see ``_persistent``).
        self.touched: set[str] = set()
        # New records without child lists, inserted together when the chunk's rows are done.
        self.pending: dict[str, NewRecord] = {}
        self.changes: list[dict[str, Any]] = []

    def run(self, rows: Sequence[CustomerRow]) -> Tally:
        valid = [r for r in rows if r.cmd is not None]
        for customer in load_customers(
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
            insert_rows(self.session, CHANGES_TABLE, self.changes)
        return self.tally

    def _insert_pending(self) -> None:
        """Insert the new records collected so far, as plain rows (see ``CUSTOMERS_TABLE``)."""
        # Every new record has every column: rows of one shape.
        now = utcnow()
        insert_rows(self.session, CUSTOMERS_TABLE, [n.row(now) for n in self.pending.values()])
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

    def _remember(self, customer: Customer | NewRecord) -> None:
        if customer.identity_index is not None:
            self.by_identity[customer.identity_index] = customer
        if customer.core_customer_no is not None:
            self.by_core[customer.core_customer_no] = customer

    def _row(self, row: CustomerRow, cmd: CustomerCreate) -> None:
        by_identity = self.by_identity.get(row.identity) if row.identity else None
        by_core = self.by_core.get(row.core_no) if row.core_no else None
        if by_identity is not None and by_core is not None and by_identity.id != by_core.id:
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

    def _create(self, row: CustomerRow, cmd: CustomerCreate) -> None:
        if row.new_errors:
            self.tally.refuse(row.number, row.new_errors)
            return
        new = row.new
        if new is None:
            self._create_with_children(row, cmd)
            return
        self.pending[new.id] = new
        self._log(new.id, 1, "created", new.fields)
        self.ctx.recorder.write(self.session, new.event)
        self._remember(new)
        self.tally.created += 1

    def _create_with_children(self, row: CustomerRow, cmd: CustomerCreate) -> None:
        """A new record with child lists: it goes through the session with its children."""
        errors = check_new(self.job, cmd, row.identity)
        draft = new_draft(self.ctx, self.job, cmd, errors)
        self._check_children(cmd, errors)
        if errors:
            self.tally.refuse(row.number, errors.items)
            return
        customer = Customer(**draft.values())
        self.session.add(customer)
        replace_children(self.session, self.ctx, customer, cmd)
        self.touched.add(customer.id)
        self._log(customer.id, 1, "created", given_fields(cmd))
        self.ctx.recorder.record(
            self.session,
            events.CUSTOMER_CREATED,
            event_payload(draft.record),
            key=customer.id,
            actor=self.job.actor,
        )
        self._remember(customer)
        self.tally.created += 1

    def _update(self, row: CustomerRow, cmd: CustomerCreate, found: Customer | NewRecord) -> None:
        customer = self._persistent(found)
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
            changed = apply_fields(self.ctx, customer, cmd, errors, creating=False)
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
                changed or promoted or any(n in cmd.model_fields_set for n in CHILD_LISTS)
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

    def _persistent(self, customer: Customer | NewRecord) -> Customer:
        """The record in the session, ready for another row of this chunk to change it.

        A record this chunk created as a plain row is inserted now if it is not yet, and loaded;
        one it changed is flushed, so that the version steps once per change and dropping this
        row's edits (``expire``) keeps the earlier row's.
        """
        if isinstance(customer, NewRecord):
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
        """The row without the child lists equal to the stored ones, which ``replace_children``
        would count as changed (it replaces whatever list is given)."""
        same: set[str] = set()
        for name in CHILD_LISTS:
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
            if other is not None and other.id != customer.id:
                field_name = "id_number" if "id_number" in changed else "credit_code"
                errors.add(field_name, f"customer {other.id} has this identity")
        if "core_customer_no" in changed and customer.core_customer_no:
            other = self.by_core.get(customer.core_customer_no)
            if other is not None and other.id != customer.id:
                errors.add("core_customer_no", f"customer {other.id} has this number")


def _mobile_or_raw(phone: str | None) -> str | None:
    if not phone:
        return None
    try:
        return normalize_mobile(phone)
    except IdentityError:
        return phone
