"""Customer use cases that change records: one transaction each, the events written in it (outbox).

Every use case takes the session and the caller explicitly, checks what the caller may do
(``access``), applies the rules and records its events before it commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit.auth import Caller
from crmkit.db import utcnow
from crmkit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from crmkit.outbox import EventRecorder, recorder_of
from crmkit.versioning import check_version
from services.customer import access, events
from services.customer.context import CustomerContext
from services.customer.domain import (
    EVENT_FIELDS,
    PERSONAL_FIELDS,
    TRANSITIONS,
    name_key,
    name_stem,
)
from services.customer.models import (
    Change,
    Customer,
    Relationship,
)
from services.customer.personal import (
    FieldErrors,
)
from services.customer.record import (
    apply_fields,
    check_target_basis,
    ensure_identity_free,
    flush_unique,
    given_fields,
    replace_children,
)
from services.customer.repo import load_readable, load_writable
from services.customer.schemas import (
    CustomerCreate,
    CustomerPatch,
    RelationshipIn,
    RelationshipType,
)


# -- creating -----------------------------------------------------------------------------------
def create_customer(
    session: Session, ctx: CustomerContext, cmd: CustomerCreate, caller: Caller
) -> Customer:
    """Enter a customer 客户信息采集: validate identity, store personal data encrypted."""
    if not access.may_create_in(caller, cmd.org_unit):
        raise Forbidden(f"you may not enter customers in {cmd.org_unit}")
    customer = new_customer(ctx, cmd, caller.subject)
    errors = FieldErrors()
    check_target_basis(cmd.segment.value, cmd.data_source, cmd.lawful_basis, errors)
    apply_fields(ctx, customer, cmd, errors, creating=True)
    if errors:
        raise ValidationFailed("The customer is not valid.", errors=errors.items)
    ensure_identity_free(session, customer)
    session.add(customer)
    replace_children(session, ctx, customer, cmd)
    flush_unique(session, customer)
    log_change(session, customer, "created", caller.subject, {"fields": sorted(given_fields(cmd))})
    ctx.recorder.record(
        session,
        events.CUSTOMER_CREATED,
        event_payload(customer),
        key=customer.id,
        actor=caller.subject,
    )
    session.commit()
    return customer


def new_customer(ctx: CustomerContext, cmd: CustomerCreate, actor: str) -> Customer:
    return Customer(**new_customer_values(cmd, actor))


def new_customer_values(cmd: CustomerCreate, actor: str) -> dict[str, Any]:
    """The attributes a new record starts with, before ``apply_fields`` (the bulk import sets
    them on a plain object: building mapped instances costs more than the rest of a row)."""
    now = utcnow()
    return {
        "id": str(uuid.uuid4()),
        "kind": cmd.kind.value,
        "segment": cmd.segment.value,
        "status": "target" if cmd.segment.value == "target" else "active",
        "name": cmd.name,
        "name_key": name_key(cmd.name),
        "name_stem": name_stem(cmd.name),
        "business_line": cmd.business_line.value,
        "org_unit": cmd.org_unit,
        "lost_contact": True,
        "addresses": [],
        "profile": {},
        "product_use_types": [],
        "invalid": False,
        "created_at": now,
        "updated_at": now,
        "created_by": actor,
        "updated_by": actor,
    }


# -- changing -----------------------------------------------------------------------------------
def update_customer(
    session: Session,
    ctx: CustomerContext,
    customer_id: str,
    patch: CustomerPatch,
    caller: Caller,
    if_match: str | None,
) -> Customer:
    """Change master data, naming the version read: a stale version is refused, not lost."""
    customer = load_writable(session, caller, customer_id)
    _check_version(customer, patch.version, if_match)
    moving_to = patch.org_unit if "org_unit" in patch.model_fields_set else None
    if moving_to is not None and not access.may_create_in(caller, moving_to):
        raise Forbidden(f"you may not move customers to {moving_to}")
    # Checks read the database; the record must not be flushed half-changed (one version step).
    with session.no_autoflush:
        errors = FieldErrors()
        old_status = customer.status
        status_change = _status_change(customer, patch, errors)
        changed = apply_fields(ctx, customer, patch, errors, creating=False)
        if errors:
            session.rollback()
            raise ValidationFailed("The change is not valid.", errors=errors.items)
        if "id_number" in changed or "credit_code" in changed:
            ensure_identity_free(session, customer)
        changed += replace_children(session, ctx, customer, patch)
        if status_change is not None:
            customer.status = status_change
            if status_change == "active" and customer.segment == "target":
                customer.segment = "stock"
                changed.append("segment")
            changed.append("status")
        if not changed:
            return customer
        customer.updated_at = utcnow()
        customer.updated_by = caller.subject
    flush_unique(session, customer)
    log_change(session, customer, "updated", caller.subject, _describe(customer, changed))
    ctx.recorder.record(
        session,
        events.CUSTOMER_UPDATED,
        event_payload(customer, changed=sorted(set(changed))),
        key=customer.id,
        actor=caller.subject,
    )
    if status_change is not None:
        ctx.recorder.record(
            session,
            events.CUSTOMER_STATUS_CHANGED,
            {
                "customer_id": customer.id,
                "old_status": old_status,
                "new_status": status_change,
                "reason": patch.status_reason,
            },
            key=customer.id,
            actor=caller.subject,
        )
    commit_versioned(session, customer_id)
    return customer


def _check_version(customer: Customer, body_version: int | None, if_match: str | None) -> None:
    check_version(f"customer {customer.id}", customer.version, body_version, if_match)


def commit_versioned(session: Session, customer_id: str) -> None:
    """Commit; a concurrent writer that got in first makes this a 409, not a lost update."""
    try:
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict(f"customer {customer_id} was changed concurrently; read it again") from exc


def _status_change(customer: Customer, patch: CustomerPatch, errors: FieldErrors) -> str | None:
    if patch.status is None or patch.status.value == customer.status:
        return None
    new = patch.status.value
    if new not in TRANSITIONS[customer.status]:
        allowed = ", ".join(sorted(TRANSITIONS[customer.status])) or "none"
        errors.add("status", f"{customer.status} cannot become {new} (allowed: {allowed})")
        return None
    return new


def _describe(customer: Customer, changed: list[str]) -> dict[str, Any]:
    """The change log entry: new values of plain fields, only the names of personal ones."""
    out: dict[str, Any] = {}
    for name in sorted(set(changed)):
        if name in PERSONAL_FIELDS or name == "profile":
            out[name] = "changed"
        elif name in {"collaterals", "guarantors"}:
            out[name] = "replaced"
        else:
            value = getattr(customer, name, None)
            out[name] = value.isoformat() if isinstance(value, date) else value
    return out


def log_change(
    session: Session, customer: Customer, action: str, actor: str, changes: dict[str, Any]
) -> None:
    session.add(
        Change(
            customer_id=customer.id,
            version=(customer.version or 0) + (0 if action == "created" else 1),
            action=action,
            actor=actor,
            at=utcnow(),
            changes=changes,
        )
    )


def event_payload(customer: Customer, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"customer_id": customer.id}
    data.update({f: getattr(customer, f) for f in EVENT_FIELDS})
    data.update(
        market_segment=customer.market_segment,
        value_tier=customer.value_tier,
        wealth_layer=customer.wealth_layer,
        vip_level=customer.vip_level,
        importance=customer.importance,
        core_customer_no=customer.core_customer_no,
    )
    data.update(extra)
    return data


def add_relationship(
    session: Session, customer_id: str, cmd: RelationshipIn, caller: Caller
) -> Relationship:
    """Link the customer to another. A ``group_member`` link (the customer joins the other's
    group 集团客户) is checked by :func:`_check_group_link` and announced as
    ``customer.group_changed`` in the same transaction."""
    customer = load_writable(session, caller, customer_id)
    if cmd.to_customer_id == customer.id:
        raise ValidationFailed(
            "A customer cannot be related to itself.",
            errors=[{"field": "to_customer_id", "reason": "same customer"}],
        )
    other = load_readable(session, caller, cmd.to_customer_id)
    grouping = cmd.type is RelationshipType.group_member
    if grouping:
        _check_group_link(session, customer.id, other.id)
    link = Relationship(
        from_customer_id=customer.id,
        to_customer_id=other.id,
        type=cmd.type.value,
        note=cmd.note,
        created_at=utcnow(),
    )
    session.add(link)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("This relationship is already recorded.") from exc
    log_change(
        session,
        customer,
        "relationship_added",
        caller.subject,
        {"type": cmd.type.value, "to_customer_id": other.id},
    )
    if grouping:
        record_group_changes(session, recorder_of(session), {customer.id: None}, caller.subject)
    session.commit()
    return link


def end_relationship(
    session: Session, customer_id: str, relationship_id: int, caller: Caller
) -> None:
    """End a link from the customer to another (those who may change the customer). The link
    is removed and the customer's change log keeps it; ending a ``group_member`` link (the
    customer leaves its group) is announced as ``customer.group_changed``."""
    customer = load_writable(session, caller, customer_id)
    link = session.get(Relationship, relationship_id)
    if link is None or link.from_customer_id != customer.id:
        raise NotFound(f"no relationship {relationship_id} from customer {customer_id}")
    before: dict[str, str | None] = {}
    if link.type == RelationshipType.group_member.value:
        _lock_customers(session, [customer.id])
        before = groups_of(session, [customer.id])
    session.delete(link)
    session.flush()
    log_change(
        session,
        customer,
        "relationship_removed",
        caller.subject,
        {"type": link.type, "to_customer_id": link.to_customer_id},
    )
    record_group_changes(session, recorder_of(session), before, caller.subject)
    session.commit()


# -- groups 集团客户 ----------------------------------------------------------------------------
# A group is its parent and the customers linked to it by ``group_member`` (from the member to the
# parent). Groups are one level deep and a customer belongs to one group at most: the API refuses
# other links. A merge may still leave a survivor with two group links; its group is then the
# parent of the older link.
GROUP_MEMBER = RelationshipType.group_member.value


def _lock_customers(session: Session, customer_ids: list[str]) -> None:
    """Lock the customers' rows (in id order) so their group links change one at a time."""
    session.execute(
        select(Customer.id)
        .where(Customer.id.in_(customer_ids))
        .order_by(Customer.id)
        .with_for_update()
    ).all()


def _check_group_link(session: Session, member_id: str, parent_id: str) -> None:
    """A customer joins one group at a time, a group's parent is a member of none, and a
    member is the parent of none (409 / 422 otherwise)."""
    _lock_customers(session, [member_id, parent_id])
    current = groups_of(session, [member_id])[member_id]
    if current is not None:
        raise Conflict(
            f"customer {member_id} belongs to the group of {current} already; end that "
            "relationship first",
            group_id=current,
        )
    errors: list[dict[str, str]] = []
    parent_group = groups_of(session, [parent_id])[parent_id]
    if parent_group is not None:
        errors.append(
            {
                "field": "to_customer_id",
                "reason": f"customer {parent_id} is a member of the group of {parent_group}; "
                "link to the group's parent",
            }
        )
    has_members = session.scalars(
        select(Relationship.id)
        .where(Relationship.type == GROUP_MEMBER, Relationship.to_customer_id == member_id)
        .limit(1)
    ).first()
    if has_members is not None:
        errors.append(
            {
                "field": "type",
                "reason": f"customer {member_id} is the parent of a group; a group's parent "
                "belongs to no group",
            }
        )
    if errors:
        raise ValidationFailed("Groups are one level deep.", errors=errors)


def groups_of(session: Session, customer_ids: Iterable[str]) -> dict[str, str | None]:
    """The group (its parent's id) each customer belongs to now, None for none: the target of
    its oldest ``group_member`` link."""
    wanted = list(customer_ids)
    found: dict[str, str | None] = dict.fromkeys(wanted)
    rows = session.execute(
        select(Relationship.from_customer_id, Relationship.to_customer_id)
        .where(Relationship.type == GROUP_MEMBER, Relationship.from_customer_id.in_(wanted))
        .order_by(Relationship.id.desc())
    ).all()
    for member, parent in rows:  # the oldest link last, so it counts
        found[member] = parent
    return found


def group_snapshot(session: Session, customer_ids: list[str]) -> dict[str, str | None]:
    """The groups of the customers and of the members of their groups: every customer whose
    group a change of their ``group_member`` links may change (a merge re-points them)."""
    members = session.scalars(
        select(Relationship.from_customer_id).where(
            Relationship.type == GROUP_MEMBER, Relationship.to_customer_id.in_(customer_ids)
        )
    ).all()
    return groups_of(session, sorted({*customer_ids, *members}))


def record_group_changes(
    session: Session, recorder: EventRecorder, before: dict[str, str | None], actor: str
) -> None:
    """Record ``customer.group_changed`` for each customer of ``before`` whose group is not the
    one it had then (in the caller's transaction)."""
    if not before:
        return
    after = groups_of(session, before)
    for customer_id in sorted(before):
        if after[customer_id] != before[customer_id]:
            recorder.record(
                session,
                events.CUSTOMER_GROUP_CHANGED,
                {
                    "customer_id": customer_id,
                    "group_id": after[customer_id],
                    "previous_group_id": before[customer_id],
                },
                key=customer_id,
                actor=actor,
            )
