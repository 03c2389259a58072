"""Customer use cases: one transaction each, events written in it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.db import utcnow
from crmkit.errors import Forbidden, NotFound
from crmkit.outbox import EventRecorder
from services.customer import events
from services.customer.models import Customer
from services.customer.schemas import CustomerCreate, CustomerPatch

EVENT_FIELDS = ("kind", "name", "org_unit", "business_line", "status", "segment")


def _payload(customer: Customer, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"customer_id": customer.id}
    data.update({f: getattr(customer, f) for f in EVENT_FIELDS})
    data.update(extra)
    return data


def _check_scope(caller: Caller, org_unit: str) -> None:
    if not (caller.has_role(ROLE_ADMIN) or caller.within(org_unit)):
        raise Forbidden(f"org unit {org_unit} is outside your scope {caller.org_unit}")


def create_customer(
    session: Session, recorder: EventRecorder, cmd: CustomerCreate, caller: Caller
) -> Customer:
    _check_scope(caller, cmd.org_unit)
    now = utcnow()
    customer = Customer(
        id=str(uuid.uuid4()),
        kind=cmd.kind.value,
        name=cmd.name,
        org_unit=cmd.org_unit,
        business_line=cmd.business_line.value,
        status="target" if cmd.segment.value == "target" else "active",
        segment=cmd.segment.value,
        created_at=now,
        updated_at=now,
        created_by=caller.subject,
    )
    session.add(customer)
    session.flush()
    recorder.record(
        session, events.CUSTOMER_CREATED, _payload(customer), key=customer.id, actor=caller.subject
    )
    session.commit()
    return customer


def get_customer(session: Session, customer_id: str, caller: Caller) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or not (caller.has_role(ROLE_ADMIN) or caller.within(customer.org_unit)):
        # Out-of-scope records are reported as absent: their existence is not disclosed.
        raise NotFound(f"no customer {customer_id}")
    return customer


def update_customer(
    session: Session,
    recorder: EventRecorder,
    customer_id: str,
    patch: CustomerPatch,
    caller: Caller,
) -> Customer:
    customer = get_customer(session, customer_id, caller)
    changes = patch.model_dump(exclude_none=True, mode="json")
    if "org_unit" in changes:
        _check_scope(caller, changes["org_unit"])
    changed = [k for k, v in changes.items() if getattr(customer, k) != v]
    if not changed:
        return customer
    for field in changed:
        setattr(customer, field, changes[field])
    customer.updated_at = utcnow()
    recorder.record(
        session,
        events.CUSTOMER_UPDATED,
        _payload(customer, changed=changed),
        key=customer.id,
        actor=caller.subject,
    )
    session.commit()
    return customer


def list_customers(
    session: Session, caller: Caller, limit: int, offset: int
) -> tuple[list[Customer], int]:
    query = select(Customer)
    if not caller.has_role(ROLE_ADMIN):
        scope = caller.org_unit.rstrip("/")
        query = query.where(
            (Customer.org_unit == scope) | Customer.org_unit.startswith(scope + "/")
        )
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = (
        session.execute(
            query.order_by(Customer.created_at, Customer.id).limit(limit).offset(offset)
        )
        .scalars()
        .all()
    )
    return list(rows), total
