"""The customer queries: scoped loading, searches with cursors, history and relationships."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.errors import (
    Forbidden,
    NotFound,
    ValidationFailed,
)
from services.customer import access
from services.customer.domain import name_key
from services.customer.models import (
    Change,
    Customer,
    Relationship,
)
from services.customer.schemas import (
    RelationshipOut,
)


# -- reading ------------------------------------------------------------------------------------
def load_readable(session: Session, caller: Caller, customer_id: str) -> Customer:
    """The customer if the caller may read it; otherwise 404, so existence is not disclosed."""
    customer = session.execute(
        select(Customer).where(Customer.id == customer_id, access.readable(caller))
    ).scalar_one_or_none()
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return customer


def load_writable(session: Session, caller: Caller, customer_id: str) -> Customer:
    customer = load_readable(session, caller, customer_id)
    allowed = session.execute(
        select(Customer.id).where(Customer.id == customer_id, access.writable(caller))
    ).scalar_one_or_none()
    if allowed is None:
        raise Forbidden(f"you may read customer {customer_id} but not change it")
    return customer


def list_changes(session: Session, caller: Caller, customer_id: str) -> list[Change]:
    load_readable(session, caller, customer_id)
    return list(
        session.scalars(
            select(Change).where(Change.customer_id == customer_id).order_by(Change.id)
        ).all()
    )


# -- lists --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerFilter:
    kind: str | None = None
    segment: str | None = None
    status: str | None = None
    value_tier: str | None = None
    wealth_layer: str | None = None
    vip_level: str | None = None
    org_unit: str | None = None
    market_segment: str | None = None
    owner: str | None = None
    lost_contact: bool | None = None
    potential_vip: str | None = None
    q: str | None = None
    include_merged: bool = False
    include_erased: bool = False


def list_customers(
    session: Session, caller: Caller, flt: CustomerFilter, limit: int, cursor: str | None
) -> tuple[list[Customer], str | None]:
    """Customers in the caller's scope, filtered, in a stable order, one cursor page."""
    query = select(Customer).where(access.readable(caller))
    if not flt.include_merged:
        query = query.where(Customer.merged_into.is_(None))
    if not flt.include_erased:
        query = query.where(Customer.erased_at.is_(None))
    for name in (
        "kind",
        "segment",
        "status",
        "value_tier",
        "wealth_layer",
        "vip_level",
        "potential_vip",
        "market_segment",
        "lost_contact",
    ):
        value = getattr(flt, name)
        if value is not None:
            query = query.where(getattr(Customer, name) == value)
    if flt.org_unit:
        query = query.where(access.in_subtree(flt.org_unit))
    if flt.owner:
        query = query.where(access.in_book_of(flt.owner))
    if flt.q:
        key = name_key(flt.q)
        if key:
            query = query.where(Customer.name_key.contains(key, autoescape=True))
    if cursor:
        after_at, after_id = decode_cursor(cursor)
        query = query.where(
            or_(
                Customer.created_at > after_at,
                and_(Customer.created_at == after_at, Customer.id > after_id),
            )
        )
    rows = list(
        session.scalars(query.order_by(Customer.created_at, Customer.id).limit(limit + 1)).all()
    )
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def encode_cursor(customer: Customer) -> str:
    raw = f"{customer.created_at.isoformat()}|{customer.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; anything not made by ``encode_cursor`` is a 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, customer_id = raw.split("|", 1)
        position = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_cursor() from exc
    if position.tzinfo is None:
        raise _bad_cursor()
    return position, customer_id


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid.", errors=[{"field": "cursor", "reason": "not a cursor"}]
    )


# -- relationships ------------------------------------------------------------------------------
def list_relationships(session: Session, customer_id: str, caller: Caller) -> list[RelationshipOut]:
    """Both directions; the other side's name only when the caller may read it."""
    load_readable(session, caller, customer_id)
    links = session.scalars(
        select(Relationship)
        .where(
            or_(
                Relationship.from_customer_id == customer_id,
                Relationship.to_customer_id == customer_id,
            )
        )
        .order_by(Relationship.id)
    ).all()
    others = {
        link.to_customer_id if link.from_customer_id == customer_id else link.from_customer_id
        for link in links
    }
    visible = dict(
        session.execute(
            select(Customer.id, Customer.name).where(
                Customer.id.in_(others), access.readable(caller)
            )
        )
        .tuples()
        .all()
    )
    out = []
    for link in links:
        outgoing = link.from_customer_id == customer_id
        other = link.to_customer_id if outgoing else link.from_customer_id
        out.append(
            RelationshipOut(
                id=link.id,
                type=link.type,
                direction="outgoing" if outgoing else "incoming",
                customer_id=customer_id,
                other_customer_id=other,
                other_name=visible.get(other, "(outside your scope)"),
                note=link.note,
                created_at=link.created_at,
            )
        )
    return out
