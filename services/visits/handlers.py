"""Events the visits service consumes: the customers it keeps in touch with, their tiers and
assets, their owners, and what puts them on the agenda beyond the plan (a limit approved — a
post-sale follow-up; a risk flag — a visit; a limit about to expire).

``customer_refs`` and ``owner_refs`` are the copies every service keeps; ``customer_care`` holds
what the follow-up plan reads and the next contact due. Handlers run in the consumer's
transaction with the inbox entry, so a redelivered event changes nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.clock import business_today
from crmkit.consumer import HandlerRegistry
from crmkit.db import utcnow
from crmkit.events import Envelope
from crmkit.replicas import (
    CUSTOMER_STREAM,
    apply_customer_events,
    owner_of,
    register_customer_lifecycle,
    register_ownership_replica,
)
from services.visits import followups, register
from services.visits.models import CustomerCare, customer_refs, owner_refs

RATING_STREAM = "rating"
# Product types whose sale brings a post-sale follow-up 售后跟踪 (a limit approved does too).
SOLD_PRODUCTS = frozenset({"loan", "wealth"})
CLOSED = "closed"

registry = HandlerRegistry()
# An erased customer's name goes, and what the teller register kept of the person.
register_customer_lifecycle(registry, customer_refs, on_erased=register.erase_customer)


def care_of(session: Session, customer_id: str) -> CustomerCare | None:
    """The customer's care row, made from its copy when no event needed one before; None for a
    customer not known here yet (its next event brings it)."""
    care = session.get(CustomerCare, customer_id)
    if care is not None:
        return care
    unit = session.execute(
        select(customer_refs.c.org_unit).where(customer_refs.c.customer_id == customer_id)
    ).scalar_one_or_none()
    if unit is None:
        return None
    care = CustomerCare(customer_id=customer_id, org_unit=unit, updated_at=utcnow())
    session.add(care)
    return care


def _keep_tiers(care: CustomerCare, data: dict[str, object]) -> None:
    for name in ("value_tier", "wealth_layer", "vip_level"):
        if name in data:
            setattr(care, name, data[name])


@registry.on_many(CUSTOMER_STREAM, "customer.created", versions=(1,))
@registry.on_many(CUSTOMER_STREAM, "customer.updated", versions=(1,))
def customer_entered_or_changed(session: Session, events: list[Envelope]) -> None:
    apply_customer_events(session, customer_refs, events)
    session.flush()
    for event in events:
        data = event.data
        care = care_of(session, data["customer_id"])
        if care is None:
            continue
        care.org_unit = data["org_unit"]
        _keep_tiers(care, data)
        care.updated_at = utcnow()
        if data["status"] == CLOSED:
            care.next_due_on = None
            care.due_reason = None
        else:
            followups.refresh(session, care)


@registry.on(CUSTOMER_STREAM, "customer.tier_changed", versions=(1,))
def tier_changed(session: Session, event: Envelope) -> None:
    care = care_of(session, event.data["customer_id"])
    if care is None:
        return
    _keep_tiers(care, event.data)
    care.updated_at = utcnow()
    followups.refresh(session, care)


@registry.on(CUSTOMER_STREAM, "customer.financials_updated", versions=(1,))
def financials_updated(session: Session, event: Envelope) -> None:
    data = event.data
    care = care_of(session, data["customer_id"])
    if care is None:
        return
    day = date.fromisoformat(data["business_date"])
    if care.business_date is not None and day < care.business_date:
        return  # a late snapshot of an earlier day does not replace the latest
    care.business_date = day
    care.aum = Decimal(data["aum"])
    products = sorted(set(data.get("products") or []))
    sold = SOLD_PRODUCTS.intersection(products).difference(care.products or [])
    first_snapshot = care.products is None
    care.products = products
    care.updated_at = utcnow()
    if sold and not first_snapshot:  # a product sold since the last snapshot
        followups.due_extra(session, care, "post_sale", day)


@registry.on(CUSTOMER_STREAM, "customer.status_changed", versions=(1,))
def status_changed(session: Session, event: Envelope) -> None:
    data = event.data
    session.execute(
        customer_refs.update()
        .where(customer_refs.c.customer_id == data["customer_id"])
        .values(status=data["new_status"])
    )
    care = care_of(session, data["customer_id"])
    if care is None:
        return
    if data["new_status"] == CLOSED:
        care.next_due_on = None
        care.due_reason = None
    else:
        followups.due_extra(session, care, "event", business_today())
    care.updated_at = utcnow()


def owner_changed(session: Session, customer_id: str) -> None:
    """After the copy of owners changed: the care row's owner and its next contact due."""
    care = care_of(session, customer_id)
    if care is None:
        return
    care.owner_id = owner_of(session, owner_refs, customer_id)
    care.updated_at = utcnow()
    followups.refresh(session, care)


register_ownership_replica(registry, owner_refs, then=owner_changed)


@registry.on(RATING_STREAM, "risk.flagged", versions=(1,))
def risk_flagged(session: Session, event: Envelope) -> None:
    care = care_of(session, event.data["customer_id"])
    if care is None:
        return
    care.risk_status = event.data["risk_status"]
    care.updated_at = utcnow()
    followups.due_extra(session, care, "risk", business_today())


@registry.on(RATING_STREAM, "risk.cleared", versions=(1,))
def risk_cleared(session: Session, event: Envelope) -> None:
    care = care_of(session, event.data["customer_id"])
    if care is None:
        return
    status = event.data["risk_status"]
    care.risk_status = None if status == "none" else status
    care.updated_at = utcnow()


@registry.on(RATING_STREAM, "credit_limit.approved", versions=(1,))
def credit_limit_approved(session: Session, event: Envelope) -> None:
    care = care_of(session, event.data["customer_id"])
    if care is None:
        return
    care.credit_limit_expires_on = date.fromisoformat(event.data["expiry_date"])
    care.updated_at = utcnow()
    followups.due_extra(session, care, "post_sale", business_today())


@registry.on(RATING_STREAM, "credit_limit.expired", versions=(1,))
def credit_limit_expired(session: Session, event: Envelope) -> None:
    care = care_of(session, event.data["customer_id"])
    if care is None:
        return
    if care.credit_limit_expires_on == date.fromisoformat(event.data["expiry_date"]):
        care.credit_limit_expires_on = None
        care.updated_at = utcnow()
