"""Personal data use cases: audited reveals, identity lookups and erasure on request (PIPL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.db import utcnow
from crmkit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PolicyViolation,
    ValidationFailed,
)
from services.customer import access, events
from services.customer.context import CustomerContext
from services.customer.domain import business_today
from services.customer.models import (
    Change,
    Collateral,
    Contact,
    Customer,
    Guarantor,
    Reveal,
)
from services.customer.personal import (
    PEOPLE,
    FieldErrors,
    erase_personal_fields,
    identity_index,
    parse_credit_code,
    parse_resident_id,
    reveal_contact_phone,
    reveal_id_number,
    reveal_operator_id,
    reveal_phone,
)
from services.customer.repo import load_readable
from services.customer.service import commit_versioned, log_change


# -- personal data ------------------------------------------------------------------------------
def reveal(
    session: Session,
    ctx: CustomerContext,
    customer_id: str,
    fields: list[str],
    reason: str,
    caller: Caller,
) -> tuple[dict[str, Any], int]:
    """Personal data in clear for a role that may see it, on a record it may read; audited."""
    if not access.may_reveal(caller):
        raise Forbidden("your role may not reveal personal data")
    customer = load_readable(session, caller, customer_id)
    values: dict[str, Any] = {}
    for name in fields:
        if name == "id_number":
            values[name] = reveal_id_number(customer, ctx.cipher)
        elif name == "operator_id_number":
            values[name] = reveal_operator_id(customer, ctx.cipher)
        elif name == "phone":
            values[name] = reveal_phone(customer, ctx.cipher)
        elif name == "contact_phones":
            contacts = session.scalars(
                select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)
            ).all()
            values[name] = [
                {"contact_id": c.id, "name": c.name, "phone": reveal_contact_phone(c, ctx.cipher)}
                for c in contacts
            ]
    audit = _audit(session, customer.id, sorted(values), reason, caller)
    session.commit()
    return values, audit.id


def _audit(
    session: Session, customer_id: str, fields: list[str], reason: str, caller: Caller
) -> Reveal:
    entry = Reveal(
        customer_id=customer_id,
        fields=fields,
        actor=caller.subject,
        roles=sorted(caller.roles),
        reason=reason,
        at=utcnow(),
    )
    session.add(entry)
    session.flush()
    return entry


def look_up(
    session: Session,
    ctx: CustomerContext,
    caller: Caller,
    id_number: str | None,
    credit_code: str | None,
) -> Customer:
    """Find a customer by identity number (a teller serving someone at the counter); audited."""
    if not access.may_look_up(caller):
        raise Forbidden("your role may not look customers up by identity")
    errors = FieldErrors()
    index: str | None = None
    if id_number:
        rid = parse_resident_id(id_number, "id_number", errors, business_today())
        if rid is not None:
            index = identity_index(ctx.cipher, "individual", rid.number, None)
    elif credit_code:
        code = parse_credit_code(credit_code, "credit_code", errors)
        if code is not None:
            index = identity_index(ctx.cipher, "corporate", None, code)
    else:
        errors.add("id_number", "give an id_number or a credit_code")
    if errors or index is None:
        raise ValidationFailed("The identity is not valid.", errors=errors.items)
    customer = session.execute(
        select(Customer).where(Customer.identity_index == index, access.lookup_scope(caller))
    ).scalar_one_or_none()
    if customer is None:
        raise NotFound("no customer with this identity")
    _audit(session, customer.id, [], "lookup by identity", caller)
    session.commit()
    return customer


def ensure_policy_allows_erasure(customer: Customer) -> None:
    if customer.kind not in PEOPLE | {"individual_business"}:
        raise PolicyViolation("only natural persons' records are erased on a data subject request")
    if customer.status not in {"target", "closed"}:
        raise PolicyViolation(
            "a customer with an open relationship keeps its records (retention duty); "
            "close the relationship first"
        )


def erase(
    session: Session,
    ctx: CustomerContext,
    customer_id: str,
    reason: str,
    request_reference: str,
    caller: Caller,
) -> Customer:
    """Erase a data subject's personal data on request (PIPL art. 47).

    The record stays, anonymous: its classification, figures and the actions of its history
    remain (lists and reports leave it out), while name, identity, phones, addresses, profile,
    contacts and guarantors go, and the change log loses the values it held. ``customer.erased``
    tells every service to do the same with its copies.
    """
    if not access.may_erase(caller):
        raise Forbidden("erasing personal data needs a branch president or an administrator")
    customer = load_readable(session, caller, customer_id)
    if customer.erased_at is not None:
        raise Conflict(f"customer {customer_id} was erased already")
    ensure_policy_allows_erasure(customer)
    erase_personal_fields(customer)
    now = utcnow()
    customer.erased_at = now
    customer.updated_at = now
    customer.updated_by = caller.subject
    session.execute(delete(Contact).where(Contact.customer_id == customer.id))
    session.execute(delete(Guarantor).where(Guarantor.customer_id == customer.id))
    session.execute(
        update(Collateral)
        .where(Collateral.customer_id == customer.id)
        .values(description="(erased)")
        .execution_options(synchronize_session=False)
    )
    for change in session.scalars(select(Change).where(Change.customer_id == customer.id)):
        change.changes = {name: "(erased)" for name in change.changes}
    log_change(
        session,
        customer,
        "erased",
        caller.subject,
        {"reason": reason, "request_reference": request_reference},
    )
    ctx.recorder.record(
        session,
        events.CUSTOMER_ERASED,
        {"customer_id": customer.id, "erased_at": now.isoformat()},
        key=customer.id,
        actor=caller.subject,
    )
    commit_versioned(session, customer.id)
    return customer
