"""Use cases of the assignment service: the org tree, the staff and who owns each customer.

One customer has at most one owner (第一责任人) at any instant: the open ownership span, unique
per customer in the database. An assignment names what it expects — no owner yet, or the owner
it takes the customer from — so of two conflicting requests one wins and the other gets a 409,
whichever order they reach the database in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, cast, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.db import count_rows, in_subtree, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.outbox import EventRecorder
from crmkit.versioning import check_version
from services.assignment import access, events, handovers
from services.assignment.models import OrgUnit, Ownership, Staff, customer_refs
from services.assignment.schemas import (
    AssignmentIn,
    AssignmentMode,
    OrgUnitIn,
    StaffIn,
    StaffPatch,
)

ORG_UNITS_PATH = "/api/v1/org-units"
STAFF_PATH = "/api/v1/staff"


# -- the org tree -------------------------------------------------------------------------------
def create_org_unit(session: Session, body: OrgUnitIn, caller: Caller) -> OrgUnit:
    if not caller.has_role(ROLE_ADMIN):
        raise Forbidden("only administrators change the org tree")
    if session.get(OrgUnit, body.path) is not None:
        raise Conflict(f"org unit {body.path} exists", existing=f"{ORG_UNITS_PATH}{body.path}")
    parent = body.path.rsplit("/", 1)[0] or None
    if parent is not None and session.get(OrgUnit, parent) is None:
        raise ValidationFailed(
            f"the parent unit {parent} does not exist; create it first",
            errors=[{"field": "path", "reason": f"no org unit {parent}"}],
        )
    unit = OrgUnit(
        path=body.path,
        name=body.name,
        type=body.type.value,
        parent_path=parent,
        created_at=utcnow(),
        created_by=caller.subject,
    )
    session.add(unit)
    session.commit()
    return unit


def list_org_units(
    session: Session, under: str | None, limit: int, offset: int
) -> tuple[list[OrgUnit], int]:
    query = select(OrgUnit)
    if under:
        query = query.where(in_subtree(OrgUnit.path, under))
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(OrgUnit.path).limit(limit).offset(offset)).all()
    return list(rows), int(total)


# -- staff --------------------------------------------------------------------------------------
def _unit(session: Session, path: str, field: str = "org_unit") -> OrgUnit:
    unit = session.get(OrgUnit, path)
    if unit is None:
        raise ValidationFailed(
            f"no org unit {path}", errors=[{"field": field, "reason": f"no org unit {path}"}]
        )
    return unit


_STAFF_FIELDS = (
    "name",
    "roles",
    "business_line",
    "grade",
    "grade_certified_on",
    "grade_expires_on",
    "org_unit",
    "capacity",
    "status",
)


def _staff_fields(staff: Staff) -> dict[str, Any]:
    return {name: getattr(staff, name) for name in _STAFF_FIELDS}


def _announce_staff(
    session: Session, recorder: EventRecorder, staff: Staff, changed: list[str], actor: str
) -> None:
    """``staff.changed`` with the whole record after the change (flushed: its new version)."""
    session.flush()
    recorder.record(
        session,
        events.STAFF_CHANGED,
        {
            "staff_id": staff.id,
            "name": staff.name,
            "roles": list(staff.roles),
            "business_line": staff.business_line,
            "grade": staff.grade,
            "org_unit": staff.org_unit,
            "capacity": staff.capacity,
            "status": staff.status,
            "version": staff.version,
            "changed": changed,
        },
        key=staff.id,
        actor=actor,
    )


def create_staff(session: Session, recorder: EventRecorder, body: StaffIn, caller: Caller) -> Staff:
    if not access.may_manage(caller, body.org_unit):
        raise Forbidden(f"you may not add staff to {body.org_unit}")
    _unit(session, body.org_unit)
    if session.get(Staff, body.id) is not None:
        raise Conflict(f"staff {body.id} exists", existing=f"{STAFF_PATH}/{body.id}")
    _check_grade_dates(body.grade_certified_on, body.grade_expires_on)
    now = utcnow()
    staff = Staff(
        id=body.id,
        name=body.name,
        roles=sorted({r.value for r in body.roles}),
        business_line=body.business_line.value if body.business_line else None,
        grade=body.grade,
        grade_certified_on=body.grade_certified_on,
        grade_expires_on=body.grade_expires_on,
        org_unit=body.org_unit,
        capacity=body.capacity,
        status="active",
        created_at=now,
        updated_at=now,
    )
    session.add(staff)
    _announce_staff(session, recorder, staff, list(_STAFF_FIELDS), caller.subject)
    session.commit()
    return staff


def _check_grade_dates(certified: Any, expires: Any) -> None:
    if certified is not None and expires is not None and expires < certified:
        raise ValidationFailed(
            "a grade expires after its certification",
            errors=[{"field": "grade_expires_on", "reason": "before grade_certified_on"}],
        )


def load_staff(session: Session, staff_id: str, caller: Caller) -> Staff:
    """A staff record the caller may read (their own, or one of a subtree they read)."""
    staff = session.get(Staff, staff_id)
    if staff is None or not (staff.id == caller.subject or access.may_read(caller, staff.org_unit)):
        raise NotFound(f"no staff {staff_id}")
    return staff


def update_staff(
    session: Session,
    recorder: EventRecorder,
    staff_id: str,
    patch: StaffPatch,
    caller: Caller,
    if_match: str | None,
) -> Staff:
    staff = load_staff(session, staff_id, caller)
    if not access.may_manage(caller, staff.org_unit):
        raise Forbidden(f"you may not change staff of {staff.org_unit}")
    check_version(f"staff {staff.id}", staff.version, patch.version, if_match)
    given = patch.model_fields_set - {"version"}
    before = _staff_fields(staff)
    if "org_unit" in given and patch.org_unit is not None:
        if not access.may_manage(caller, patch.org_unit):
            raise Forbidden(f"you may not move staff to {patch.org_unit}")
        _unit(session, patch.org_unit)
        staff.org_unit = patch.org_unit
    for name in ("name", "grade", "grade_certified_on", "grade_expires_on", "capacity"):
        if name in given and (getattr(patch, name) is not None or name != "name"):
            setattr(staff, name, getattr(patch, name))
    if "roles" in given and patch.roles:
        staff.roles = sorted({r.value for r in patch.roles})
    if "business_line" in given:
        staff.business_line = patch.business_line.value if patch.business_line else None
    if "status" in given and patch.status is not None:
        staff.status = patch.status.value
    _check_grade_dates(staff.grade_certified_on, staff.grade_expires_on)
    after = _staff_fields(staff)
    changed = [name for name in _STAFF_FIELDS if before[name] != after[name]]
    if not changed:
        return staff  # the same values again are no change: no new version, no event
    staff.updated_at = utcnow()
    try:
        _announce_staff(session, recorder, staff, changed, caller.subject)
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict(f"staff {staff_id} was changed concurrently; read it again") from exc
    return staff


def list_staff(
    session: Session,
    caller: Caller,
    org_unit: str | None,
    role: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Staff], int]:
    """Staff of the caller's readable subtree (or the caller alone), filtered."""
    query = select(Staff)
    scope = access.readable_rows(caller, Staff.org_unit, Staff.id == caller.subject)
    if scope is not None:
        query = query.where(scope)
    if org_unit:
        query = query.where(in_subtree(Staff.org_unit, org_unit))
    if status:
        query = query.where(Staff.status == status)
    if role:
        query = query.where(holds_role(session, role))
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Staff.id).limit(limit).offset(offset)).all()
    return list(rows), int(total)


def holds_role(session: Session, role: str) -> ColumnElement[bool]:
    """The staff member's roles (a JSON list) include ``role``, tested in SQL so that counts and
    pages are the database's: jsonb's ``?`` on PostgreSQL, ``json_each`` on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        contains: ColumnElement[bool] = cast(Staff.roles, JSONB).has_key(role)
        return contains
    each = func.json_each(Staff.roles).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == role))


def book_sizes(session: Session, staff_ids: list[str]) -> dict[str, int]:
    if not staff_ids:
        return {}
    rows = session.execute(
        select(Ownership.staff_id, func.count())
        .where(Ownership.staff_id.in_(staff_ids), Ownership.ended_at.is_(None))
        .group_by(Ownership.staff_id)
    ).all()
    return {staff_id: int(count) for staff_id, count in rows}


# -- owners -------------------------------------------------------------------------------------
def customer_unit(session: Session, customer_id: str) -> str | None:
    unit: str | None = session.execute(
        select(customer_refs.c.org_unit).where(customer_refs.c.customer_id == customer_id)
    ).scalar_one_or_none()
    return unit


def current_owner(session: Session, customer_id: str, *, lock: bool = False) -> Ownership | None:
    query = select(Ownership).where(
        Ownership.customer_id == customer_id, Ownership.ended_at.is_(None)
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def check_readable_customer(session: Session, customer_id: str, caller: Caller) -> None:
    """The caller may read the owners of this customer (its subtree, or they own it)."""
    unit = customer_unit(session, customer_id)
    owner = current_owner(session, customer_id)
    if owner is not None and owner.staff_id == caller.subject:
        return
    if unit is None or not access.may_read(caller, unit):
        raise NotFound(f"no customer {customer_id} in your scope")


def owner_history(session: Session, customer_id: str) -> list[Ownership]:
    return list(
        session.scalars(
            select(Ownership)
            .where(Ownership.customer_id == customer_id)
            .order_by(Ownership.started_at, Ownership.id)
        ).all()
    )


def eligible_staff(
    session: Session, staff_id: str, may_take: Callable[[Staff], bool] | None
) -> Staff:
    """The new owner: active, of a role that holds a book, with room, book not frozen, and
    (``may_take``) one the deciding caller may give customers to.

    The staff row is locked, so that two assignments to one manager cannot both take the last
    place of their capacity.
    """
    staff = session.scalars(select(Staff).where(Staff.id == staff_id).with_for_update()).first()
    if staff is None:
        raise ValidationFailed(
            f"no staff {staff_id}", errors=[{"field": "staff_id", "reason": "no such staff"}]
        )
    if may_take is not None and not may_take(staff):
        raise Forbidden(f"you may not give customers to staff of {staff.org_unit}")
    problems: list[str] = []
    if staff.status != "active":
        problems.append(f"staff {staff_id} is {staff.status}")
    if not access.BOOK_ROLES.intersection(staff.roles):
        problems.append(f"staff {staff_id} has no role that holds customers")
    if staff.capacity is not None:
        held = book_sizes(session, [staff.id]).get(staff.id, 0)
        if held >= staff.capacity:
            problems.append(f"staff {staff_id} holds {held} customers, the capacity")
    handover = handovers.frozen_book(session, staff.id)
    if handover is not None:
        problems.append(f"the book of staff {staff_id} is frozen for handover {handover}")
    if problems:
        raise ValidationFailed(
            "; ".join(problems), errors=[{"field": "staff_id", "reason": p} for p in problems]
        )
    return staff


def assign(
    session: Session, recorder: EventRecorder, body: AssignmentIn, caller: Caller
) -> tuple[Ownership | None, Ownership | None]:
    """Assign, transfer or release as ``caller`` (administrators, and the heads of the
    customer's and the new owner's subtree); returns (the open span after, the one ended)."""
    unit = customer_unit(session, body.customer_id)
    if unit is None:
        raise NotFound(f"no customer {body.customer_id} (not known here yet)")
    if not access.may_manage(caller, unit):
        raise Forbidden(f"you may not assign customers of {unit}")
    return change_owner(
        session,
        recorder,
        body,
        caller.subject,
        may_take=lambda staff: access.may_manage(caller, staff.org_unit),
    )


def change_owner(
    session: Session,
    recorder: EventRecorder,
    body: AssignmentIn,
    actor: str,
    *,
    may_take: Callable[[Staff], bool] | None = None,
    within_handover: bool = False,
) -> tuple[Ownership | None, Ownership | None]:
    """Assign, transfer or release, the caller's rights already checked; commits.

    Returns (the open span after, the one ended). What the body expects must hold (no owner, or
    ``from_staff_id`` the owner), else 409. A frozen book (handover) is only changed by its
    handover (``within_handover``).
    """
    _check_body(body)
    if customer_unit(session, body.customer_id) is None:
        raise NotFound(f"no customer {body.customer_id} (not known here yet)")
    now = utcnow()
    current = current_owner(session, body.customer_id, lock=True)
    if body.mode is AssignmentMode.assign:
        if current is not None:
            raise Conflict(
                f"customer {body.customer_id} is owned by {current.staff_id}; transfer it",
                current_owner=current.staff_id,
            )
        staff = eligible_staff(session, _given(body.staff_id), may_take)
        new = _open(session, body, staff, actor, now)
        recorder.record(
            session,
            events.OWNERSHIP_ASSIGNED,
            {
                "customer_id": body.customer_id,
                "staff_id": staff.id,
                "role": "owner",
                "org_unit": staff.org_unit,
                "effective_at": now.isoformat(),
                "reason": body.reason.value,
            },
            key=body.customer_id,
            actor=actor,
        )
        _commit(session, body.customer_id)
        return new, None
    if current is None or current.staff_id != body.from_staff_id:
        held = current.staff_id if current is not None else None
        raise Conflict(
            f"customer {body.customer_id} is owned by {held or 'nobody'}, "
            f"not {body.from_staff_id}; read the owner again",
            current_owner=held,
        )
    if not within_handover:
        handover = handovers.frozen_book(session, current.staff_id)
        if handover is not None:
            raise Conflict(
                f"the book of {current.staff_id} is frozen for handover {handover}",
                handover=handover,
            )
    _close(current, actor, now, body.reason.value)
    if body.mode is AssignmentMode.release:
        recorder.record(
            session,
            events.OWNERSHIP_RELEASED,
            {
                "customer_id": body.customer_id,
                "staff_id": current.staff_id,
                "role": "owner",
                "effective_at": now.isoformat(),
            },
            key=body.customer_id,
            actor=actor,
        )
        _commit(session, body.customer_id)
        return None, current
    staff = eligible_staff(session, _given(body.staff_id), may_take)
    session.flush()  # the span ends before the next opens: one open span at any instant
    new = _open(session, body, staff, actor, now)
    recorder.record(
        session,
        events.OWNERSHIP_TRANSFERRED,
        {
            "customer_id": body.customer_id,
            "from_staff_id": current.staff_id,
            "to_staff_id": staff.id,
            "org_unit": staff.org_unit,
            "effective_at": now.isoformat(),
            "reason": body.reason.value,
        },
        key=body.customer_id,
        actor=actor,
    )
    _commit(session, body.customer_id)
    return new, current


def _check_body(body: AssignmentIn) -> None:
    errors: list[dict[str, str]] = []
    if body.mode is not AssignmentMode.release and not body.staff_id:
        errors.append({"field": "staff_id", "reason": f"required to {body.mode.value}"})
    if body.mode is not AssignmentMode.assign and not body.from_staff_id:
        errors.append({"field": "from_staff_id", "reason": f"name the owner to {body.mode.value}"})
    if body.mode is AssignmentMode.transfer and body.staff_id == body.from_staff_id:
        errors.append({"field": "staff_id", "reason": "already the owner"})
    if errors:
        raise ValidationFailed("The assignment is not complete.", errors=errors)


def _given(value: str | None) -> str:
    assert value is not None  # checked by _check_body
    return value


def _open(
    session: Session, body: AssignmentIn, staff: Staff, actor: str, now: datetime
) -> Ownership:
    new = Ownership(
        customer_id=body.customer_id,
        staff_id=staff.id,
        org_unit=staff.org_unit,
        reason=body.reason.value,
        note=body.note,
        started_at=now,
        started_by=actor,
    )
    session.add(new)
    return new


def _close(span: Ownership, actor: str, now: datetime, reason: str) -> None:
    span.ended_at = now
    span.ended_by = actor
    span.end_reason = reason


def _commit(session: Session, customer_id: str) -> None:
    """Commit; the database's one-open-span rule turns a lost race into a 409."""
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(
            f"customer {customer_id} was assigned concurrently; read the owner again"
        ) from exc


def book(
    session: Session, staff_id: str, limit: int, offset: int
) -> tuple[list[tuple[Ownership, Any]], int]:
    """The customers ``staff_id`` owns now, with what this service knows of them."""
    base = select(Ownership, customer_refs).outerjoin(
        customer_refs, customer_refs.c.customer_id == Ownership.customer_id
    )
    base = base.where(Ownership.staff_id == staff_id, Ownership.ended_at.is_(None))
    total = session.execute(
        select(func.count())
        .select_from(Ownership)
        .where(Ownership.staff_id == staff_id, Ownership.ended_at.is_(None))
    ).scalar_one()
    rows = session.execute(
        base.order_by(Ownership.started_at, Ownership.id).limit(limit).offset(offset)
    ).all()
    return [(row[0], row) for row in rows], int(total)
