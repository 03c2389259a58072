"""Events the assignment service consumes from the rating service: grades and limits.

The responsibility report (附件3) shows each customer's credit rating 信用等级 and credit limit
授信额度. They are kept on the customer's profile: the grade from ``rating.confirmed``, the limit
from ``credit_limit.approved`` (the latest approval replaces the one before) until its
``credit_limit.expired`` — an expiry of another limit than the one kept changes nothing.

A customer's rating events are keyed by its id, so they arrive in order. A customer this service
does not know yet (its ``customer.created`` not applied) cannot have a profile: the event fails,
is retried and, if the customer still is not known, dead-lettered for a replay, rather than
dropped.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.db import utcnow
from crmkit.events import Envelope
from services.assignment.handlers import registry
from services.assignment.models import CustomerProfile, customer_refs

RATING_STREAM = "rating"


class CustomerNotKnown(LookupError):
    """A rating event of a customer this service has no copy of (yet)."""


def _profile(session: Session, customer_id: str) -> CustomerProfile:
    """The customer's profile, made from its copy when no event needed one before."""
    profile = session.get(CustomerProfile, customer_id)
    if profile is not None:
        return profile
    kind = session.execute(
        select(customer_refs.c.kind).where(customer_refs.c.customer_id == customer_id)
    ).scalar_one_or_none()
    if kind is None:
        raise CustomerNotKnown(f"customer {customer_id} is not known to the assignment service")
    profile = CustomerProfile(
        customer_id=customer_id, kind=kind, segment="stock", products=[], updated_at=utcnow()
    )
    session.add(profile)
    return profile


@registry.on(RATING_STREAM, "rating.confirmed", versions=(1,))
def rating_confirmed(session: Session, event: Envelope) -> None:
    """The grade in force: the one the approver confirmed."""
    profile = _profile(session, event.data["customer_id"])
    profile.credit_grade = event.data["grade"]
    profile.updated_at = utcnow()


@registry.on(RATING_STREAM, "credit_limit.approved", versions=(1,))
def credit_limit_approved(session: Session, event: Envelope) -> None:
    """The comprehensive limit 综合授信额度 approved, with its id and last day in force."""
    data = event.data
    profile = _profile(session, data["customer_id"])
    profile.credit_limit = Decimal(data["total_amount"])
    profile.credit_limit_id = data["credit_limit_id"]
    profile.credit_limit_expires_on = date.fromisoformat(data["expiry_date"])
    profile.updated_at = utcnow()


@registry.on(RATING_STREAM, "credit_limit.expired", versions=(1,))
def credit_limit_expired(session: Session, event: Envelope) -> None:
    """The kept limit is gone when it is the one that expired (a newer one stays)."""
    data = event.data
    profile = session.get(CustomerProfile, data["customer_id"])
    if profile is None or profile.credit_limit_id != data["credit_limit_id"]:
        return
    profile.credit_limit = None
    profile.credit_limit_id = None
    profile.credit_limit_expires_on = None
    profile.updated_at = utcnow()
