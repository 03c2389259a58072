"""Visit records 客户经理拜访记录 (附件5) and what surrounds them: pre-visit plans, yearly service
plans for important high-end customers, enquiries 咨询 answered by a deadline, appointments 预约
for customers with at least 1,000,000 in financial assets, and the visit record report.

Who may do what comes from ``access``: a customer's owner or serving team, or a head of its org
unit's subtree, records for it (administrators anything); the same and auditors read. Lists are
scoped in SQL by the customer's current org unit and the copy of who serves it.

Visit records are append-only. A correction is a new record naming the one it corrects; reads show
the current version of a contact, and its earlier versions stay as its history. Each record
publishes ``visit.recorded`` in its transaction; a first record also tells the follow-up plan of
the contact (``followups.contact_made``), a correction does not count it again.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.clock import BUSINESS_TZ, business_today
from crmkit.csvout import BOM, csv_cell
from crmkit.db import count_rows, in_subtree, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, PolicyViolation, ValidationFailed
from crmkit.outbox import EventRecorder
from crmkit.policy import load_policy_file
from crmkit.replicas import owner_of
from services.visits import access, events, followups
from services.visits.models import CustomerCare, customer_refs, owner_refs
from services.visits.models_records import (
    Appointment,
    Enquiry,
    ServicePlan,
    Visit,
    VisitParticipant,
    VisitPlan,
)
from services.visits.schemas_visits import (
    SATISFACTION_SCORES,
    AppointmentIn,
    EnquiryAnswerIn,
    EnquiryIn,
    EnquiryOut,
    EnquiryStatus,
    Participant,
    Satisfaction,
    ServicePlanIn,
    ServicePlanOut,
    VisitDetail,
    VisitIn,
    VisitOut,
    VisitPlanDetail,
    VisitPlanIn,
    VisitPlanOut,
    VisitReport,
    VisitReportRow,
)

POLICY_DIR = Path(__file__).with_name("policy") / "enquiries"
# A clock a little ahead of ours does not make a visit "in the future".
CLOCK_SKEW = timedelta(minutes=5)
# Appointments 预约 are for customers with financial assets of a million or more (seed 000 l.263:
# 金融资产百万元以上的优质客户), on the latest business date known.
APPOINTMENT_RULE = "appointments.min_aum"
APPOINTMENT_MIN_AUM = Decimal("1000000.00")
# A service plan is for an important high-end customer: high-end by a tier (value tier high,
# wealth layer 1, VIP platinum or diamond) or assessed of high importance by its owner.
SERVICE_PLAN_RULE = "service_plans.important_high_end"
HIGH_END_VIP_LEVELS = frozenset({"platinum", "diamond"})
MERGED = "merged"
CSV_BATCH_ROWS = 2000

refs = customer_refs.c


# -- customers and access -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CustomerRef:
    """The service's copy of a customer: who it is and where it belongs now."""

    customer_id: str
    name: str
    org_unit: str
    status: str


def customer_ref(session: Session, customer_id: str) -> CustomerRef:
    row = session.execute(
        select(refs.customer_id, refs.name, refs.org_unit, refs.status).where(
            refs.customer_id == customer_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no customer {customer_id} is known to the visits service")
    return CustomerRef(row.customer_id, row.name, row.org_unit, row.status)


def _check_record(session: Session, caller: Caller, customer: CustomerRef, what: str) -> None:
    if customer.status == MERGED:
        raise Conflict(
            f"customer {customer.customer_id} was merged into another record: {what} for the "
            "surviving customer"
        )
    if not access.may_record(session, caller, customer.customer_id, customer.org_unit):
        raise Forbidden(
            f"{what} for customer {customer.customer_id} ({customer.org_unit}) is for its owner "
            "or serving team, a head of its org unit's subtree or an administrator; you are none"
        )


def _check_read(session: Session, caller: Caller, customer: CustomerRef) -> None:
    if not access.may_read_customer(session, caller, customer.customer_id, customer.org_unit):
        raise Forbidden(
            f"customer {customer.customer_id} ({customer.org_unit}) is neither owned nor served "
            "by you, nor in the subtree you head"
        )


def readable(caller: Caller, customer_id: Any) -> ColumnElement[bool] | None:
    """SQL for the customers the caller reads (``customer_refs`` joined): administrators and
    auditors all (None), heads their subtree's, everyone those they own or serve."""
    if caller.has_role(ROLE_ADMIN, access.ROLE_AUDITOR):
        return None
    serving = exists().where(
        owner_refs.c.customer_id == customer_id, owner_refs.c.staff_id == caller.subject
    )
    if caller.has_role(*access.HEADS):
        return or_(in_subtree(refs.org_unit, caller.org_unit), serving)
    return serving


def _serves(session: Session, customer_id: str, staff_id: str) -> bool:
    return (
        session.execute(
            select(owner_refs.c.role).where(
                owner_refs.c.customer_id == customer_id, owner_refs.c.staff_id == staff_id
            )
        ).first()
        is not None
    )


def _is_head(caller: Caller) -> bool:
    return caller.has_role(ROLE_ADMIN, *access.HEADS)


# -- time ---------------------------------------------------------------------------------------
def business_date_of(at: datetime) -> date:
    """The business date (Asia/Shanghai) of an instant."""
    return at.astimezone(BUSINESS_TZ).date()


def day_start(day: date) -> datetime:
    """The first instant of a business date, in UTC."""
    return datetime.combine(day, time.min, tzinfo=BUSINESS_TZ).astimezone(UTC)


def _period(column: Any, start: date | None, end: date | None) -> list[ColumnElement[bool]]:
    """``column`` within the business dates ``start``..``end`` (both included)."""
    where: list[ColumnElement[bool]] = []
    if start is not None:
        where.append(column >= day_start(start))
    if end is not None:
        where.append(column < day_start(end + timedelta(days=1)))
    return where


def _check_period(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise ValidationFailed(
            "the period ends before it starts",
            errors=[{"field": "to", "reason": f"{end} is before {start}"}],
        )


def _not_ahead(at: datetime, now: datetime, field: str) -> None:
    if at > now + CLOCK_SKEW:
        raise ValidationFailed(
            f"{field} is in the future: a record is made after the fact",
            errors=[{"field": field, "reason": f"{at.isoformat()} is after now"}],
        )


def _commit(session: Session, conflict: str) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(conflict) from exc


# -- visit records ------------------------------------------------------------------------------
def _current() -> ColumnElement[bool]:
    """The visit is the current version of its contact: no record corrects it."""
    newer = aliased(Visit)
    return ~exists().where(newer.corrects == Visit.id)


def visit_out(visit: Visit, customer_name: str | None) -> VisitOut:
    level = Satisfaction(visit.satisfaction) if visit.satisfaction else None
    return VisitOut(
        id=visit.id,
        customer_id=visit.customer_id,
        customer_name=customer_name,
        org_unit=visit.org_unit,
        visited_at=visit.visited_at,
        channel=visit.channel,
        visit_type=visit.visit_type,
        participants=[Participant(staff_id=p.staff_id, role=p.role) for p in visit.participants],
        purpose=visit.purpose,
        agreed=visit.agreed,
        satisfaction=level,
        satisfaction_score=SATISFACTION_SCORES[level] if level else None,
        customer_comments=visit.customer_comments,
        needs_found=visit.needs_found,
        information_given=visit.information_given,
        opportunities=list(visit.opportunities),
        product_followed_up=visit.product_followed_up,
        next_contact_on=visit.next_contact_on,
        next_contact_participants=list(visit.next_contact_participants),
        plan_id=visit.plan_id,
        corrects=visit.corrects,
        correction_reason=visit.correction_reason,
        original_id=visit.root_id,
        revision=visit.revision,
        recorded_by=visit.recorded_by,
        recorded_at=visit.recorded_at,
    )


def _corrected(session: Session, body: VisitIn) -> Visit | None:
    """The record a correction corrects: of the same customer, not corrected yet."""
    if body.corrects is None:
        return None
    old = session.get(Visit, body.corrects)
    if old is None or old.customer_id != body.customer_id:
        raise ValidationFailed(
            f"corrects names no visit record of customer {body.customer_id}",
            errors=[{"field": "corrects", "reason": f"no visit {body.corrects} of this customer"}],
        )
    newer = session.scalar(select(Visit.id).where(Visit.corrects == old.id))
    if newer is not None:
        raise Conflict(
            f"visit {old.id} was already corrected by {newer}: correct the current version",
            current_id=_current_id(session, old.root_id),
        )
    return old


def _current_id(session: Session, root_id: str) -> str:
    return str(
        session.scalar(
            select(Visit.id).where(Visit.root_id == root_id).order_by(Visit.revision.desc())
        )
    )


def _check_plan(session: Session, plan_id: str | None, customer_id: str) -> None:
    if plan_id is None:
        return
    plan = session.get(VisitPlan, plan_id)
    if plan is None or plan.customer_id != customer_id:
        raise ValidationFailed(
            f"plan_id names no pre-visit plan of customer {customer_id}",
            errors=[{"field": "plan_id", "reason": f"no plan {plan_id} of this customer"}],
        )


def record_visit(
    session: Session,
    recorder: EventRecorder,
    body: VisitIn,
    caller: Caller,
    now: datetime | None = None,
) -> VisitDetail:
    """Record a contact with a customer (or correct a record): the customer's owner, serving
    team or a head of its subtree, who took part in it unless they are a head."""
    now = now or utcnow()
    customer = customer_ref(session, body.customer_id)
    _check_record(session, caller, customer, "recording a visit")
    present = {p.staff_id for p in body.participants}
    if caller.subject not in present and not _is_head(caller):
        raise Forbidden(
            "you were not among the participants: a visit is recorded by one who took part in "
            "it, or by a head"
        )
    visited_at = body.visited_at.astimezone(UTC)
    _not_ahead(visited_at, now, "visited_at")
    if body.next_contact_on is not None and body.next_contact_on < business_date_of(visited_at):
        raise ValidationFailed(
            "the next contact is agreed for a date before the visit",
            errors=[{"field": "next_contact_on", "reason": "before the visit's date"}],
        )
    _check_plan(session, body.plan_id, customer.customer_id)
    old = _corrected(session, body)
    visit_id = str(uuid.uuid4())
    visit = Visit(
        id=visit_id,
        customer_id=customer.customer_id,
        org_unit=customer.org_unit,
        visited_at=visited_at,
        channel=body.channel.value,
        visit_type=body.visit_type.value,
        purpose=body.purpose,
        agreed=body.agreed,
        satisfaction=body.satisfaction.value if body.satisfaction else None,
        customer_comments=body.customer_comments,
        needs_found=body.needs_found,
        information_given=body.information_given,
        opportunities=list(body.opportunities),
        product_followed_up=body.product_followed_up,
        next_contact_on=body.next_contact_on,
        next_contact_participants=list(body.next_contact_participants),
        plan_id=body.plan_id,
        corrects=old.id if old else None,
        correction_reason=body.correction_reason,
        root_id=old.root_id if old else visit_id,
        revision=old.revision + 1 if old else 1,
        recorded_by=caller.subject,
        recorded_at=now,
        participants=[
            VisitParticipant(staff_id=p.staff_id, role=p.role, position=n)
            for n, p in enumerate(body.participants)
        ],
    )
    session.add(visit)
    conflict = f"visit {body.corrects} was corrected concurrently: correct the current version"
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent correction of the same record came first
        session.rollback()
        raise Conflict(conflict) from exc
    if old is None:
        # A correction is the same contact: the follow-up plan counted it when first recorded.
        followups.contact_made(session, customer.customer_id, visited_at, visit.channel)
    recorder.record(
        session,
        events.VISIT_RECORDED,
        _visit_payload(visit),
        key=customer.customer_id,
        actor=caller.subject,
    )
    _commit(session, conflict)
    return read_visit(session, caller, visit.id)


def _visit_payload(visit: Visit) -> dict[str, Any]:
    return {
        "customer_id": visit.customer_id,
        "visit_id": visit.id,
        "org_unit": visit.org_unit,
        "channel": visit.channel,
        "visit_type": visit.visit_type,
        "visited_at": visit.visited_at.isoformat(),
        "participants": [{"staff_id": p.staff_id, "role": p.role} for p in visit.participants],
        "satisfaction": visit.satisfaction,
        "opportunities": list(visit.opportunities),
        "product_followed_up": visit.product_followed_up,
        "next_contact_on": visit.next_contact_on.isoformat() if visit.next_contact_on else None,
        "next_contact_participants": list(visit.next_contact_participants),
        "plan_id": visit.plan_id,
        "corrects": visit.corrects,
        "original_id": visit.root_id,
        "revision": visit.revision,
        "recorded_by": visit.recorded_by,
    }


def read_visit(session: Session, caller: Caller, visit_id: str) -> VisitDetail:
    """The current version of the contact ``visit_id`` belongs to (any of its versions names
    it), with the earlier versions as its history."""
    visit = session.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit record {visit_id}")
    customer = customer_ref(session, visit.customer_id)
    _check_read(session, caller, customer)
    chain = list(
        session.scalars(
            select(Visit).where(Visit.root_id == visit.root_id).order_by(Visit.revision)
        )
    )
    current = visit_out(chain[-1], customer.name)
    history = [visit_out(v, customer.name) for v in chain[:-1]]
    return VisitDetail(**current.model_dump(), history=history)


def list_visits(
    session: Session,
    caller: Caller,
    *,
    customer_id: str | None = None,
    staff_id: str | None = None,
    org_unit: str | None = None,
    start: date | None = None,
    end: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[VisitOut], int]:
    """The current versions of the visits the caller reads, the latest first. ``staff_id``: the
    visits they took part in; ``org_unit``: the visits recorded in that subtree; ``start`` /
    ``end``: business dates of the visit, both included."""
    _check_period(start, end)
    query = (
        select(Visit, refs.name)
        .join(customer_refs, refs.customer_id == Visit.customer_id)
        .where(_current())
    )
    scope = readable(caller, Visit.customer_id)
    if scope is not None:
        query = query.where(scope)
    if customer_id is not None:
        query = query.where(Visit.customer_id == customer_id)
    if staff_id is not None:
        query = query.where(
            exists().where(
                VisitParticipant.visit_id == Visit.id, VisitParticipant.staff_id == staff_id
            )
        )
    if org_unit is not None:
        query = query.where(in_subtree(Visit.org_unit, org_unit))
    query = query.where(*_period(Visit.visited_at, start, end))
    total = count_rows(session, query)
    rows = session.execute(
        query.order_by(Visit.visited_at.desc(), Visit.id).limit(limit).offset(offset)
    ).all()
    return [visit_out(visit, name) for visit, name in rows], int(total)


def customer_visits(
    session: Session, caller: Caller, customer_id: str, limit: int, offset: int
) -> tuple[list[VisitOut], int]:
    """A customer's visits (current versions), the latest first."""
    customer = customer_ref(session, customer_id)
    _check_read(session, caller, customer)
    return list_visits(session, caller, customer_id=customer_id, limit=limit, offset=offset)


# -- pre-visit plans ----------------------------------------------------------------------------
def create_plan(session: Session, body: VisitPlanIn, caller: Caller) -> VisitPlanDetail:
    """Plan a visit (those who record for the customer)."""
    customer = customer_ref(session, body.customer_id)
    _check_record(session, caller, customer, "planning a visit")
    plan = VisitPlan(
        id=str(uuid.uuid4()),
        customer_id=customer.customer_id,
        org_unit=customer.org_unit,
        planned_at=body.planned_at.astimezone(UTC),
        channel=body.channel.value,
        visit_type=body.visit_type.value,
        purpose=body.purpose,
        participants=[p.model_dump() for p in body.participants],
        questions=list(body.questions),
        materials=list(body.materials),
        customer_needs=body.customer_needs,
        likely_questions=[q.model_dump() for q in body.likely_questions],
        created_by=caller.subject,
        created_at=utcnow(),
    )
    session.add(plan)
    session.commit()
    return _plan_detail(session, plan, customer.name)


def read_plan(session: Session, caller: Caller, plan_id: str) -> VisitPlanDetail:
    plan = session.get(VisitPlan, plan_id)
    if plan is None:
        raise NotFound(f"no pre-visit plan {plan_id}")
    customer = customer_ref(session, plan.customer_id)
    _check_read(session, caller, customer)
    return _plan_detail(session, plan, customer.name)


def _plan_detail(session: Session, plan: VisitPlan, customer_name: str) -> VisitPlanDetail:
    """The plan with the customer's previous visit (before the planned time, other than one
    carrying out this plan) and the visits that carried it out."""
    previous = session.scalar(
        select(Visit)
        .where(
            Visit.customer_id == plan.customer_id,
            Visit.visited_at < plan.planned_at,
            or_(Visit.plan_id.is_(None), Visit.plan_id != plan.id),
            _current(),
        )
        .order_by(Visit.visited_at.desc(), Visit.id)
        .limit(1)
    )
    carried = session.scalars(
        select(Visit.id)
        .where(Visit.plan_id == plan.id, _current())
        .order_by(Visit.visited_at, Visit.id)
    )
    return VisitPlanDetail(
        **VisitPlanOut.model_validate(plan).model_dump(),
        previous_visit=visit_out(previous, customer_name) if previous is not None else None,
        carried_out_by=list(carried),
    )


def list_plans(
    session: Session,
    caller: Caller,
    *,
    customer_id: str | None = None,
    planned_by: str | None = None,
    start: date | None = None,
    end: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[VisitPlanOut], int]:
    """The pre-visit plans the caller reads, by planned time (the earliest first)."""
    _check_period(start, end)
    query = select(VisitPlan).join(customer_refs, refs.customer_id == VisitPlan.customer_id)
    scope = readable(caller, VisitPlan.customer_id)
    if scope is not None:
        query = query.where(scope)
    if customer_id is not None:
        query = query.where(VisitPlan.customer_id == customer_id)
    if planned_by is not None:
        query = query.where(VisitPlan.created_by == planned_by)
    query = query.where(*_period(VisitPlan.planned_at, start, end))
    total = count_rows(session, query)
    plans = session.scalars(
        query.order_by(VisitPlan.planned_at, VisitPlan.id).limit(limit).offset(offset)
    )
    return [VisitPlanOut.model_validate(p) for p in plans], int(total)


# -- service plans ------------------------------------------------------------------------------
def high_end(care: CustomerCare | None) -> bool:
    """An important high-end customer: high-end by a tier, or of high importance to its owner."""
    if care is None:
        return False
    return (
        care.value_tier == "high"
        or care.wealth_layer == "layer_1"
        or care.vip_level in HIGH_END_VIP_LEVELS
        or care.importance == "high"
    )


def create_service_plan(session: Session, body: ServicePlanIn, caller: Caller) -> ServicePlanOut:
    """A yearly service plan for an important high-end customer, by its owner or serving team or
    a head; each responsible member serves the customer. A plan for a year that has one is its
    next revision."""
    customer = customer_ref(session, body.customer_id)
    _check_record(session, caller, customer, "planning the service")
    if not high_end(session.get(CustomerCare, customer.customer_id)):
        raise PolicyViolation(
            "service plans are for important high-end customers: value tier high, wealth layer "
            "1, VIP platinum or diamond, or of high importance by its owner's assessment; "
            f"customer {customer.customer_id} is none of these",
            rule=SERVICE_PLAN_RULE,
        )
    outsiders = [
        p.staff_id
        for p in body.responsible
        if not _serves(session, customer.customer_id, p.staff_id)
    ]
    if outsiders:
        raise ValidationFailed(
            "the responsible members are the customer's owner and serving team",
            errors=[
                {"field": "responsible", "reason": f"{staff} does not serve this customer"}
                for staff in outsiders
            ],
        )
    latest = session.scalar(
        select(func.max(ServicePlan.revision)).where(
            ServicePlan.customer_id == customer.customer_id, ServicePlan.year == body.year
        )
    )
    plan = ServicePlan(
        id=str(uuid.uuid4()),
        customer_id=customer.customer_id,
        org_unit=customer.org_unit,
        year=body.year,
        revision=(latest or 0) + 1,
        goals=list(body.goals),
        planned_contacts=[c.model_dump(mode="json") for c in body.planned_contacts],
        products=list(body.products),
        responsible=[p.model_dump() for p in body.responsible],
        notes=body.notes,
        created_by=caller.subject,
        created_at=utcnow(),
    )
    session.add(plan)
    _commit(
        session,
        f"the {body.year} service plan of customer {customer.customer_id} was changed "
        "concurrently: read it again",
    )
    return _service_plan_out(plan, current=True)


def _service_plan_out(plan: ServicePlan, *, current: bool) -> ServicePlanOut:
    stored = {
        name: getattr(plan, name) for name in ServicePlanOut.model_fields if name != "current"
    }
    return ServicePlanOut.model_validate({**stored, "current": current})


def _latest_plan() -> ColumnElement[bool]:
    later = aliased(ServicePlan)
    return ~exists().where(
        later.customer_id == ServicePlan.customer_id,
        later.year == ServicePlan.year,
        later.revision > ServicePlan.revision,
    )


def read_service_plan(session: Session, caller: Caller, plan_id: str) -> ServicePlanOut:
    plan = session.get(ServicePlan, plan_id)
    if plan is None:
        raise NotFound(f"no service plan {plan_id}")
    _check_read(session, caller, customer_ref(session, plan.customer_id))
    current = session.scalar(select(_latest_plan()).where(ServicePlan.id == plan.id))
    return _service_plan_out(plan, current=bool(current))


def list_service_plans(
    session: Session,
    caller: Caller,
    *,
    customer_id: str | None = None,
    year: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[ServicePlanOut], int]:
    """The current service plans the caller reads, by year (the latest first) and customer."""
    query = (
        select(ServicePlan)
        .join(customer_refs, refs.customer_id == ServicePlan.customer_id)
        .where(_latest_plan())
    )
    scope = readable(caller, ServicePlan.customer_id)
    if scope is not None:
        query = query.where(scope)
    if customer_id is not None:
        query = query.where(ServicePlan.customer_id == customer_id)
    if year is not None:
        query = query.where(ServicePlan.year == year)
    total = count_rows(session, query)
    plans = session.scalars(
        query.order_by(ServicePlan.year.desc(), ServicePlan.customer_id).limit(limit).offset(offset)
    )
    return [_service_plan_out(p, current=True) for p in plans], int(total)


# -- enquiries ----------------------------------------------------------------------------------
class EnquiryPolicyError(ValueError):
    """An enquiry policy file that cannot be used."""


class EnquiryPolicy(BaseModel):
    """How soon an enquiry is answered, in business days, and the calendar that counts them."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(max_length=20)
    effective_from: date
    description: str
    answer_within_business_days: int = Field(ge=1, le=30)
    # Days of the week that are not business days (Monday 0 … Sunday 6).
    weekend: list[int] = Field(default_factory=lambda: [5, 6])
    holidays: list[date] = Field(default_factory=list)
    # Weekend days made working days 调休上班.
    extra_workdays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sound(self) -> EnquiryPolicy:
        if any(day not in range(7) for day in self.weekend):
            raise ValueError("weekend days are 0 (Monday) to 6 (Sunday)")
        both = set(self.holidays) & set(self.extra_workdays)
        if both:
            raise ValueError(f"{min(both)} is both a holiday and a working day")
        return self

    def is_business_day(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return day.weekday() not in self.weekend or day in self.extra_workdays

    def due_on(self, received_on: date) -> date:
        """The business date an enquiry received on ``received_on`` is answered by: the
        ``answer_within_business_days``-th business day after it."""
        day, left = received_on, self.answer_within_business_days
        while left:
            day += timedelta(days=1)
            if self.is_business_day(day):
                left -= 1
        return day


@cache
def enquiry_policies(directory: Path = POLICY_DIR) -> tuple[EnquiryPolicy, ...]:
    found = [
        load_policy_file(path, EnquiryPolicy, "enquiry policy", EnquiryPolicyError)
        for path in sorted(directory.glob("*.json"))
    ]
    if not found:
        raise EnquiryPolicyError(f"no enquiry policy in {directory}")
    return tuple(sorted(found, key=lambda p: p.effective_from))


def enquiry_policy_on(day: date, directory: Path = POLICY_DIR) -> EnquiryPolicy:
    """The enquiry policy in force on ``day`` (the latest effective on or before it)."""
    in_force = [p for p in enquiry_policies(directory) if p.effective_from <= day]
    if not in_force:
        raise EnquiryPolicyError(f"no enquiry policy in force on {day}")
    return in_force[-1]


def is_late(enquiry: Enquiry, today: date) -> bool:
    """Answered after its due date, or open past it."""
    if enquiry.answered_on is not None:
        return enquiry.answered_on > enquiry.due_on
    return today > enquiry.due_on


def _late_sql(today: date) -> ColumnElement[bool]:
    return or_(
        and_(Enquiry.answered_on.is_(None), Enquiry.due_on < today),
        Enquiry.answered_on > Enquiry.due_on,
    )


def enquiry_out(enquiry: Enquiry, today: date) -> EnquiryOut:
    return EnquiryOut(
        id=enquiry.id,
        customer_id=enquiry.customer_id,
        org_unit=enquiry.org_unit,
        channel=enquiry.channel,
        subject=enquiry.subject,
        question=enquiry.question,
        received_at=enquiry.received_at,
        due_on=enquiry.due_on,
        policy_version=enquiry.policy_version,
        assigned_to=enquiry.assigned_to,
        recorded_by=enquiry.recorded_by,
        recorded_at=enquiry.recorded_at,
        status=EnquiryStatus.answered if enquiry.answered_at else EnquiryStatus.open,
        answer=enquiry.answer,
        answered_at=enquiry.answered_at,
        answered_by=enquiry.answered_by,
        late=is_late(enquiry, today),
    )


def _answerer(session: Session, body: EnquiryIn, caller: Caller) -> str:
    """Who answers: the named staff member (the caller or one serving the customer), else the
    customer's owner, else the caller."""
    if body.assigned_to is None:
        return owner_of(session, owner_refs, body.customer_id) or caller.subject
    if body.assigned_to != caller.subject and not _serves(
        session, body.customer_id, body.assigned_to
    ):
        raise ValidationFailed(
            "an enquiry is assigned to the caller or to a staff member serving the customer",
            errors=[{"field": "assigned_to", "reason": f"{body.assigned_to} does not serve it"}],
        )
    return body.assigned_to


def record_enquiry(
    session: Session,
    recorder: EventRecorder,
    body: EnquiryIn,
    caller: Caller,
    now: datetime | None = None,
) -> EnquiryOut:
    """Log a customer's enquiry with the business date it is to be answered by."""
    now = now or utcnow()
    customer = customer_ref(session, body.customer_id)
    _check_record(session, caller, customer, "logging an enquiry")
    received_at = (body.received_at or now).astimezone(UTC)
    _not_ahead(received_at, now, "received_at")
    received_on = business_date_of(received_at)
    policy = enquiry_policy_on(received_on)
    enquiry = Enquiry(
        id=str(uuid.uuid4()),
        customer_id=customer.customer_id,
        org_unit=customer.org_unit,
        channel=body.channel.value,
        subject=body.subject,
        question=body.question,
        received_at=received_at,
        due_on=policy.due_on(received_on),
        policy_version=policy.version,
        assigned_to=_answerer(session, body, caller),
        recorded_by=caller.subject,
        recorded_at=now,
    )
    session.add(enquiry)
    recorder.record(
        session,
        events.ENQUIRY_RECORDED,
        {
            "customer_id": enquiry.customer_id,
            "enquiry_id": enquiry.id,
            "org_unit": enquiry.org_unit,
            "channel": enquiry.channel,
            "subject": enquiry.subject,
            "received_at": received_at.isoformat(),
            "due_on": enquiry.due_on.isoformat(),
            "assigned_to": enquiry.assigned_to,
            "recorded_by": enquiry.recorded_by,
        },
        key=enquiry.customer_id,
        actor=caller.subject,
    )
    session.commit()
    return enquiry_out(enquiry, business_date_of(now))


def answer_enquiry(
    session: Session,
    recorder: EventRecorder,
    enquiry_id: str,
    body: EnquiryAnswerIn,
    caller: Caller,
    now: datetime | None = None,
) -> EnquiryOut:
    """Answer an open enquiry (those who record for the customer); once."""
    now = now or utcnow()
    enquiry = session.get(Enquiry, enquiry_id)
    if enquiry is None:
        raise NotFound(f"no enquiry {enquiry_id}")
    customer = customer_ref(session, enquiry.customer_id)
    _check_record(session, caller, customer, "answering an enquiry")
    answered_on = business_date_of(now)
    # The update is conditional: of two answers at once, one finds the enquiry still open.
    done = session.execute(
        update(Enquiry)
        .where(Enquiry.id == enquiry_id, Enquiry.answered_at.is_(None))
        .values(
            answer=body.answer, answered_at=now, answered_on=answered_on, answered_by=caller.subject
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise Conflict(f"enquiry {enquiry_id} is already answered")
    session.refresh(enquiry)
    recorder.record(
        session,
        events.ENQUIRY_ANSWERED,
        {
            "customer_id": enquiry.customer_id,
            "enquiry_id": enquiry.id,
            "org_unit": enquiry.org_unit,
            "answered_at": now.isoformat(),
            "answered_by": caller.subject,
            "due_on": enquiry.due_on.isoformat(),
            "late": is_late(enquiry, answered_on),
        },
        key=enquiry.customer_id,
        actor=caller.subject,
    )
    session.commit()
    return enquiry_out(enquiry, answered_on)


def read_enquiry(
    session: Session, caller: Caller, enquiry_id: str, today: date | None = None
) -> EnquiryOut:
    enquiry = session.get(Enquiry, enquiry_id)
    if enquiry is None:
        raise NotFound(f"no enquiry {enquiry_id}")
    _check_read(session, caller, customer_ref(session, enquiry.customer_id))
    return enquiry_out(enquiry, today or business_today())


def list_enquiries(
    session: Session,
    caller: Caller,
    *,
    customer_id: str | None = None,
    assigned_to: str | None = None,
    status: EnquiryStatus | None = None,
    late: bool | None = None,
    today: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[EnquiryOut], int]:
    """The enquiries the caller reads, the earliest due first. ``late``: answered after their
    due date or open past it on ``today``."""
    today = today or business_today()
    query = select(Enquiry).join(customer_refs, refs.customer_id == Enquiry.customer_id)
    scope = readable(caller, Enquiry.customer_id)
    if scope is not None:
        query = query.where(scope)
    if customer_id is not None:
        query = query.where(Enquiry.customer_id == customer_id)
    if assigned_to is not None:
        query = query.where(Enquiry.assigned_to == assigned_to)
    if status is EnquiryStatus.open:
        query = query.where(Enquiry.answered_at.is_(None))
    elif status is EnquiryStatus.answered:
        query = query.where(Enquiry.answered_at.is_not(None))
    if late is not None:
        query = query.where(_late_sql(today) if late else ~_late_sql(today))
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(Enquiry.due_on, Enquiry.received_at, Enquiry.id).limit(limit).offset(offset)
    )
    return [enquiry_out(e, today) for e in rows], int(total)


# -- appointments -------------------------------------------------------------------------------
def book_appointment(
    session: Session,
    recorder: EventRecorder,
    body: AppointmentIn,
    caller: Caller,
    now: datetime | None = None,
) -> Appointment:
    """Book an appointment for a customer with financial assets of at least 1,000,000.00 on the
    latest business date known, with the caller or a staff member serving the customer."""
    now = now or utcnow()
    customer = customer_ref(session, body.customer_id)
    _check_record(session, caller, customer, "booking an appointment")
    care = session.get(CustomerCare, customer.customer_id)
    aum = care.aum if care is not None else None
    if aum is None or aum < APPOINTMENT_MIN_AUM:
        known = (
            f"{aum:.2f} on {care.business_date}"
            if care is not None and aum is not None
            else "not known"
        )
        raise PolicyViolation(
            "appointments are for customers with financial assets of at least 1000000.00 "
            f"(金融资产百万元以上); customer {customer.customer_id}'s are {known}",
            rule=APPOINTMENT_RULE,
        )
    starts_at = body.starts_at.astimezone(UTC)
    if starts_at <= now:
        raise ValidationFailed(
            "an appointment is booked ahead",
            errors=[{"field": "starts_at", "reason": f"{starts_at.isoformat()} has passed"}],
        )
    staff_id = body.staff_id or caller.subject
    if staff_id != caller.subject and not _serves(session, customer.customer_id, staff_id):
        raise ValidationFailed(
            "the customer meets the caller or a staff member serving it",
            errors=[{"field": "staff_id", "reason": f"{staff_id} does not serve the customer"}],
        )
    taken = f"{staff_id} already has an appointment at {starts_at.isoformat()}"
    if session.scalar(
        select(Appointment.id).where(
            Appointment.staff_id == staff_id, Appointment.starts_at == starts_at
        )
    ):
        raise Conflict(taken)
    appointment = Appointment(
        id=str(uuid.uuid4()),
        customer_id=customer.customer_id,
        org_unit=customer.org_unit,
        staff_id=staff_id,
        starts_at=starts_at,
        place=body.place,
        purpose=body.purpose,
        aum=aum,
        aum_business_date=care.business_date if care is not None else None,
        booked_by=caller.subject,
        booked_at=now,
    )
    session.add(appointment)
    recorder.record(
        session,
        events.APPOINTMENT_BOOKED,
        {
            "customer_id": appointment.customer_id,
            "appointment_id": appointment.id,
            "org_unit": appointment.org_unit,
            "staff_id": staff_id,
            "starts_at": starts_at.isoformat(),
            "place": appointment.place,
            "purpose": appointment.purpose,
            "aum": f"{aum:.2f}",
            "aum_business_date": (
                appointment.aum_business_date.isoformat() if appointment.aum_business_date else None
            ),
            "booked_by": caller.subject,
        },
        key=appointment.customer_id,
        actor=caller.subject,
    )
    _commit(session, taken)
    return appointment


def list_appointments(
    session: Session,
    caller: Caller,
    *,
    customer_id: str | None = None,
    staff_id: str | None = None,
    start: date | None = None,
    end: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Appointment], int]:
    """The appointments the caller reads, the earliest first."""
    _check_period(start, end)
    query = select(Appointment).join(customer_refs, refs.customer_id == Appointment.customer_id)
    scope = readable(caller, Appointment.customer_id)
    if scope is not None:
        query = query.where(scope)
    if customer_id is not None:
        query = query.where(Appointment.customer_id == customer_id)
    if staff_id is not None:
        query = query.where(Appointment.staff_id == staff_id)
    query = query.where(*_period(Appointment.starts_at, start, end))
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(Appointment.starts_at, Appointment.id).limit(limit).offset(offset)
    )
    return list(rows), int(total)


def read_appointment(session: Session, caller: Caller, appointment_id: str) -> Appointment:
    appointment = session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound(f"no appointment {appointment_id}")
    _check_read(session, caller, customer_ref(session, appointment.customer_id))
    return appointment


# -- the visit record report (附件5) ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportScope:
    org_unit: str
    start: date
    end: date


def report_scope(
    caller: Caller, org_unit: str | None, start: date | None, end: date | None
) -> ReportScope:
    """The subtree and period of a report: by default the caller's unit and the current month
    to date; the unit within the caller's reach (heads, auditors, administrators)."""
    today = business_today()
    start = start or today.replace(day=1)
    end = end or today
    _check_period(start, end)
    unit = (org_unit or caller.org_unit).rstrip("/") or "/"
    if not access.may_read_unit(caller, unit):
        raise Forbidden(
            f"the visit report of {unit} is read by administrators, auditors and the heads of "
            "its subtree"
        )
    return ReportScope(unit, start, end)


def _report_query(scope: ReportScope) -> Select[Any]:
    return (
        select(Visit, refs.name)
        .outerjoin(customer_refs, refs.customer_id == Visit.customer_id)
        .where(
            _current(),
            in_subtree(Visit.org_unit, scope.org_unit),
            *_period(Visit.visited_at, scope.start, scope.end),
        )
        .order_by(Visit.org_unit, Visit.visited_at, Visit.id)
    )


def report_row(visit: Visit, customer_name: str | None) -> VisitReportRow:
    return VisitReportRow(
        visit_id=visit.id,
        visit_date=business_date_of(visit.visited_at),
        visited_at=visit.visited_at,
        org_unit=visit.org_unit,
        customer_id=visit.customer_id,
        customer_name=customer_name,
        visit_type=visit.visit_type,
        channel=visit.channel,
        participants=[Participant(staff_id=p.staff_id, role=p.role) for p in visit.participants],
        purpose=visit.purpose,
        agreed=visit.agreed,
        satisfaction=visit.satisfaction,
        customer_comments=visit.customer_comments,
        needs_found=visit.needs_found,
        information_given=visit.information_given,
        opportunities=list(visit.opportunities),
        product_followed_up=visit.product_followed_up,
        next_contact_on=visit.next_contact_on,
        next_contact_participants=list(visit.next_contact_participants),
        recorded_by=visit.recorded_by,
        recorded_at=visit.recorded_at,
        revision=visit.revision,
        corrects=visit.corrects,
    )


def visit_report(
    session: Session,
    caller: Caller,
    org_unit: str | None,
    start: date | None,
    end: date | None,
    limit: int,
    offset: int,
) -> VisitReport:
    """附件5 客户经理拜访记录表: the current versions of the visits recorded in a subtree in a
    period, by org unit and time, with the count of each visit type."""
    scope = report_scope(caller, org_unit, start, end)
    query = _report_query(scope)
    counted = query.order_by(None).subquery()
    by_type = Counter(
        {
            str(kind): int(count)
            for kind, count in session.execute(
                select(counted.c.visit_type, func.count()).group_by(counted.c.visit_type)
            ).all()
        }
    )
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return VisitReport(
        items=[report_row(visit, name) for visit, name in rows],
        total=sum(by_type.values()),
        limit=limit,
        offset=offset,
        org_unit=scope.org_unit,
        from_date=scope.start,
        to_date=scope.end,
        by_visit_type=dict(sorted(by_type.items())),
    )


REPORT_COLUMNS: list[tuple[str, str]] = [
    ("visit_date", "visit_date (拜访日期)"),
    ("visited_at", "visited_at (拜访时间 UTC)"),
    ("org_unit", "org_unit (机构)"),
    ("customer_id", "customer_id (客户号)"),
    ("customer_name", "customer_name (客户名称)"),
    ("visit_type", "visit_type (拜访类型)"),
    ("channel", "channel (维护方式)"),
    ("participants", "participants (参加访问的人员及分工)"),
    ("purpose", "purpose (访问目的)"),
    ("agreed", "agreed (概述约定情况)"),
    ("satisfaction", "satisfaction (客户满意情况)"),
    ("customer_comments", "customer_comments (客户对业务运作的评论)"),
    ("needs_found", "needs_found (发现的问题及需求)"),
    ("information_given", "information_given (讨论问题,提供数据及材料)"),
    ("opportunities", "opportunities (扩大销售的机会)"),
    ("product_followed_up", "product_followed_up (售后跟踪产品)"),
    ("next_contact_on", "next_contact_on (下次约见时间)"),
    ("next_contact_participants", "next_contact_participants (下次参加人员)"),
    ("recorded_by", "recorded_by (客户经理签名)"),
    ("recorded_at", "recorded_at (存档时间 UTC)"),
    ("revision", "revision (版本)"),
    ("corrects", "corrects (更正的记录)"),
    ("visit_id", "visit_id (拜访记录号)"),
]


def _cell(value: object) -> str:
    """A participant as "staff_id (role)", the rest as the kit writes it."""
    if isinstance(value, list):
        return "; ".join(_cell(v) for v in value)
    if isinstance(value, Participant):
        return csv_cell(f"{value.staff_id} ({value.role})")
    return csv_cell(value)


def visit_report_csv(
    session: Session,
    caller: Caller,
    org_unit: str | None,
    start: date | None,
    end: date | None,
) -> Iterator[bytes]:
    """Every row of the report as CSV chunks (UTF-8 with a byte-order mark); the caller and the
    period are checked before the first byte."""
    scope = report_scope(caller, org_unit, start, end)
    return _csv_chunks(session, _report_query(scope))


def _csv_chunks(session: Session, query: Select[Any]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([label for _, label in REPORT_COLUMNS])
    yield (BOM + buffer.getvalue()).encode("utf-8")
    result = session.execute(query.execution_options(yield_per=CSV_BATCH_ROWS))
    for batch in result.partitions():
        buffer.seek(0)
        buffer.truncate()
        for row in _rows(batch):
            writer.writerow([_cell(getattr(row, name)) for name, _ in REPORT_COLUMNS])
        yield buffer.getvalue().encode("utf-8")


def _rows(batch: Sequence[Any]) -> list[VisitReportRow]:
    return [report_row(visit, name) for visit, name in batch]
