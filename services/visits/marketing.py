"""Marketing events 营销活动: salons 沙龙, customer gatherings 联谊会 and high-end activities.

A head or front-line staff member of a unit organises an event (name, kind, date, place,
budget). Staff invite the customers they own or serve — heads those of their subtree — each
invitation published as ``marketing_event.invited`` for the notify service to send (an SMS, or
a reminder to the owner to call, write or invite in person). At the event its attendance is
recorded (attending is a contact with the customer: channel ``event``), then the leads and
sales that follow from the attendees; the event's counts give its attendance and conversion.

Readers: front-line staff and heads of the event's unit, of the units below it and of the units
above it (a branch's event is open to its outlets), auditors and administrators.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.db import count_rows, in_subtree, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.outbox import recorder_of
from services.visits import events, followups
from services.visits.access import FRONT_LINE, HEADS, ROLE_AUDITOR, may_manage, may_record
from services.visits.models import customer_refs, owner_refs
from services.visits.models_marketing import MarketingEvent, MarketingInvitee, MarketingOutcome
from services.visits.schemas_marketing import (
    AttendanceIn,
    EventCounts,
    InviteeOut,
    InviteesIn,
    InviteResult,
    MarketingEventDetail,
    MarketingEventIn,
    MarketingEventOut,
    OutcomeIn,
    OutcomeKind,
    OutcomeOut,
)

EVENTS_PATH = "/api/v1/marketing-events"
STAFF = HEADS | FRONT_LINE
_INACTIVE = frozenset({"closed", "merged"})
_RATE_PLACES = Decimal("0.0001")
_ZERO = Decimal("0.00")


# -- access -------------------------------------------------------------------------------------
def _ancestors(unit: str) -> list[str]:
    """The unit and the units above it: ``/HQ/U01/B01`` → itself, ``/HQ/U01``, ``/HQ``."""
    parts = unit.rstrip("/").split("/")
    return ["/".join(parts[:n]) for n in range(len(parts), 1, -1)]


def may_organise(caller: Caller, org_unit: str) -> bool:
    """Heads and front-line staff organise events of their unit or the units below it."""
    return caller.has_role(ROLE_ADMIN) or (caller.has_role(*STAFF) and caller.within(org_unit))


def _reads_all(caller: Caller) -> bool:
    return caller.has_role(ROLE_ADMIN, ROLE_AUDITOR)


def _check_reader(caller: Caller) -> None:
    if not (_reads_all(caller) or caller.has_role(*STAFF)):
        raise Forbidden(
            "marketing events are read by front-line staff, heads, auditors and administrators"
        )


def _scope(caller: Caller) -> ColumnElement[bool] | None:
    """Events of the caller's subtree and of the units above it (None: all)."""
    if _reads_all(caller):
        return None
    return or_(
        in_subtree(MarketingEvent.org_unit, caller.org_unit),
        MarketingEvent.org_unit.in_(_ancestors(caller.org_unit)),
    )


def _visible(caller: Caller, event: MarketingEvent) -> bool:
    if _reads_all(caller):
        return True
    return caller.has_role(*STAFF) and (
        caller.within(event.org_unit) or event.org_unit in _ancestors(caller.org_unit)
    )


def _may_handle(session: Session, caller: Caller, event: MarketingEvent, customer_id: str) -> bool:
    """Attendance and outcomes: the organiser, heads of the event's unit, or whoever records
    for the customer (its owner, its team, heads of its subtree)."""
    if caller.subject == event.created_by or may_manage(caller, event.org_unit):
        return True
    unit = session.execute(
        select(customer_refs.c.org_unit).where(customer_refs.c.customer_id == customer_id)
    ).scalar_one_or_none()
    return unit is not None and may_record(session, caller, customer_id, unit)


def load_event(
    session: Session, event_id: str, caller: Caller, *, lock: bool = False
) -> MarketingEvent:
    """The event, if the caller reads it (404 otherwise); ``lock``: for its invitations."""
    _check_reader(caller)
    query = select(MarketingEvent).where(MarketingEvent.id == event_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    event = session.scalars(query).one_or_none()
    if event is None or not _visible(caller, event):
        raise NotFound(f"no marketing event {event_id}")
    return event


# -- events -------------------------------------------------------------------------------------
def create_event(session: Session, body: MarketingEventIn, caller: Caller) -> MarketingEvent:
    """An event of ``body.org_unit`` (the caller's unit by default)."""
    unit = (body.org_unit or caller.org_unit).rstrip("/") or "/"
    if not may_organise(caller, unit):
        raise Forbidden(
            f"events of {unit} are organised by its heads and front-line staff (or those of "
            "a unit above it)"
        )
    event = MarketingEvent(
        id=str(uuid.uuid4()),
        name=body.name,
        kind=body.kind.value,
        held_on=body.held_on,
        place=body.place,
        org_unit=unit,
        budget=body.budget,
        description=body.description,
        created_at=utcnow(),
        created_by=caller.subject,
    )
    session.add(event)
    session.commit()
    return event


def list_events(
    session: Session,
    caller: Caller,
    *,
    org_unit: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[MarketingEvent], int]:
    """The events the caller reads, latest first, within ``org_unit`` and the dates given."""
    _check_reader(caller)
    query = select(MarketingEvent)
    scope = _scope(caller)
    if scope is not None:
        query = query.where(scope)
    if org_unit:
        query = query.where(in_subtree(MarketingEvent.org_unit, org_unit))
    if date_from is not None:
        query = query.where(MarketingEvent.held_on >= date_from)
    if date_to is not None:
        query = query.where(MarketingEvent.held_on <= date_to)
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(MarketingEvent.held_on.desc(), MarketingEvent.id).limit(limit).offset(offset)
    )
    return list(rows), int(total)


# -- invitations --------------------------------------------------------------------------------
def _customers(session: Session, customer_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Unit and status of each customer known here."""
    rows = session.execute(
        select(customer_refs.c.customer_id, customer_refs.c.org_unit, customer_refs.c.status).where(
            customer_refs.c.customer_id.in_(customer_ids)
        )
    )
    return {str(r.customer_id): (str(r.org_unit), str(r.status)) for r in rows}


def _owners(session: Session, customer_ids: Sequence[str]) -> dict[str, str]:
    rows = session.execute(
        select(owner_refs.c.customer_id, owner_refs.c.staff_id).where(
            owner_refs.c.customer_id.in_(customer_ids), owner_refs.c.role == "owner"
        )
    )
    return {str(r.customer_id): str(r.staff_id) for r in rows}


def _check_invitable(
    session: Session, caller: Caller, customer_ids: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Every customer known here and active, and one the caller records for (422 naming the
    unknown or closed ones, 403 naming those of others)."""
    known = _customers(session, customer_ids)
    errors = [
        {"field": f"customer_ids.{n}", "reason": "unknown customer"}
        for n, cid in enumerate(customer_ids)
        if cid not in known
    ] + [
        {"field": f"customer_ids.{n}", "reason": f"the customer is {known[cid][1]}"}
        for n, cid in enumerate(customer_ids)
        if cid in known and known[cid][1] in _INACTIVE
    ]
    if errors:
        raise ValidationFailed("Some customers cannot be invited.", errors=errors)
    refused = [cid for cid in customer_ids if not may_record(session, caller, cid, known[cid][0])]
    if refused:
        raise Forbidden(
            "you invite the customers you own or serve (heads: those of their subtree); not "
            + ", ".join(refused),
            customer_ids=refused,
        )
    return known


def invite(session: Session, event_id: str, body: InviteesIn, caller: Caller) -> InviteResult:
    """Invite customers to the event: one ``marketing_event.invited`` per customer not invited
    before (an invitation is sent once; those invited already are listed, not sent again).
    Invitations to one event are made one request at a time (the event row is locked), so a
    customer invited by two staff at once is sent one invitation."""
    event = load_event(session, event_id, caller, lock=True)
    wanted = list(dict.fromkeys(body.customer_ids))
    _check_invitable(session, caller, wanted)
    invited_before = set(
        session.scalars(
            select(MarketingInvitee.customer_id).where(
                MarketingInvitee.event_id == event.id, MarketingInvitee.customer_id.in_(wanted)
            )
        )
    )
    fresh = [cid for cid in wanted if cid not in invited_before]
    owners = _owners(session, fresh)
    now = utcnow()
    recorder = recorder_of(session)
    for customer_id in fresh:
        session.add(
            MarketingInvitee(
                event_id=event.id,
                customer_id=customer_id,
                owner_id=owners.get(customer_id),
                channel=body.channel.value,
                invited_at=now,
                invited_by=caller.subject,
            )
        )
        recorder.record(
            session,
            events.MARKETING_EVENT_INVITED,
            {
                "marketing_event_id": event.id,
                "customer_id": customer_id,
                "owner_id": owners.get(customer_id),
                "org_unit": event.org_unit,
                "event_name": event.name,
                "event_kind": event.kind,
                "held_on": event.held_on.isoformat(),
                "place": event.place,
                "channel": body.channel.value,
                "invited_by": caller.subject,
                "invited_at": now.isoformat(),
            },
            key=customer_id,
            actor=caller.subject,
        )
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("a customer was invited concurrently; send the invitation again") from exc
    return InviteResult(
        event_id=event.id, invited=fresh, already_invited=[c for c in wanted if c in invited_before]
    )


def _invitee(session: Session, event: MarketingEvent, customer_id: str) -> MarketingInvitee:
    invitee = session.scalars(
        select(MarketingInvitee)
        .where(MarketingInvitee.event_id == event.id, MarketingInvitee.customer_id == customer_id)
        .with_for_update()
    ).one_or_none()
    if invitee is None:
        raise ValidationFailed(
            f"customer {customer_id} was not invited to this event",
            errors=[{"field": "customer_id", "reason": "not invited"}],
        )
    return invitee


def _check_handler(session: Session, caller: Caller, event: MarketingEvent, cid: str) -> None:
    if not _may_handle(session, caller, event, cid):
        raise Forbidden(
            "attendance and outcomes are recorded by the organiser, heads of the event's unit "
            "and the staff who own or serve the customer"
        )


def record_attendance(
    session: Session,
    event_id: str,
    body: AttendanceIn,
    caller: Caller,
    now: datetime | None = None,
) -> MarketingInvitee:
    """Whether an invitee came (correctable). Coming is a contact with the customer."""
    event = load_event(session, event_id, caller)
    _check_handler(session, caller, event, body.customer_id)
    invitee = _invitee(session, event, body.customer_id)
    at = now or utcnow()
    came_now = body.attended and invitee.attended is not True
    invitee.attended = body.attended
    invitee.attendance_at = at
    invitee.attendance_by = caller.subject
    if came_now:
        followups.contact_made(session, body.customer_id, at, "event")
    session.commit()
    return invitee


def record_outcome(
    session: Session, event_id: str, body: OutcomeIn, caller: Caller
) -> MarketingOutcome:
    """A lead or a sale that followed the event, for an invitee who attended it."""
    event = load_event(session, event_id, caller)
    _check_handler(session, caller, event, body.customer_id)
    invitee = _invitee(session, event, body.customer_id)
    if invitee.attended is not True:
        raise Conflict(
            f"customer {body.customer_id} is not recorded as attending: record the attendance first"
        )
    outcome = MarketingOutcome(
        event_id=event.id,
        customer_id=body.customer_id,
        kind=body.kind.value,
        product=body.product,
        amount=body.amount,
        note=body.note,
        recorded_at=utcnow(),
        recorded_by=caller.subject,
    )
    session.add(outcome)
    session.commit()
    return outcome


# -- reading ------------------------------------------------------------------------------------
def _rate(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(_RATE_PLACES) if whole else None


def counts(
    invitees: Sequence[MarketingInvitee], outcomes: Sequence[MarketingOutcome]
) -> EventCounts:
    """Attendance over invitations, and leads and sales over attendance (distinct customers)."""
    attended = sum(1 for i in invitees if i.attended is True)
    absent = sum(1 for i in invitees if i.attended is False)
    sales = [o for o in outcomes if o.kind == OutcomeKind.sale.value]
    with_lead = {o.customer_id for o in outcomes}
    with_sale = {o.customer_id for o in sales}
    return EventCounts(
        invited=len(invitees),
        attended=attended,
        absent=absent,
        attendance_unknown=len(invitees) - attended - absent,
        leads=len(outcomes) - len(sales),
        sales=len(sales),
        sales_amount=sum((o.amount or _ZERO for o in sales), _ZERO),
        customers_with_lead=len(with_lead),
        customers_with_sale=len(with_sale),
        attendance_rate=_rate(attended, len(invitees)),
        lead_rate=_rate(len(with_lead), attended),
        conversion_rate=_rate(len(with_sale), attended),
    )


def detail(session: Session, event: MarketingEvent) -> MarketingEventDetail:
    """The event with its invitees (name, owner, attendance), outcomes and counts."""
    invitees = list(
        session.scalars(
            select(MarketingInvitee)
            .where(MarketingInvitee.event_id == event.id)
            .order_by(MarketingInvitee.id)
        )
    )
    outcomes = list(
        session.scalars(
            select(MarketingOutcome)
            .where(MarketingOutcome.event_id == event.id)
            .order_by(MarketingOutcome.id)
        )
    )
    ids = [i.customer_id for i in invitees]
    names = dict(
        session.execute(
            select(customer_refs.c.customer_id, customer_refs.c.name).where(
                customer_refs.c.customer_id.in_(ids)
            )
        ).all()
        if ids
        else []
    )
    return MarketingEventDetail(
        **MarketingEventOut.model_validate(event).model_dump(),
        invitees=[
            InviteeOut(
                customer_id=i.customer_id,
                name=str(names.get(i.customer_id, "")),
                owner_id=i.owner_id,
                channel=i.channel,
                invited_at=i.invited_at,
                invited_by=i.invited_by,
                attended=i.attended,
                attendance_at=i.attendance_at,
                attendance_by=i.attendance_by,
            )
            for i in invitees
        ],
        outcomes=[OutcomeOut.model_validate(o) for o in outcomes],
        counts=counts(invitees, outcomes),
    )
