"""Complaints 投诉: recorded → accepted → analysed → handled → feedback given → closed, each step
owned and due by policy, escalated when late or for high-tier customers (seed 002 §三).

The deadlines and who is high-tier are data (``policy/complaints/<effective date>.json``); a
complaint keeps the version in force on the business date it was recorded. Every step is a
:class:`ComplaintStep` row and an event in the same transaction; the ``version`` column makes of
two transitions at once exactly one succeed. Time-dependent functions take ``now`` so that tests
control the clock; the routes and the periodic task pass the current time.
"""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.clock import BUSINESS_TZ
from crmkit.csvout import BOM, csv_cell
from crmkit.db import count_rows, in_subtree, one_of, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.outbox import EventRecorder
from crmkit.policy import load_policy_file
from crmkit.replicas import owner_of
from crmkit.runtime import ServiceRuntime
from services.visits import access, events
from services.visits.models import CustomerCare, customer_refs, owner_refs
from services.visits.models_complaints import Complaint, ComplaintStep
from services.visits.schemas_complaints import (
    BranchCounts,
    Category,
    Channel,
    ComplaintDetail,
    ComplaintIn,
    ComplaintOut,
    ComplaintsReport,
    ComplaintStatus,
    ComplaintStepOut,
    EscalationReason,
    FixOut,
    Outcome,
    StatusCounts,
    Step,
    StepCounts,
    TransitionIn,
)

log = logging.getLogger(__name__)

POLICY_DIR = Path(__file__).with_name("policy") / "complaints"
SYSTEM = "system"
# Rows the escalation sweep handles per transaction.
CHUNK = 500
STATUSES = list(ComplaintStatus)
# The status each step leads to, and the step each status waits for next.
STATUS_AFTER: dict[Step, ComplaintStatus] = {
    Step.record: ComplaintStatus.recorded,
    Step.accept: ComplaintStatus.accepted,
    Step.analyse: ComplaintStatus.analysed,
    Step.handle: ComplaintStatus.handled,
    Step.feedback: ComplaintStatus.feedback_given,
    Step.close: ComplaintStatus.closed,
}
STEP_AFTER: dict[ComplaintStatus, Step] = {
    ComplaintStatus.recorded: Step.accept,
    ComplaintStatus.accepted: Step.analyse,
    ComplaintStatus.analysed: Step.handle,
    ComplaintStatus.handled: Step.feedback,
    ComplaintStatus.feedback_given: Step.close,
}
CLOSED = ComplaintStatus.closed.value
CLOSING_FIELDS = (
    "outcome",
    "person_at_fault",
    "sanction",
    "root_cause",
    "lesson",
    "fix_description",
    "fix_owner_id",
    "fix_due_on",
)


class ComplaintPolicyError(ValueError):
    """A complaint policy file that cannot be used."""


# -- the policy ---------------------------------------------------------------------------------
class StepDeadline(BaseModel):
    """How long a step may take from its start."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=1)
    unit: Literal["hours", "calendar_days", "business_days"]


class Deadlines(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept: StepDeadline
    analyse: StepDeadline
    handle: StepDeadline
    feedback: StepDeadline
    close: StepDeadline


class HighTier(BaseModel):
    """Who is a high-tier customer 高端客户: any one of the lists matching is enough."""

    model_config = ConfigDict(extra="forbid")

    value_tiers: list[str] = Field(default_factory=list)
    vip_levels: list[str] = Field(default_factory=list)
    wealth_layers: list[str] = Field(default_factory=list)

    def matches(self, value_tier: str | None, vip_level: str | None, wealth: str | None) -> bool:
        return (
            value_tier in self.value_tiers
            or vip_level in self.vip_levels
            or wealth in self.wealth_layers
        )


class ComplaintPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: str = Field(min_length=1, max_length=20)
    effective_from: date
    description: str
    deadlines: Deadlines
    high_tier: HighTier


@cache
def policies(directory: Path = POLICY_DIR) -> tuple[ComplaintPolicy, ...]:
    """Every version of the complaint policy, oldest first."""
    found = [
        load_policy_file(path, ComplaintPolicy, "complaint policy", ComplaintPolicyError)
        for path in sorted(directory.glob("*.json"))
    ]
    if not found:
        raise ComplaintPolicyError(f"no complaint policy in {directory}")
    return tuple(sorted(found, key=lambda p: p.effective_from))


def policy_on(day: date) -> ComplaintPolicy:
    """The policy in force on ``day`` (the latest effective on or before it)."""
    in_force = [p for p in policies() if p.effective_from <= day]
    if not in_force:
        raise ComplaintPolicyError(f"no complaint policy in force on {day}")
    return in_force[-1]


def policy_version(version: str) -> ComplaintPolicy:
    """The policy of that version (the one a complaint was recorded under)."""
    for policy in policies():
        if policy.version == version:
            return policy
    raise ComplaintPolicyError(f"no complaint policy of version {version}")


# -- deadlines ----------------------------------------------------------------------------------
def add_business_days(day: date, count: int) -> date:
    """``count`` Monday-to-Friday days after ``day`` (public holidays are not counted apart)."""
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def deadline(start: datetime, rule: StepDeadline) -> datetime:
    """When a step started at ``start`` is due: ``hours`` later; or at the same clock time in
    Asia/Shanghai ``calendar_days`` later, or on the ``business_days``-th weekday after."""
    if rule.unit == "hours":
        return start + timedelta(hours=rule.amount)
    local = start.astimezone(BUSINESS_TZ)
    if rule.unit == "calendar_days":
        day = local.date() + timedelta(days=rule.amount)
    else:
        day = add_business_days(local.date(), rule.amount)
    return datetime.combine(day, local.timetz()).astimezone(UTC)


def step_deadline(policy: ComplaintPolicy, step: Step, start: datetime) -> datetime:
    rule: StepDeadline = getattr(policy.deadlines, step.value)
    return deadline(start, rule)


def is_high_tier(session: Session, policy: ComplaintPolicy, customer_id: str) -> bool:
    """The customer is high-tier by the policy (its tiers as this service keeps them)."""
    care = session.get(CustomerCare, customer_id)
    if care is None:
        return False
    return policy.high_tier.matches(care.value_tier, care.vip_level, care.wealth_layer)


# -- recording ----------------------------------------------------------------------------------
def record_complaint(
    session: Session, recorder: EventRecorder, body: ComplaintIn, caller: Caller, now: datetime
) -> Complaint:
    """Record a complaint for a known customer (front-line staff of its subtree or who serve
    it, heads, administrators). The first step, ``accept``, is owned by ``body.owner``, else the
    customer's owner, else the recorder. A high-tier customer's complaint is escalated at once.
    """
    org_unit = session.execute(
        select(customer_refs.c.org_unit).where(customer_refs.c.customer_id == body.customer_id)
    ).scalar_one_or_none()
    if org_unit is None:
        raise ValidationFailed(
            f"customer {body.customer_id} is not known here",
            errors=[{"field": "customer_id", "reason": "no such customer"}],
        )
    if not may_record(session, caller, body.customer_id, org_unit):
        raise Forbidden(
            "complaints are recorded by front-line staff for customers of their subtree or that "
            f"they serve; customer {body.customer_id} belongs to {org_unit}"
        )
    policy = policy_on(now.astimezone(BUSINESS_TZ).date())
    customer_owner = owner_of(session, owner_refs, body.customer_id)
    step_owner = body.owner or customer_owner or caller.subject
    high_tier = is_high_tier(session, policy, body.customer_id)
    due_at = step_deadline(policy, Step.accept, now)
    complaint = Complaint(
        id=str(uuid.uuid4()),
        customer_id=body.customer_id,
        org_unit=org_unit,
        channel=body.channel.value,
        category=body.category.value,
        description=body.description,
        status=ComplaintStatus.recorded.value,
        high_tier=high_tier,
        customer_owner_id=customer_owner,
        step_owner_id=step_owner,
        step_due_at=due_at,
        escalated_at=now if high_tier else None,
        policy_version=policy.version,
        recorded_by=caller.subject,
        recorded_at=now,
    )
    session.add(complaint)
    session.add(
        ComplaintStep(
            complaint_id=complaint.id,
            step=Step.record.value,
            owner_id=caller.subject,
            started_at=now,
            done_at=now,
            done_by=caller.subject,
            note=None,
            escalated_at=now if high_tier else None,
            escalation_reason=EscalationReason.high_tier.value if high_tier else None,
        )
    )
    session.add(_open_step(complaint.id, Step.accept, step_owner, now, due_at))
    session.flush()
    recorder.record(
        session,
        events.COMPLAINT_RECORDED,
        {
            "customer_id": complaint.customer_id,
            "complaint_id": complaint.id,
            "org_unit": org_unit,
            "channel": complaint.channel,
            "category": complaint.category,
            "high_tier": high_tier,
            "customer_owner_id": customer_owner,
            "step": Step.accept.value,
            "step_owner_id": step_owner,
            "due_at": due_at.isoformat(),
            "recorded_by": caller.subject,
            "recorded_at": now.isoformat(),
        },
        key=complaint.customer_id,
        actor=caller.subject,
    )
    if high_tier:
        _record_escalation(
            recorder,
            session,
            complaint,
            EscalationReason.high_tier,
            Step.accept,
            step_owner,
            due_at,
            now,
        )
    session.commit()
    return complaint


def may_record(session: Session, caller: Caller, customer_id: str, org_unit: str) -> bool:
    """Record a complaint: who may record a visit for the customer, or front-line staff of the
    customer's subtree (a teller at the counter takes a complaint of any customer of the
    outlet)."""
    if access.may_record(session, caller, customer_id, org_unit):
        return True
    return caller.has_role(*access.FRONT_LINE) and caller.within(org_unit)


def _open_step(
    complaint_id: str, step: Step, owner: str, start: datetime, due_at: datetime
) -> ComplaintStep:
    return ComplaintStep(
        complaint_id=complaint_id, step=step.value, owner_id=owner, started_at=start, due_at=due_at
    )


def _record_escalation(
    recorder: EventRecorder,
    session: Session,
    complaint: Complaint,
    reason: EscalationReason,
    step: Step,
    step_owner: str,
    due_at: datetime | None,
    at: datetime,
) -> None:
    recorder.record(
        session,
        events.COMPLAINT_ESCALATED,
        {
            "customer_id": complaint.customer_id,
            "complaint_id": complaint.id,
            "org_unit": complaint.org_unit,
            "reason": reason.value,
            "step": step.value,
            "step_owner_id": step_owner,
            "due_at": due_at.isoformat() if due_at else None,
            "customer_owner_id": complaint.customer_owner_id,
            "high_tier": complaint.high_tier,
            "escalated_at": at.isoformat(),
        },
        key=complaint.customer_id,
        actor=SYSTEM if reason is EscalationReason.late else complaint.recorded_by,
    )


# -- transitions --------------------------------------------------------------------------------
def transition(
    session: Session,
    recorder: EventRecorder,
    complaint_id: str,
    body: TransitionIn,
    caller: Caller,
    now: datetime,
) -> Complaint:
    """Do the step the complaint waits for and move it to ``body.to``: only forward and in
    order (409 otherwise), by the step's owner or a head of the complaint's subtree. Closing
    records the outcome, every field of it (422 naming those missing)."""
    complaint = session.get(Complaint, complaint_id)
    if complaint is None:
        raise NotFound(f"no complaint {complaint_id}")
    owner = complaint.step_owner_id
    if not (caller.subject == owner or access.may_manage(caller, complaint.org_unit)):
        raise Forbidden(
            f"only the owner of the step complaint {complaint_id} waits for "
            f"({owner or 'none: it is closed'}) or a head of "
            f"{complaint.org_unit} moves it on"
        )
    if body.version is not None and body.version != complaint.version:
        raise Conflict(
            f"complaint {complaint_id} changed since version {body.version}; read it again",
            current_version=complaint.version,
        )
    status = ComplaintStatus(complaint.status)
    step = STEP_AFTER.get(status)
    if step is None or body.to is not STATUS_AFTER[step]:
        expected = f"the next is {STATUS_AFTER[step].value}" if step else "it is closed"
        raise Conflict(
            f"complaint {complaint_id} is {status.value}: {expected}; steps go forward in order",
            current_status=status.value,
        )
    _check_fields(body)
    current = session.get(ComplaintStep, (complaint.id, step.value))
    if current is None:
        raise Conflict(f"complaint {complaint_id} has no open {step.value} step")
    late = current.due_at is not None and now > current.due_at
    if body.to is ComplaintStatus.closed:
        _close(complaint, body, now)
        next_step, next_owner, next_due = None, None, None
    else:
        policy = policy_version(complaint.policy_version)
        next_step = STEP_AFTER[body.to]
        next_owner = body.owner or current.owner_id
        next_due = step_deadline(policy, next_step, now)
        complaint.status = body.to.value
        complaint.step_owner_id, complaint.step_due_at = next_owner, next_due
    # The complaint row first: of two transitions at once, the one whose update finds the
    # version changed loses here, before it touches a step.
    _flush_or_conflict(session, complaint_id)
    current.done_at, current.done_by, current.note = now, caller.subject, body.note
    if next_step is not None and next_owner is not None and next_due is not None:
        session.add(_open_step(complaint.id, next_step, next_owner, now, next_due))
    _flush_or_conflict(session, complaint_id)
    _record_transition(recorder, session, complaint, step, late, caller, now)
    session.commit()
    return complaint


def _check_fields(body: TransitionIn) -> None:
    """Closing needs every field of the outcome; another step takes none of them."""
    if body.to is ComplaintStatus.closed:
        missing = [name for name in CLOSING_FIELDS if getattr(body, name) is None]
        if missing:
            raise ValidationFailed(
                "closing a complaint records its outcome; missing: " + ", ".join(missing),
                errors=[{"field": name, "reason": "required to close"} for name in missing],
            )
        if body.owner is not None:
            raise ValidationFailed(
                "a closed complaint has no next step to own",
                errors=[{"field": "owner", "reason": "not taken when closing"}],
            )
        return
    given = [name for name in CLOSING_FIELDS if getattr(body, name) is not None]
    if given:
        raise ValidationFailed(
            "the outcome is recorded when the complaint is closed: " + ", ".join(given),
            errors=[{"field": name, "reason": "only when closing"} for name in given],
        )


def _close(complaint: Complaint, body: TransitionIn, now: datetime) -> None:
    complaint.status = CLOSED
    complaint.closed_at = now
    complaint.step_owner_id, complaint.step_due_at = None, None
    complaint.outcome = body.outcome.value if body.outcome else None
    complaint.person_at_fault, complaint.sanction = body.person_at_fault, body.sanction
    complaint.root_cause, complaint.lesson = body.root_cause, body.lesson
    complaint.fix_description, complaint.fix_owner_id = body.fix_description, body.fix_owner_id
    complaint.fix_due_on = body.fix_due_on


def _flush_or_conflict(session: Session, complaint_id: str) -> None:
    try:
        session.flush()
    except (StaleDataError, IntegrityError) as exc:
        session.rollback()
        raise Conflict(f"complaint {complaint_id} was moved concurrently; read it again") from exc


def _record_transition(
    recorder: EventRecorder,
    session: Session,
    complaint: Complaint,
    step: Step,
    late: bool,
    caller: Caller,
    now: datetime,
) -> None:
    common = {
        "customer_id": complaint.customer_id,
        "complaint_id": complaint.id,
        "org_unit": complaint.org_unit,
        "customer_owner_id": complaint.customer_owner_id,
        "late": late,
    }
    if complaint.status == CLOSED:
        recorder.record(
            session,
            events.COMPLAINT_CLOSED,
            {
                **common,
                "outcome": complaint.outcome,
                "person_at_fault": complaint.person_at_fault,
                "sanction": complaint.sanction,
                "root_cause": complaint.root_cause,
                "lesson": complaint.lesson,
                "fix": {
                    "description": complaint.fix_description,
                    "owner_id": complaint.fix_owner_id,
                    "due_on": str(complaint.fix_due_on),
                },
                "escalated": complaint.escalated_at is not None,
                "recorded_at": complaint.recorded_at.isoformat(),
                "closed_by": caller.subject,
                "closed_at": now.isoformat(),
            },
            key=complaint.customer_id,
            actor=caller.subject,
        )
        return
    recorder.record(
        session,
        events.COMPLAINT_TRANSITIONED,
        {
            **common,
            "step": step.value,
            "from_status": _status_before(step).value,
            "to_status": complaint.status,
            "done_by": caller.subject,
            "done_at": now.isoformat(),
            "next_step": STEP_AFTER[ComplaintStatus(complaint.status)].value,
            "next_owner_id": complaint.step_owner_id,
            "next_due_at": complaint.step_due_at.isoformat() if complaint.step_due_at else None,
        },
        key=complaint.customer_id,
        actor=caller.subject,
    )


def _status_before(step: Step) -> ComplaintStatus:
    return next(status for status, after in STEP_AFTER.items() if after is step)


# -- reading ------------------------------------------------------------------------------------
def _reads_all(caller: Caller) -> bool:
    return caller.has_role(ROLE_ADMIN, access.ROLE_AUDITOR)


def _staff_scope(caller: Caller) -> ColumnElement[bool]:
    """Complaints the caller owns a step of, or whose customer they own or serve."""
    owns_step = exists().where(
        ComplaintStep.complaint_id == Complaint.id, ComplaintStep.owner_id == caller.subject
    )
    serves = exists().where(
        owner_refs.c.customer_id == Complaint.customer_id,
        owner_refs.c.staff_id == caller.subject,
    )
    return or_(owns_step, serves)


def visible(session: Session, caller: Caller, complaint: Complaint) -> bool:
    """Auditors and administrators read every complaint, heads those of their subtree, staff
    those they own a step of or whose customer they serve."""
    if _reads_all(caller) or access.may_manage(caller, complaint.org_unit):
        return True
    query = select(Complaint.id).where(Complaint.id == complaint.id, _staff_scope(caller))
    return session.execute(query).first() is not None


def load(session: Session, complaint_id: str, caller: Caller) -> Complaint:
    complaint = session.get(Complaint, complaint_id)
    if complaint is None:
        raise NotFound(f"no complaint {complaint_id}")
    if not visible(session, caller, complaint):
        raise Forbidden(
            f"you neither own a step of complaint {complaint_id} nor serve its customer, and "
            f"{complaint.org_unit} is outside the subtree you head"
        )
    return complaint


@dataclass(frozen=True)
class ComplaintFilter:
    org_unit: str | None = None
    status: ComplaintStatus | None = None
    late: bool | None = None
    customer_id: str | None = None


def list_complaints(
    session: Session,
    caller: Caller,
    where: ComplaintFilter,
    now: datetime,
    limit: int,
    offset: int,
) -> tuple[list[Complaint], int]:
    """The complaints the caller may read, filtered, oldest first."""
    query = select(Complaint)
    if not _reads_all(caller):
        scope = _staff_scope(caller)
        if caller.has_role(*access.HEADS):
            scope = or_(scope, in_subtree(Complaint.org_unit, caller.org_unit))
        query = query.where(scope)
    if where.org_unit:
        query = query.where(in_subtree(Complaint.org_unit, where.org_unit))
    if where.status:
        query = query.where(Complaint.status == where.status.value)
    if where.customer_id:
        query = query.where(Complaint.customer_id == where.customer_id)
    if where.late is not None:
        overdue = and_(Complaint.status != CLOSED, Complaint.step_due_at < now)
        query = query.where(overdue if where.late else ~overdue)
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(Complaint.recorded_at, Complaint.id).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


def steps_of(session: Session, complaint_id: str) -> list[ComplaintStep]:
    order = case({step.value: n for n, step in enumerate(Step)}, value=ComplaintStep.step)
    return list(
        session.scalars(
            select(ComplaintStep).where(ComplaintStep.complaint_id == complaint_id).order_by(order)
        ).all()
    )


def complaint_out(complaint: Complaint, now: datetime) -> ComplaintOut:
    """The wire form of a complaint, its lateness judged at ``now``."""
    status = ComplaintStatus(complaint.status)
    fix = None
    if complaint.fix_description and complaint.fix_owner_id and complaint.fix_due_on:
        fix = FixOut(
            description=complaint.fix_description,
            owner_id=complaint.fix_owner_id,
            due_on=complaint.fix_due_on,
        )
    return ComplaintOut(
        id=complaint.id,
        customer_id=complaint.customer_id,
        org_unit=complaint.org_unit,
        channel=Channel(complaint.channel),
        category=Category(complaint.category),
        description=complaint.description,
        status=status,
        current_step=STEP_AFTER.get(status),
        step_owner_id=complaint.step_owner_id,
        step_due_at=complaint.step_due_at,
        late=complaint.step_due_at is not None and now > complaint.step_due_at,
        high_tier=complaint.high_tier,
        customer_owner_id=complaint.customer_owner_id,
        escalated_at=complaint.escalated_at,
        policy_version=complaint.policy_version,
        recorded_by=complaint.recorded_by,
        recorded_at=complaint.recorded_at,
        closed_at=complaint.closed_at,
        outcome=Outcome(complaint.outcome) if complaint.outcome else None,
        person_at_fault=complaint.person_at_fault,
        sanction=complaint.sanction,
        root_cause=complaint.root_cause,
        lesson=complaint.lesson,
        fix=fix,
        version=complaint.version,
    )


def complaint_detail(session: Session, complaint: Complaint, now: datetime) -> ComplaintDetail:
    """A complaint with its step history, in the order of the steps."""
    steps = [
        ComplaintStepOut(
            step=Step(s.step),
            owner_id=s.owner_id,
            started_at=s.started_at,
            due_at=s.due_at,
            done_at=s.done_at,
            done_by=s.done_by,
            note=s.note,
            late=s.due_at is not None and (s.done_at or now) > s.due_at,
            escalated_at=s.escalated_at,
            escalation_reason=(
                EscalationReason(s.escalation_reason) if s.escalation_reason else None
            ),
        )
        for s in steps_of(session, complaint.id)
    ]
    return ComplaintDetail(**complaint_out(complaint, now).model_dump(), steps=steps)


def open_counts(session: Session, customer_ids: Sequence[str]) -> dict[str, int]:
    """How many open complaints each of the customers has (absent: none)."""
    if not customer_ids:
        return {}
    rows = session.execute(
        select(Complaint.customer_id, func.count())
        .where(one_of(session, Complaint.customer_id, customer_ids), Complaint.status != CLOSED)
        .group_by(Complaint.customer_id)
    ).all()
    return {customer_id: int(count) for customer_id, count in rows}


# -- escalation ---------------------------------------------------------------------------------
def escalate_late(runtime: ServiceRuntime, now: datetime | None = None) -> int:
    """Escalate to the branch head every step undone past its deadline, once per step
    (``complaint.escalated``, reason ``late``), a chunk per transaction; the count escalated."""
    now = now or utcnow()
    done = 0
    while True:
        with runtime.session_factory() as session:
            late = session.execute(
                select(ComplaintStep, Complaint)
                .join(Complaint, Complaint.id == ComplaintStep.complaint_id)
                .where(
                    ComplaintStep.done_at.is_(None),
                    ComplaintStep.escalated_at.is_(None),
                    ComplaintStep.due_at < now,
                )
                .order_by(ComplaintStep.due_at, ComplaintStep.complaint_id)
                .limit(CHUNK)
            ).all()
            if not late:
                return done
            for step, complaint in late:
                if _mark_escalated(session, step, now):
                    _record_escalation(
                        runtime.recorder,
                        session,
                        complaint,
                        EscalationReason.late,
                        Step(step.step),
                        step.owner_id,
                        step.due_at,
                        now,
                    )
                    done += 1
            session.commit()
            if len(late) < CHUNK:
                if done:
                    log.info("late complaint steps escalated", extra={"escalated": done})
                return done


def _mark_escalated(session: Session, step: ComplaintStep, now: datetime) -> bool:
    """Mark the step escalated unless it was done or escalated meanwhile (the update says which);
    the complaint's first escalation is kept without moving its version."""
    marked = session.execute(
        update(ComplaintStep)
        .where(
            ComplaintStep.complaint_id == step.complaint_id,
            ComplaintStep.step == step.step,
            ComplaintStep.done_at.is_(None),
            ComplaintStep.escalated_at.is_(None),
        )
        .values(escalated_at=now, escalation_reason=EscalationReason.late.value)
        .execution_options(synchronize_session=False)
    )
    if cast("CursorResult[Any]", marked).rowcount != 1:
        return False
    session.execute(
        update(Complaint)
        .where(Complaint.id == step.complaint_id, Complaint.escalated_at.is_(None))
        .values(escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    return True


# -- the report by branch -----------------------------------------------------------------------
def report_scope(caller: Caller, org_unit: str | None) -> str:
    """The subtree the caller's report covers: heads their own (or a part of it), auditors and
    administrators any."""
    scope = (org_unit or caller.org_unit).rstrip("/") or "/"
    if not access.may_read_unit(caller, scope):
        raise Forbidden(
            "the complaints report is read by heads and line departments of the subtree, "
            f"auditors and administrators; {scope} is outside your scope"
        )
    return scope


def period_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """The UTC instants from the start of ``date_from`` to the end of ``date_to`` (business
    dates, Asia/Shanghai)."""
    if date_to < date_from:
        raise ValidationFailed(
            "the period ends before it starts",
            errors=[{"field": "to", "reason": "before from"}],
        )
    start = datetime.combine(date_from, time.min, BUSINESS_TZ).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, BUSINESS_TZ).astimezone(UTC)
    return start, end


def _counts_query(scope: str, start: datetime, end: datetime, now: datetime) -> Select[Any]:
    late_step = exists().where(
        ComplaintStep.complaint_id == Complaint.id,
        ComplaintStep.due_at.is_not(None),
        or_(
            ComplaintStep.done_at > ComplaintStep.due_at,
            and_(ComplaintStep.done_at.is_(None), ComplaintStep.due_at < now),
        ),
    )

    def count_if(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0))

    columns = [
        func.count().label("complaints"),
        *(count_if(Complaint.status == s.value).label(s.value) for s in STATUSES),
        count_if(late_step).label("late"),
        count_if(Complaint.escalated_at.is_not(None)).label("escalated"),
        count_if(Complaint.outcome == "retained").label("retained"),
        count_if(Complaint.outcome == "lost").label("lost"),
    ]
    query = select(Complaint.org_unit, *columns).where(
        Complaint.recorded_at >= start, Complaint.recorded_at < end
    )
    if scope != "/":
        query = query.where(in_subtree(Complaint.org_unit, scope))
    return query.group_by(Complaint.org_unit).order_by(Complaint.org_unit)


def _branch(org_unit: str, row: dict[str, Any]) -> BranchCounts:
    by_status = StatusCounts(**{s.value: int(row.get(s.value) or 0) for s in STATUSES})
    by_step = StepCounts(
        **{step.value: getattr(by_status, status.value) for status, step in STEP_AFTER.items()}
    )
    return BranchCounts(
        org_unit=org_unit,
        complaints=int(row["complaints"] or 0),
        open=int(row["complaints"] or 0) - by_status.closed,
        by_status=by_status,
        by_step=by_step,
        late=int(row["late"] or 0),
        escalated=int(row["escalated"] or 0),
        retained=int(row["retained"] or 0),
        lost=int(row["lost"] or 0),
    )


def complaints_report(
    session: Session,
    caller: Caller,
    org_unit: str | None,
    date_from: date,
    date_to: date,
    now: datetime,
) -> ComplaintsReport:
    """The complaints recorded in the period for customers of the subtree, counted per org unit
    (the customer's when recorded) and in total: by status and by the step waited for, late (a
    step done after its deadline or undone past it at ``now``), escalated, retained and lost."""
    scope = report_scope(caller, org_unit)
    start, end = period_bounds(date_from, date_to)
    rows = session.execute(_counts_query(scope, start, end, now)).mappings().all()
    branches = [_branch(row["org_unit"], dict(row)) for row in rows]
    totals: dict[str, Any] = {
        name: sum(int(row[name] or 0) for row in rows)
        for name in ("complaints", *(s.value for s in STATUSES), "late", "escalated")
    }
    totals["retained"] = sum(int(row["retained"] or 0) for row in rows)
    totals["lost"] = sum(int(row["lost"] or 0) for row in rows)
    return ComplaintsReport(
        org_unit=scope,
        date_from=date_from,
        date_to=date_to,
        as_of=now,
        branches=branches,
        total=_branch(scope, totals),
    )


REPORT_COLUMNS = [
    "Org unit (机构)",
    "Complaints (投诉数)",
    "Open (未结)",
    "Recorded (已记录)",
    "Accepted (已受理)",
    "Analysed (已分析)",
    "Handled (已处理)",
    "Feedback given (已反馈)",
    "Closed (已结案)",
    "Late (超时)",
    "Escalated (升级)",
    "Retained (挽回)",
    "Lost (流失)",
]


def report_csv(report: ComplaintsReport) -> str:
    """The report as CSV for Excel: one row per org unit, then the total."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REPORT_COLUMNS)
    for branch in [*report.branches, report.total]:
        label = branch.org_unit if branch is not report.total else f"Total (合计) {branch.org_unit}"
        s = branch.by_status
        writer.writerow(
            [
                csv_cell(value)
                for value in (
                    label,
                    branch.complaints,
                    branch.open,
                    s.recorded,
                    s.accepted,
                    s.analysed,
                    s.handled,
                    s.feedback_given,
                    s.closed,
                    branch.late,
                    branch.escalated,
                    branch.retained,
                    branch.lost,
                )
            ]
        )
    return BOM + buffer.getvalue()
