"""The local copy of customers that every consuming service keeps from customer events.

Services never read the customer service's tables; they keep the few fields they need from
``customer.created`` / ``customer.updated``. A copy is only overwritten by a newer event, so a
redelivered or re-published older event never rolls it back.
"""

from __future__ import annotations

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
