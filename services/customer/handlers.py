"""Events the customer service consumes: who owns and serves each customer (assignment).

The copy decides what a customer manager may see, here, without asking the assignment service
per request. Handlers run in the consumer's transaction with the inbox entry, so a redelivered
event changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from crmkit.consumer import HandlerRegistry
from crmkit.events import Envelope
from services.customer.models import Customer, Owner

ASSIGNMENT_STREAM = "assignment"

registry = HandlerRegistry()


def _put(session: Session, customer_id: str, staff_id: str, role: str, since: datetime) -> None:
    owner = session.execute(
        select(Owner).where(Owner.customer_id == customer_id, Owner.staff_id == staff_id)
    ).scalar_one_or_none()
    if owner is None:
        session.add(Owner(customer_id=customer_id, staff_id=staff_id, role=role, since=since))
    else:
        owner.role = role
    session.flush()


def _mark_assigned(session: Session, customer_id: str) -> None:
    """The record has had an owner: its creator's provisional hold on it ends for good."""
    session.execute(
        update(Customer)
        .where(Customer.id == customer_id, Customer.ever_assigned.is_(False))
        .values(ever_assigned=True)
        .execution_options(synchronize_session=False)
    )


def _drop_owner_role(session: Session, customer_id: str) -> None:
    """One customer, one responsible manager: a new owner replaces the previous one."""
    session.execute(delete(Owner).where(Owner.customer_id == customer_id, Owner.role == "owner"))


@registry.on(ASSIGNMENT_STREAM, "ownership.assigned", versions=(1,))
def ownership_assigned(session: Session, event: Envelope) -> None:
    data = event.data
    _mark_assigned(session, data["customer_id"])
    if data["role"] == "owner":
        _drop_owner_role(session, data["customer_id"])
    _put(session, data["customer_id"], data["staff_id"], data["role"], event.occurred_at)


@registry.on(ASSIGNMENT_STREAM, "ownership.transferred", versions=(1,))
def ownership_transferred(session: Session, event: Envelope) -> None:
    data = event.data
    _mark_assigned(session, data["customer_id"])
    _drop_owner_role(session, data["customer_id"])
    _put(session, data["customer_id"], data["to_staff_id"], "owner", event.occurred_at)


@registry.on(ASSIGNMENT_STREAM, "ownership.released", versions=(1,))
def ownership_released(session: Session, event: Envelope) -> None:
    data = event.data
    session.execute(
        delete(Owner).where(
            Owner.customer_id == data["customer_id"], Owner.staff_id == data["staff_id"]
        )
    )
