"""Events the rating service consumes: the customers it rates, their figures, their owners.

``customer_refs`` (name, kind, unit, line, status) is the copy every service keeps;
``customer_figures`` adds the tiers and core banking's latest figures the scorecards, the VIP
pricing hint and the early-warning signals read; ``owner_refs`` says who may propose for a
customer. A change of figures or status proposes a re-rating and feeds the risk signals.
Handlers run in the consumer's transaction with the inbox entry, so a redelivered event changes
nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from crmkit.consumer import HandlerRegistry
from crmkit.db import utcnow
from crmkit.events import Envelope
from crmkit.replicas import (
    CUSTOMER_STREAM,
    apply_customer_events,
    register_customer_lifecycle,
    register_ownership_replica,
)
from services.rating import rerating, risk
from services.rating.models import CustomerFigures, customer_refs, owner_refs

registry = HandlerRegistry()
register_ownership_replica(registry, owner_refs)
# An erased customer's name goes; a merged-away record is no longer rated. The assessments and
# limits stay: they are the bank's credit records, kept under its retention duties.
register_customer_lifecycle(registry, customer_refs)


def figures_of(session: Session, customer_id: str) -> CustomerFigures:
    """The customer's figures row, made empty when no event has filled it yet."""
    figures = session.get(CustomerFigures, customer_id)
    if figures is None:
        figures = CustomerFigures(customer_id=customer_id, products=[], updated_at=utcnow())
        session.add(figures)
    return figures


@registry.on_many(CUSTOMER_STREAM, "customer.created", versions=(1,))
@registry.on_many(CUSTOMER_STREAM, "customer.updated", versions=(1,))
def customer_entered_or_changed(session: Session, events: list[Envelope]) -> None:
    apply_customer_events(session, customer_refs, events)
    for event in events:
        data = event.data
        no_tiers = data.get("vip_level") is None and data.get("value_tier") is None
        if no_tiers and session.get(CustomerFigures, data["customer_id"]) is None:
            continue  # nothing to keep beyond the copy yet
        figures = figures_of(session, data["customer_id"])
        figures.vip_level = data.get("vip_level")
        figures.value_tier = data.get("value_tier")
        figures.updated_at = utcnow()


@registry.on(CUSTOMER_STREAM, "customer.tier_changed", versions=(1,))
def tier_changed(session: Session, event: Envelope) -> None:
    figures = figures_of(session, event.data["customer_id"])
    figures.vip_level = event.data["vip_level"]
    figures.value_tier = event.data["value_tier"]
    figures.updated_at = utcnow()


@registry.on(CUSTOMER_STREAM, "customer.financials_updated", versions=(1,))
def financials_updated(session: Session, event: Envelope) -> None:
    data = event.data
    figures = figures_of(session, data["customer_id"])
    day = date.fromisoformat(data["business_date"])
    if figures.business_date is not None and day <= figures.business_date:
        return  # a late or repeated snapshot does not replace the latest
    if figures.business_date is not None:
        figures.previous_business_date = figures.business_date
        figures.previous_deposits = figures.deposits
    figures.business_date = day
    figures.deposits = Decimal(data["deposits"])
    figures.loans = Decimal(data["loans"])
    figures.aum = Decimal(data["aum"])
    figures.overdue_amount = Decimal(data["overdue_amount"])
    figures.products = sorted(set(data.get("products") or []))
    figures.updated_at = utcnow()
    session.flush()
    risk.on_figures(session, figures)
    rerating.on_inputs_changed(session, data["customer_id"], "financials")


@registry.on(CUSTOMER_STREAM, "customer.status_changed", versions=(1,))
def status_changed(session: Session, event: Envelope) -> None:
    rerating.on_inputs_changed(session, event.data["customer_id"], "status")
