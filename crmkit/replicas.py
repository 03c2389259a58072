"""The local copy of customers that every consuming service keeps from customer events.

Services never read the customer service's tables; they keep the few fields they need from
``customer.created`` / ``customer.updated``. A copy is only overwritten by a newer event, so a
redelivered or re-published older event never rolls it back.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, Executable, MetaData, String, Table, bindparam
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crmkit.consumer import HandlerRegistry
from crmkit.db import UtcDateTime
from crmkit.events import Envelope

CUSTOMER_STREAM = "customer"


def define_customer_refs(metadata: MetaData) -> Table:
    """The ``customer_refs`` table: id, name, kind, org unit, business line, status."""
    return Table(
        "customer_refs",
        metadata,
        Column("customer_id", String(36), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("kind", String(30), nullable=False),
        Column("org_unit", String(200), nullable=False, index=True),
        Column("business_line", String(30), nullable=False),
        Column("status", String(20), nullable=False),
        Column("as_of", UtcDateTime, nullable=False),
    )


_COPIED = ("name", "kind", "org_unit", "business_line", "status")


@cache
def _upsert(table: Table, dialect: str) -> Executable:
    """Insert the copy, or update it when the event is newer (built once per table)."""
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    columns = ("customer_id", *_COPIED, "as_of")
    statement = insert_(table).values({name: bindparam(name) for name in columns})
    return statement.on_conflict_do_update(
        index_elements=[table.c.customer_id],
        set_={name: statement.excluded[name] for name in (*_COPIED, "as_of")},
        where=table.c.as_of <= statement.excluded.as_of,
    )


def apply_customer_events(session: Session, table: Table, events: list[Envelope]) -> None:
    """Insert or update the copies from customer events newer than what is kept.

    Of several events for one customer in the run only the last counts: each replaces the
    copied fields whole.
    """
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        params = {name: event.data[name] for name in ("customer_id", *_COPIED)}
        params["as_of"] = event.occurred_at
        latest.pop(params["customer_id"], None)
        latest[params["customer_id"]] = params
    session.execute(_upsert(table, session.get_bind().dialect.name), list(latest.values()))


def register_customer_replica(registry: HandlerRegistry, table: Table) -> None:
    """Keep ``table`` up to date from customer.created and customer.updated (version 1)."""

    def keep_copies(session: Session, events: list[Envelope]) -> None:
        apply_customer_events(session, table, events)

    registry.on_many(CUSTOMER_STREAM, "customer.created", versions=(1,))(keep_copies)
    registry.on_many(CUSTOMER_STREAM, "customer.updated", versions=(1,))(keep_copies)


ERASED_NAME = ""
MERGED_STATUS = "merged"


def register_customer_lifecycle(
    registry: HandlerRegistry,
    table: Table,
    on_erased: Callable[[Session, str], None] | None = None,
) -> None:
    """Keep ``table`` true to the ends of a customer record (version 1 of both events):

    - ``customer.erased``: the copy's name is removed (the customer service removed the personal
      fields; what stays here is the id, kind, unit, line and status, which identify nobody);
    - ``customer.merged``: the merged-away record's copy is marked ``merged``, so nothing in
      this service picks it again; its survivor is a customer of its own.

    ``on_erased(session, customer_id)`` removes what else the service keeps of the person.
    """

    def erased(session: Session, event: Envelope) -> None:
        customer_id = event.data["customer_id"]
        session.execute(
            sa.update(table).where(table.c.customer_id == customer_id).values(name=ERASED_NAME)
        )
        if on_erased is not None:
            on_erased(session, customer_id)

    def merged(session: Session, event: Envelope) -> None:
        session.execute(
            sa.update(table)
            .where(table.c.customer_id == event.data["merged_id"])
            .values(status=MERGED_STATUS)
        )

    registry.on(CUSTOMER_STREAM, "customer.erased", versions=(1,))(erased)
    registry.on(CUSTOMER_STREAM, "customer.merged", versions=(1,))(merged)


def create_customer_refs_v1(op: Any) -> None:
    """Migration step: the ``customer_refs`` table, layout version 1."""
    op.create_table(
        "customer_refs",
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("business_line", sa.String(30), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("as_of", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_refs"),
    )
    op.create_index("ix_customer_refs_org_unit", "customer_refs", ["org_unit"])


def drop_customer_refs_v1(op: Any) -> None:
    op.drop_index("ix_customer_refs_org_unit", table_name="customer_refs")
    op.drop_table("customer_refs")


# -- who owns and serves each customer (from the assignment service's events) ------------------
ASSIGNMENT_STREAM = "assignment"


def define_owner_refs(metadata: MetaData) -> Table:
    """The ``owner_refs`` table: one row per customer and staff member who owns or serves it
    (``role``: ``owner`` or a team role), kept from ``ownership.*`` events."""
    return Table(
        "owner_refs",
        metadata,
        Column("customer_id", String(36), primary_key=True),
        Column("staff_id", String(100), primary_key=True, index=True),
        Column("role", String(30), nullable=False),
        Column("since", UtcDateTime, nullable=False),
    )


def owns_or_serves(session: Session, table: Table, customer_id: str, staff_id: str) -> bool:
    """True when the staff member owns or serves the customer, by the kept copy."""
    found = session.execute(
        sa.select(table.c.role).where(
            table.c.customer_id == customer_id, table.c.staff_id == staff_id
        )
    ).first()
    return found is not None


def owner_of(session: Session, table: Table, customer_id: str) -> str | None:
    """The staff id of the customer's responsible owner, by the kept copy."""
    return session.execute(
        sa.select(table.c.staff_id).where(
            table.c.customer_id == customer_id, table.c.role == "owner"
        )
    ).scalar_one_or_none()


def register_ownership_replica(
    registry: HandlerRegistry,
    table: Table,
    then: Callable[[Session, str], None] | None = None,
) -> None:
    """Keep ``table`` up to date from ownership.assigned / .transferred / .released (v1).

    One customer, one responsible manager: a new ``owner`` replaces the previous one; team
    members are kept beside the owner until released. ``then(session, customer_id)`` runs after
    each change of the copy, for a service whose own state follows the owner.
    """

    def changed(session: Session, customer_id: str) -> None:
        if then is not None:
            session.flush()
            then(session, customer_id)

    def put(session: Session, customer_id: str, staff_id: str, role: str, since: Any) -> None:
        if role == "owner":
            session.execute(
                sa.delete(table).where(table.c.customer_id == customer_id, table.c.role == "owner")
            )
        session.execute(
            sa.delete(table).where(table.c.customer_id == customer_id, table.c.staff_id == staff_id)
        )
        session.execute(
            sa.insert(table).values(
                customer_id=customer_id, staff_id=staff_id, role=role, since=since
            )
        )

    def assigned(session: Session, event: Envelope) -> None:
        data = event.data
        put(session, data["customer_id"], data["staff_id"], data["role"], event.occurred_at)
        changed(session, data["customer_id"])

    def transferred(session: Session, event: Envelope) -> None:
        data = event.data
        put(session, data["customer_id"], data["to_staff_id"], "owner", event.occurred_at)
        changed(session, data["customer_id"])

    def released(session: Session, event: Envelope) -> None:
        data = event.data
        session.execute(
            sa.delete(table).where(
                table.c.customer_id == data["customer_id"],
                table.c.staff_id == data["staff_id"],
            )
        )
        changed(session, data["customer_id"])

    registry.on(ASSIGNMENT_STREAM, "ownership.assigned", versions=(1,))(assigned)
    registry.on(ASSIGNMENT_STREAM, "ownership.transferred", versions=(1,))(transferred)
    registry.on(ASSIGNMENT_STREAM, "ownership.released", versions=(1,))(released)


def create_owner_refs_v1(op: Any) -> None:
    """Migration step: the ``owner_refs`` table, layout version 1."""
    op.create_table(
        "owner_refs",
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("staff_id", sa.String(100), nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "staff_id", name="pk_owner_refs"),
    )
    op.create_index("ix_owner_refs_staff_id", "owner_refs", ["staff_id"])


def drop_owner_refs_v1(op: Any) -> None:
    op.drop_index("ix_owner_refs_staff_id", table_name="owner_refs")
    op.drop_table("owner_refs")
