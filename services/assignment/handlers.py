"""Events the assignment service consumes: the customers it assigns, with what its rules read.

``customer_refs`` (name, kind, unit, line, status) is the copy every service keeps;
``customer_profiles`` adds the segments, tiers and latest figures the assignment rules and team
checks need. Handlers run in the consumer's transaction with the inbox entry, so a redelivered
event changes nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Executable, bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crmkit.consumer import HandlerRegistry
from crmkit.db import utcnow
from crmkit.events import Envelope
from crmkit.replicas import CUSTOMER_STREAM, apply_customer_events
from services.assignment import upgrades
from services.assignment.models import Base, CustomerProfile, customer_refs

registry = HandlerRegistry()

_TIERS = ("value_tier", "wealth_layer", "vip_level")


_PROFILE_FIELDS = ("kind", "segment", "market_segment", *_TIERS)


@cache
def _profile_upsert(dialect: str) -> Executable:
    """Insert a profile, or update its segments and tiers (figures untouched); built once."""
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = Base.metadata.tables[CustomerProfile.__tablename__]
    columns = ("customer_id", *_PROFILE_FIELDS, "products", "updated_at")
    statement = insert_(table).values({name: bindparam(name) for name in columns})
    return statement.on_conflict_do_update(
        index_elements=[table.c.customer_id],
        set_={name: statement.excluded[name] for name in (*_PROFILE_FIELDS, "updated_at")},
    )


def _upsert_profiles(session: Session, rows: list[dict[str, Any]]) -> None:
    """One statement for the batch's profiles, executed for every row (compiled once)."""
    session.execute(_profile_upsert(session.get_bind().dialect.name), rows)


@registry.on_many(CUSTOMER_STREAM, "customer.created", versions=(1,))
@registry.on_many(CUSTOMER_STREAM, "customer.updated", versions=(1,))
def customer_entered_or_changed(session: Session, events: list[Envelope]) -> None:
    apply_customer_events(session, customer_refs, events)
    now = utcnow()
    latest: dict[str, dict[str, Any]] = {}
    for event in events:  # of several events for one customer, the last counts
        data = event.data
        row = {name: data.get(name) for name in _PROFILE_FIELDS}
        if event.type == "customer.created" and _plain(row):
            # Most new customers: a stock customer without segment or tiers. No row is written
            # for them (the profile's defaults say as much); the first tiers or figures make it.
            continue
        latest.pop(data["customer_id"], None)
        latest[data["customer_id"]] = {
            "customer_id": data["customer_id"],
            **row,
            "products": [],
            "updated_at": now,
        }
    if latest:
        _upsert_profiles(session, list(latest.values()))


def _plain(row: dict[str, Any]) -> bool:
    """A profile that says nothing the defaults do not: stock, no market segment, no tiers."""
    return row["segment"] == "stock" and all(
        row[name] is None for name in ("market_segment", *_TIERS)
    )


def _profile_of(session: Session, customer_id: str) -> CustomerProfile | None:
    """The customer's profile, made from its copy when the events did not need one before."""
    profile = session.get(CustomerProfile, customer_id)
    if profile is not None:
        return profile
    kind = session.execute(
        select(customer_refs.c.kind).where(customer_refs.c.customer_id == customer_id)
    ).scalar_one_or_none()
    if kind is None:  # not entered here yet: its figures and tiers come again with its update
        return None
    profile = CustomerProfile(
        customer_id=customer_id, kind=kind, segment="stock", products=[], updated_at=utcnow()
    )
    session.add(profile)
    return profile


@registry.on(CUSTOMER_STREAM, "customer.tier_changed", versions=(1,))
def tier_changed(session: Session, event: Envelope) -> None:
    profile = _profile_of(session, event.data["customer_id"])
    if profile is None:
        return
    for name in _TIERS:
        setattr(profile, name, event.data[name])
    profile.updated_at = utcnow()
    upgrades.on_tier_changed(session, event)


@registry.on(CUSTOMER_STREAM, "customer.financials_updated", versions=(1,))
def financials_updated(session: Session, event: Envelope) -> None:
    data = event.data
    profile = _profile_of(session, data["customer_id"])
    if profile is None:
        return
    day = date.fromisoformat(data["business_date"])
    if profile.business_date is not None and day < profile.business_date:
        return  # a late snapshot of an earlier day does not replace the latest
    profile.business_date = day
    profile.deposits = Decimal(data["deposits"])
    profile.loans = Decimal(data["loans"])
    profile.aum = Decimal(data["aum"])
    profile.overdue_amount = Decimal(data["overdue_amount"])
    profile.products = sorted(set(data.get("products") or []))
    profile.updated_at = utcnow()


# The rating service's grades and limits kept for the reports register here too.
from services.assignment import handlers_rating  # noqa: E402,F401


@registry.on("rating", "risk.flagged", versions=(1,))
@registry.on("rating", "risk.cleared", versions=(1,))
def risk_status_changed(session: Session, event: Envelope) -> None:
    """The customer's risk status after a flag was raised or cleared (``watch``, ``warning``,
    ``severe``; None when no flag stays open): the ``anomaly`` team case reads it. A customer not
    known here yet fails the event, which is retried and dead-lettered for a replay, not lost."""
    data = event.data
    profile = _profile_of(session, data["customer_id"])
    if profile is None:
        raise LookupError(f"customer {data['customer_id']} is not known to the assignment service")
    profile.risk_flag = None if data["risk_status"] == "none" else data["risk_status"]
    profile.updated_at = utcnow()


from services.assignment import (  # noqa: E402
    handlers_groups,  # noqa: F401
    handlers_visits,  # noqa: F401
)
