"""Handovers of a leaving manager's book 离岗交接: frozen, audited customer by customer (稽核),
reassigned by a plan and approved; and the auditors' spot-checks of books.

Starting a handover snapshots the staff member's book and freezes it: ``service.change_owner``
asks :func:`frozen_book` and refuses moves out of it and into it, except the handover's own.
Approval moves each customer with ``change_owner`` (which commits per customer), so an approval
stopped half-way is resumed by approving again: customers already moved are skipped. Approvals
of one handover run one at a time (its row stays locked for the whole approval).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.db import count_rows, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.outbox import EventRecorder
from services.assignment import access, events, service
from services.assignment.models import CustomerProfile, Ownership, Staff
from services.assignment.models_handovers import (
    Handover,
    HandoverCustomer,
    SpotCheck,
    SpotCheckCustomer,
)
from services.assignment.schemas import AssignmentIn, AssignmentMode, OwnershipReason
from services.assignment.schemas_handovers import (
    ApproveIn,
    AuditIn,
    Finding,
    HandoverIn,
    SpotCheckIn,
    SpotCheckMode,
)

HANDOVERS_PATH = "/api/v1/handovers"
OPEN, COMPLETED = "open", "completed"


def frozen_book(session: Session, staff_id: str) -> str | None:
    """The id of the open handover that froze ``staff_id``'s book, or None."""
    found: str | None = session.scalars(
        select(Handover.id).where(Handover.staff_id == staff_id, Handover.status == OPEN)
    ).first()
    return found


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or path


def _within(path: str, scope: str) -> bool:
    scope = scope.rstrip("/")
    return path == scope or path.startswith(scope + "/")


def _book_ids(session: Session, staff_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Ownership.customer_id)
            .where(Ownership.staff_id == staff_id, Ownership.ended_at.is_(None))
            .order_by(Ownership.started_at, Ownership.id)
        ).all()
    )


def customers_of(session: Session, handover_id: str) -> list[HandoverCustomer]:
    return list(
        session.scalars(
            select(HandoverCustomer)
            .where(HandoverCustomer.handover_id == handover_id)
            .order_by(HandoverCustomer.customer_id)
        ).all()
    )


# -- starting and reading -----------------------------------------------------------------------
def start(session: Session, recorder: EventRecorder, body: HandoverIn, caller: Caller) -> Handover:
    """Snapshot the staff member's book and freeze it (admins, heads of their subtree)."""
    staff = session.get(Staff, body.staff_id)
    if staff is None or not access.may_read(caller, staff.org_unit):
        raise NotFound(f"no staff {body.staff_id}")
    if not access.may_manage(caller, staff.org_unit):
        raise Forbidden(f"you may not start handovers of staff of {staff.org_unit}")
    existing = frozen_book(session, staff.id)
    if existing is not None:
        raise Conflict(
            f"staff {staff.id} has an open handover {existing}",
            existing=f"{HANDOVERS_PATH}/{existing}",
        )
    now = utcnow()
    handover = Handover(
        id=str(uuid.uuid4()),
        staff_id=staff.id,
        org_unit=staff.org_unit,
        scope=caller.org_unit,
        cause=body.cause.value,
        note=body.note,
        status=OPEN,
        started_at=now,
        started_by=caller.subject,
    )
    session.add(handover)
    if body.cause.value == "departure" and staff.status == "active":
        staff.status = "leaving"
        staff.updated_at = now
    session.flush()
    _sync_customers(session, handover)
    _plan(session, handover)
    recorder.record(
        session,
        events.HANDOVER_STARTED,
        {
            "handover_id": handover.id,
            "staff_id": staff.id,
            "org_unit": staff.org_unit,
            "cause": handover.cause,
            "customer_count": len(customers_of(session, handover.id)),
            "started_at": now.isoformat(),
        },
        key=staff.id,
        actor=caller.subject,
    )
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent start won the one-open-handover index
        session.rollback()
        raise Conflict(f"staff {body.staff_id} has an open handover") from exc
    return handover


def _sync_customers(session: Session, handover: Handover) -> None:
    """Add the customers of the book the snapshot lacks (they must be audited too)."""
    known = {c.customer_id for c in customers_of(session, handover.id)}
    for customer_id in _book_ids(session, handover.staff_id):
        if customer_id not in known:
            session.add(HandoverCustomer(handover_id=handover.id, customer_id=customer_id))
    session.flush()


def load(session: Session, handover_id: str, caller: Caller, *, lock: bool = False) -> Handover:
    """A handover the caller may read (its subtree, or their own)."""
    query = select(Handover).where(Handover.id == handover_id)
    if lock:  # NO KEY UPDATE: the handover's customers (a foreign key to it) may be written
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    handover = session.scalars(query).first()
    if handover is None or not (
        handover.staff_id == caller.subject or access.may_read(caller, handover.org_unit)
    ):
        raise NotFound(f"no handover {handover_id}")
    return handover


def list_handovers(
    session: Session,
    caller: Caller,
    status: str | None,
    staff_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Handover], int]:
    query = select(Handover)
    scope = access.readable_rows(caller, Handover.org_unit, Handover.staff_id == caller.subject)
    if scope is not None:
        query = query.where(scope)
    if status:
        query = query.where(Handover.status == status)
    if staff_id:
        query = query.where(Handover.staff_id == staff_id)
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(Handover.started_at.desc(), Handover.id).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


# -- audits -------------------------------------------------------------------------------------
def _check_auditor(caller: Caller, org_unit: str) -> None:
    if not (caller.has_role(access.ROLE_AUDITOR) and caller.within(org_unit)):
        raise Forbidden(f"only auditors of {org_unit} record findings and draw spot-checks")


def audit(session: Session, handover_id: str, body: AuditIn, caller: Caller) -> HandoverCustomer:
    """Record the finding for one customer; a later finding replaces the earlier one."""
    handover = load(session, handover_id, caller)
    _check_auditor(caller, handover.org_unit)
    if handover.status != OPEN:
        raise Conflict(f"handover {handover.id} is {handover.status}")
    if body.finding is Finding.issue and not (body.remedy and body.remedy.strip()):
        raise ValidationFailed(
            "an issue needs its remedy", errors=[{"field": "remedy", "reason": "required"}]
        )
    row = session.get(HandoverCustomer, (handover.id, body.customer_id))
    if row is None:
        raise ValidationFailed(
            f"customer {body.customer_id} is not in handover {handover.id}",
            errors=[{"field": "customer_id", "reason": "not in the handed-over book"}],
        )
    row.finding = body.finding.value
    row.remedy = body.remedy
    row.audited_by = caller.subject
    row.audited_at = utcnow()
    session.commit()
    return row


# -- the plan -----------------------------------------------------------------------------------
@dataclass
class _Candidate:
    staff: Staff
    tier: int  # 0 same unit as the leaver, 1 same parent unit, 2 elsewhere in the scope
    room: float  # capacity minus book minus planned; infinite without a capacity
    segments: Counter[str | None]


_BASIS = ("same_unit", "same_parent", "subtree")


def _candidates(session: Session, handover: Handover) -> list[_Candidate]:
    frozen = set(session.scalars(select(Handover.staff_id).where(Handover.status == OPEN)).all())
    staff = [
        s
        for s in session.scalars(select(Staff).where(Staff.status == "active")).all()
        if s.id not in frozen
        and s.id != handover.staff_id
        and access.BOOK_ROLES.intersection(s.roles)
        and _within(s.org_unit, handover.scope)
    ]
    sizes = service.book_sizes(session, [s.id for s in staff])
    segments: dict[str, Counter[str | None]] = {s.id: Counter() for s in staff}
    if staff:
        rows = session.execute(
            select(Ownership.staff_id, CustomerProfile.market_segment, func.count())
            .outerjoin(CustomerProfile, CustomerProfile.customer_id == Ownership.customer_id)
            .where(Ownership.staff_id.in_(list(segments)), Ownership.ended_at.is_(None))
            .group_by(Ownership.staff_id, CustomerProfile.market_segment)
        ).all()
        for staff_id, segment, count in rows:
            segments[staff_id][segment] = int(count)
    parent = _parent(handover.org_unit)
    out = []
    for s in staff:
        tier = 0 if s.org_unit == handover.org_unit else 1 if _within(s.org_unit, parent) else 2
        room = float("inf") if s.capacity is None else s.capacity - sizes.get(s.id, 0)
        out.append(_Candidate(s, tier, room, segments[s.id]))
    return out


def _segments(session: Session, customer_ids: Iterable[str]) -> dict[str, str | None]:
    ids = list(customer_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(CustomerProfile.customer_id, CustomerProfile.market_segment).where(
            CustomerProfile.customer_id.in_(ids)
        )
    ).all()
    return {customer_id: segment for customer_id, segment in rows}


def _plan(session: Session, handover: Handover) -> None:
    """Plan a receiver for every customer not moved yet: the nearest staff (same unit, then same
    parent unit, then the scope) with the most room, then the most customers of the customer's
    market segment, then by id. Nobody is planned above capacity; a customer without a receiver
    stays unplanned."""
    pending = [c for c in customers_of(session, handover.id) if c.moved_to is None]
    candidates = _candidates(session, handover)
    segment_of = _segments(session, [c.customer_id for c in pending])
    for row in pending:
        segment = segment_of.get(row.customer_id)
        open_ = [c for c in candidates if c.room > 0]
        if not open_:
            row.receiver_id, row.plan_basis = None, None
            continue
        tier = min(c.tier for c in open_)
        best = min(
            (c for c in open_ if c.tier == tier),
            key=lambda c: (
                -c.room,
                -(c.segments[segment] if segment is not None else 0),
                c.staff.id,
            ),
        )
        best.room -= 1
        best.segments[segment] += 1
        row.receiver_id, row.plan_basis = best.staff.id, _BASIS[tier]
    session.flush()


def replan(session: Session, handover_id: str, caller: Caller) -> Handover:
    handover = load(session, handover_id, caller, lock=True)
    _check_manager(caller, handover)
    _sync_customers(session, handover)
    _plan(session, handover)
    session.commit()
    return handover


def _check_manager(caller: Caller, handover: Handover) -> None:
    if not access.may_manage(caller, handover.org_unit):
        raise Forbidden(f"you may not decide handovers of {handover.org_unit}")
    if handover.status != OPEN:
        raise Conflict(f"handover {handover.id} is {handover.status}")


def blockers(rows: Iterable[HandoverCustomer], gone: set[str]) -> dict[str, list[str]]:
    """The customers still to move that are unaudited, have an issue, or have no receiver
    (``gone``: customers that left the book otherwise, e.g. erased)."""
    out: dict[str, list[str]] = {"unaudited": [], "issues": [], "unplanned": []}
    for row in rows:
        if row.moved_to is not None or row.customer_id in gone:
            continue
        if row.finding is None:
            out["unaudited"].append(row.customer_id)
        elif row.finding != Finding.clear.value:
            out["issues"].append(row.customer_id)
        if row.receiver_id is None:
            out["unplanned"].append(row.customer_id)
    return out


def gone_from_book(
    session: Session, handover: Handover, rows: Iterable[HandoverCustomer]
) -> set[str]:
    """Customers not moved by the handover that the leaver no longer owns."""
    pending = [r.customer_id for r in rows if r.moved_to is None]
    owned = (
        set(
            session.scalars(
                select(Ownership.customer_id).where(
                    Ownership.customer_id.in_(pending),
                    Ownership.staff_id == handover.staff_id,
                    Ownership.ended_at.is_(None),
                )
            ).all()
        )
        if pending
        else set()
    )
    return set(pending) - owned


# -- approval -----------------------------------------------------------------------------------
def approve(
    session: Session,
    recorder: EventRecorder,
    handover_id: str,
    body: ApproveIn,
    caller: Caller,
) -> Handover:
    """Move every customer to its receiver once all are audited clear; then release the
    manager. Resumable: customers already moved are skipped.

    One approval at a time: ``session`` holds the handover's row locked from the first read to
    the completion, while the customers are moved, one commit each, in a second session on the
    same database (the lock is ``FOR NO KEY UPDATE``, so those commits may still write the
    handover's customers). A concurrent approval waits for the lock, then finds the handover
    completed (409) or, when this one stopped half-way, resumes it.
    """
    handover = load(session, handover_id, caller, lock=True)
    _check_manager(caller, handover)
    with _beside(session) as work:
        count = _move_book(work, recorder, handover, body, caller)
    return _complete(session, recorder, handover, caller, count)


@contextmanager
def _beside(session: Session) -> Iterator[Session]:
    """A second session on ``session``'s database, with its settings and event recorder."""
    with Session(bind=session.get_bind(), expire_on_commit=False, info=dict(session.info)) as other:
        yield other


def _move_book(
    session: Session, recorder: EventRecorder, handover: Handover, body: ApproveIn, caller: Caller
) -> int:
    """Check the blockers, keep the overrides, then transfer each customer not moved yet (one
    commit each); returns how many customers the handover holds."""
    _sync_customers(session, handover)
    rows = {r.customer_id: r for r in customers_of(session, handover.id)}
    unknown = sorted(set(body.overrides) - set(rows))
    if unknown:
        raise ValidationFailed(
            "overrides name customers not in the handover",
            errors=[{"field": f"overrides.{c}", "reason": "not in the handover"} for c in unknown],
        )
    for customer_id, staff_id in body.overrides.items():
        if staff_id == handover.staff_id:
            raise ValidationFailed(
                "a customer cannot stay with the leaver",
                errors=[{"field": f"overrides.{customer_id}", "reason": "the leaver"}],
            )
        rows[customer_id].receiver_id, rows[customer_id].plan_basis = staff_id, "override"
    gone = gone_from_book(session, handover, rows.values())
    blocked = blockers(rows.values(), gone)
    if any(blocked.values()):
        raise Conflict(
            f"handover {handover.id} cannot be approved: every customer needs a clear finding "
            "and a receiver",
            unaudited=blocked["unaudited"],
            issues=blocked["issues"],
            unplanned=blocked["unplanned"],
        )
    session.commit()  # the overrides are kept even if a move fails below
    for row in sorted(rows.values(), key=lambda r: r.customer_id):
        if row.moved_to is not None or row.customer_id in gone:
            continue
        assert row.receiver_id is not None  # no blockers
        row.moved_to, row.moved_at = row.receiver_id, utcnow()
        service.change_owner(  # commits this customer's move with its row
            session,
            recorder,
            AssignmentIn(
                customer_id=row.customer_id,
                mode=AssignmentMode.transfer,
                staff_id=row.receiver_id,
                from_staff_id=handover.staff_id,
                reason=OwnershipReason.handover,
                note=f"handover {handover.id}",
            ),
            caller.subject,
            may_take=lambda staff: access.may_manage(caller, staff.org_unit),
            within_handover=True,
        )
    return len(rows)


def _complete(
    session: Session, recorder: EventRecorder, handover: Handover, caller: Caller, count: int
) -> Handover:
    """Complete the handover locked in ``session``: the book is empty, the manager released."""
    if handover.status != OPEN:
        raise Conflict(f"handover {handover.id} is {handover.status}")
    if _book_ids(session, handover.staff_id):
        raise Conflict(
            f"the book of {handover.staff_id} changed during the approval; approve again"
        )
    now = utcnow()
    staff = session.get(Staff, handover.staff_id)
    assert staff is not None
    if handover.cause == "departure":
        staff.status = "left"
        staff.updated_at = now
    handover.status, handover.completed_at, handover.completed_by = COMPLETED, now, caller.subject
    recorder.record(
        session,
        events.HANDOVER_COMPLETED,
        {
            "handover_id": handover.id,
            "staff_id": staff.id,
            "org_unit": handover.org_unit,
            "cause": handover.cause,
            "customer_count": count,
            "staff_status": staff.status,
            "completed_at": now.isoformat(),
        },
        key=staff.id,
        actor=caller.subject,
    )
    session.commit()
    return handover


# -- spot-checks --------------------------------------------------------------------------------
def spot_check(session: Session, body: SpotCheckIn, caller: Caller) -> SpotCheck:
    """Draw ``size`` customers of the staff member's book (all of it when smaller)."""
    staff = session.get(Staff, body.staff_id)
    if staff is None or not access.may_read(caller, staff.org_unit):
        raise NotFound(f"no staff {body.staff_id}")
    _check_auditor(caller, staff.org_unit)
    book = sorted(_book_ids(session, staff.id))
    size = min(body.size, len(book))
    if body.mode is SpotCheckMode.random:
        drawn = random.Random(body.seed).sample(book, size)
    else:
        last = dict(
            session.execute(
                select(SpotCheckCustomer.customer_id, func.max(SpotCheck.created_at))
                .join(SpotCheck, SpotCheck.id == SpotCheckCustomer.spot_check_id)
                .where(SpotCheckCustomer.customer_id.in_(book))
                .group_by(SpotCheckCustomer.customer_id)
            ).all()
        )
        never = [c for c in book if c not in last]
        drawn = (never + sorted((c for c in book if c in last), key=lambda c: (last[c], c)))[:size]
    check = SpotCheck(
        id=str(uuid.uuid4()),
        staff_id=staff.id,
        mode=body.mode.value,
        size=size,
        auditor=caller.subject,
        created_at=utcnow(),
    )
    session.add(check)
    session.flush()
    for position, customer_id in enumerate(drawn):
        session.add(
            SpotCheckCustomer(spot_check_id=check.id, customer_id=customer_id, position=position)
        )
    session.commit()
    return check


def load_spot_check(session: Session, check_id: str, caller: Caller) -> tuple[SpotCheck, list[str]]:
    check = session.get(SpotCheck, check_id)
    staff = session.get(Staff, check.staff_id) if check is not None else None
    if check is None or staff is None or not access.may_read(caller, staff.org_unit):
        raise NotFound(f"no spot-check {check_id}")
    drawn = session.scalars(
        select(SpotCheckCustomer.customer_id)
        .where(SpotCheckCustomer.spot_check_id == check.id)
        .order_by(SpotCheckCustomer.position)
    ).all()
    return check, list(drawn)
