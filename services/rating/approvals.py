"""Approval of credit limits 审议审批: review, decision within the authority matrix, the credit
committee above its line, deadlines 限时办结 and expiry.

The matrix, the committee's rules and the deadlines are data (``policy/authority/<effective
date>.json``, the version in force on the business date of the step). A limit moves
``proposed`` → ``reviewed`` (or ``committee`` when the committee decides it) → ``approved`` or
``rejected``; every move is a :class:`CreditLimitStep` and an event in the same transaction, and
the ``version`` column makes of two decisions at once exactly one succeed.

Four eyes 审贷分离: the proposer never reviews or decides their own proposal, and the reviewer
never decides alone what they reviewed, so a single approval takes three people.
"""

from __future__ import annotations

import calendar
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import case, exists, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit.auth import Caller
from crmkit.clock import BUSINESS_TZ, business_today
from crmkit.db import count_rows, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound
from crmkit.outbox import EventRecorder
from crmkit.policy import load_policy_file
from crmkit.runtime import ServiceRuntime
from services.rating import access, events
from services.rating.models import CreditLimit, CreditLimitStep, customer_refs
from services.rating.scoring import GRADES

log = logging.getLogger(__name__)

POLICY_DIR = Path(__file__).with_name("policy") / "authority"
# Status of a limit.
PROPOSED, REVIEWED, COMMITTEE = "proposed", "reviewed", "committee"
APPROVED, REJECTED, EXPIRED, SUPERSEDED = "approved", "rejected", "expired", "superseded"
# The step each undecided status waits for.
WAITING_STEP = {PROPOSED: "review", REVIEWED: "approve", COMMITTEE: "committee"}
LATE_PREFIX = "late:"
SYSTEM = "system"
# Rows the sweep handles per transaction.
CHUNK = 500


class AuthorityPolicyError(ValueError):
    """An authority policy file that cannot be used."""


# -- the policy ---------------------------------------------------------------------------------
class Share(BaseModel):
    """A fraction such as two thirds; reached when part / whole is at least it."""

    model_config = ConfigDict(extra="forbid")

    numerator: int = Field(ge=1)
    denominator: int = Field(ge=1)

    @model_validator(mode="after")
    def _proper(self) -> Share:
        if self.numerator > self.denominator:
            raise ValueError("a share is at most one whole")
        return self

    def reached_by(self, part: int, whole: int) -> bool:
        """``part / whole >= numerator / denominator``, in integers (no rounding)."""
        return whole > 0 and part * self.denominator >= self.numerator * whole

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


class Authority(BaseModel):
    """One line of the matrix: a role at an org level decides limits up to ``max_amount``."""

    model_config = ConfigDict(extra="forbid")

    role: str
    level: Literal["outlet", "branch", "head_office"]
    max_amount: Decimal = Field(gt=0, max_digits=18, decimal_places=2)
    title: str = Field(min_length=1)


class CommitteeRules(BaseModel):
    """When the credit committee decides, and how (审批议事规则)."""

    model_config = ConfigDict(extra="forbid")

    line: Decimal = Field(gt=0, max_digits=18, decimal_places=2)
    refer_grades: list[str] = Field(default_factory=list)
    min_members: int = Field(ge=1)
    quorum_min_votes: int = Field(ge=1)
    quorum_share: Share
    pass_share: Share


class DeadlineDays(BaseModel):
    """Calendar days each step may take from its start."""

    model_config = ConfigDict(extra="forbid")

    review: int = Field(ge=1)
    approve: int = Field(ge=1)
    committee: int = Field(ge=1)


class AuthorityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: str
    effective_from: date
    description: str
    authorities: list[Authority] = Field(min_length=1)
    committee: CommitteeRules
    deadline_days: DeadlineDays

    @model_validator(mode="after")
    def _sound(self) -> AuthorityPolicy:
        unknown = {a.role for a in self.authorities} - access.APPROVERS
        if unknown:
            raise ValueError(f"roles that are not approvers: {sorted(unknown)}")
        lines = [(a.role, a.level) for a in self.authorities]
        if len(lines) != len(set(lines)):
            raise ValueError("one authority per role and level")
        grades = set(self.committee.refer_grades) - set(GRADES)
        if grades:
            raise ValueError(f"unknown grades: {sorted(grades)}")
        if self.committee.quorum_min_votes > self.committee.min_members:
            raise ValueError("quorum_min_votes cannot exceed min_members")
        return self


@cache
def policies(directory: Path = POLICY_DIR) -> tuple[AuthorityPolicy, ...]:
    """Every version of the authority policy, oldest first."""
    found = [
        load_policy_file(path, AuthorityPolicy, "authority policy", AuthorityPolicyError)
        for path in sorted(directory.glob("*.json"))
    ]
    if not found:
        raise AuthorityPolicyError(f"no authority policy in {directory}")
    return tuple(sorted(found, key=lambda p: p.effective_from))


def policy_on(day: date, directory: Path = POLICY_DIR) -> AuthorityPolicy:
    """The policy in force on ``day`` (the latest effective on or before it)."""
    in_force = [p for p in policies(directory) if p.effective_from <= day]
    if not in_force:
        raise AuthorityPolicyError(f"no authority policy in force on {day}")
    return in_force[-1]


def cny(amount: Decimal) -> str:
    """An amount as people read it: ``2,000,000.00``."""
    return f"{amount:,.2f}"


# -- deadlines and dates ------------------------------------------------------------------------
def step_due(step: str, start: datetime) -> datetime:
    """When a step (review, approve, committee) started at ``start`` is due (限时办结): the
    policy's days for it, by the policy in force on the business date of ``start``."""
    days = policy_on(start.astimezone(BUSINESS_TZ).date()).deadline_days
    if step not in DeadlineDays.model_fields:
        raise ValueError(f"no deadline for the step {step!r}")
    return start + timedelta(days=int(getattr(days, step)))


def expiry_of(start: date, term_months: int) -> date:
    """The last day a limit of ``term_months`` starting on ``start`` is in force: start plus the
    term, less a day (the day of month kept, or the month's last day where it has none)."""
    months = start.month - 1 + term_months
    year, month = start.year + months // 12, months % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day) - timedelta(days=1)


# -- who decides --------------------------------------------------------------------------------
def authority_of(caller: Caller, policy: AuthorityPolicy) -> Authority | None:
    """The caller's highest authority: of their roles, at the level of their own org unit."""
    level = access.org_level(caller.org_unit)
    held = [a for a in policy.authorities if a.level == level and caller.has_role(a.role)]
    return max(held, key=lambda a: a.max_amount, default=None)


def committee_reason(limit: CreditLimit, policy: AuthorityPolicy) -> str | None:
    """Why the credit committee decides ``limit``, or None when a single approver may."""
    rules = policy.committee
    if limit.total_amount > rules.line:
        return (
            f"the limit of {cny(limit.total_amount)} CNY is above the committee line of "
            f"{cny(rules.line)} CNY"
        )
    if limit.grade in rules.refer_grades:
        return f"limits of grade {limit.grade} go to the credit committee"
    return None


def _check_authority(caller: Caller, limit: CreditLimit, policy: AuthorityPolicy) -> None:
    """403 naming the caller's authority and the amount when the limit is beyond it."""
    authority = authority_of(caller, policy)
    level = access.org_level(caller.org_unit)
    if authority is None:
        raise Forbidden(
            f"you hold no delegated credit authority at {level} level in the authority matrix "
            f"{policy.version} (your roles: {', '.join(sorted(caller.roles))})",
            total_amount=f"{limit.total_amount:.2f}",
        )
    if limit.total_amount > authority.max_amount:
        raise Forbidden(
            f"the limit of {cny(limit.total_amount)} CNY exceeds your authority as "
            f"{authority.title} ({authority.role} at {authority.level} level): up to "
            f"{cny(authority.max_amount)} CNY",
            authority=f"{authority.role}@{authority.level}",
            max_amount=f"{authority.max_amount:.2f}",
            total_amount=f"{limit.total_amount:.2f}",
        )


def customer_unit(session: Session, limit: CreditLimit) -> str:
    """The customer's org unit now (this service's copy), else the one at the proposal."""
    unit = session.execute(
        select(customer_refs.c.org_unit).where(customer_refs.c.customer_id == limit.customer_id)
    ).scalar_one_or_none()
    return str(unit) if unit is not None else limit.org_unit


def require_decider(session: Session, caller: Caller, limit: CreditLimit, action: str) -> None:
    """403 unless the caller is an approver of the customer's subtree (or an administrator)."""
    unit = customer_unit(session, limit)
    if not access.may_decide(caller, unit):
        raise Forbidden(
            f"only an approver of the customer's org subtree ({unit}) may {action} this limit"
        )


def load_limit(session: Session, limit_id: str) -> CreditLimit:
    limit = session.get(CreditLimit, limit_id)
    if limit is None:
        raise NotFound(f"no credit limit {limit_id}")
    return limit


def readable_limit(session: Session, limit_id: str, caller: Caller) -> CreditLimit:
    """The limit, when the caller may read the customer's limits (``access.may_read``)."""
    limit = load_limit(session, limit_id)
    unit = customer_unit(session, limit)
    if not access.may_read(session, caller, limit.customer_id, unit):
        raise Forbidden(
            f"you may not read the limits of customer {limit.customer_id}: you neither serve it "
            f"nor read the limits of its org subtree ({unit})"
        )
    return limit


def next_step(limit: CreditLimit) -> str | None:
    """The step the limit waits for; None once decided."""
    return WAITING_STEP.get(limit.status)


# -- steps and writes ---------------------------------------------------------------------------
def add_step(
    session: Session,
    limit: CreditLimit,
    step: str,
    actor: str,
    at: datetime,
    *,
    note: str | None = None,
    due_at: datetime | None = None,
) -> CreditLimitStep:
    """Record one step; it is late when done after its deadline."""
    row = CreditLimitStep(
        credit_limit_id=limit.id,
        step=step,
        actor=actor,
        at=at,
        note=note,
        due_at=due_at,
        late=due_at is not None and at > due_at,
    )
    session.add(row)
    return row


def flush_or_conflict(session: Session, limit_id: str) -> None:
    """Write the changes now: of two decisions on one limit at once, the one whose update finds
    the version changed loses (409) and nothing of it is kept."""
    try:
        session.flush()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict(f"credit limit {limit_id} was changed concurrently; read it again") from exc


def review_note(recommendation: str, opinion: str) -> str:
    """The review step's note: the recommendation, then the opinion."""
    return f"{recommendation}: {opinion}"


def recommendation_of(note: str | None) -> str | None:
    """The recommendation a review step's note starts with (see :func:`review_note`)."""
    head = (note or "").split(":", 1)[0]
    return head if head in ("approve", "reject") else None


def review(
    session: Session,
    recorder: EventRecorder,
    limit_id: str,
    opinion: str,
    recommendation: str,
    caller: Caller,
) -> CreditLimit:
    """Examine a proposed limit 审查 as an approver of the customer's subtree who did not propose
    it. It then waits for an approver within authority, or for the credit committee when the
    policy says so (``credit_limit.referred`` is recorded too)."""
    limit = load_limit(session, limit_id)
    require_decider(session, caller, limit, "review")
    if limit.status != PROPOSED:
        raise Conflict(
            f"credit limit {limit_id} is {limit.status}; only a proposed limit is reviewed"
        )
    if caller.subject == limit.proposed_by:
        raise Forbidden("you proposed this limit: a proposer never reviews their own proposal")
    now = utcnow()
    policy = policy_on(business_today())
    referral = committee_reason(limit, policy)
    following = "committee" if referral else "approve"
    add_step(
        session,
        limit,
        "review",
        caller.subject,
        now,
        note=review_note(recommendation, opinion),
        due_at=limit.step_due_at,
    )
    limit.status = COMMITTEE if referral else REVIEWED
    limit.reviewed_by, limit.reviewed_at, limit.review_opinion = caller.subject, now, opinion
    due_at = step_due(following, now)
    limit.step_due_at = due_at
    if referral:
        add_step(session, limit, "refer", caller.subject, now, note=referral)
    flush_or_conflict(session, limit_id)
    due = due_at.isoformat()
    recorder.record(
        session,
        events.CREDIT_LIMIT_REVIEWED,
        {
            "customer_id": limit.customer_id,
            "credit_limit_id": limit.id,
            "reviewed_by": caller.subject,
            "opinion": opinion,
            "recommendation": recommendation,
            "next_step": following,
            "step_due_at": due,
        },
        key=limit.customer_id,
        actor=caller.subject,
    )
    if referral:
        recorder.record(
            session,
            events.CREDIT_LIMIT_REFERRED,
            {
                "customer_id": limit.customer_id,
                "credit_limit_id": limit.id,
                "total_amount": f"{limit.total_amount:.2f}",
                "committee_line": f"{policy.committee.line:.2f}",
                "step_due_at": due,
            },
            key=limit.customer_id,
            actor=caller.subject,
        )
    session.commit()
    return limit


def _check_single_decision(
    session: Session, caller: Caller, limit: CreditLimit, policy: AuthorityPolicy
) -> None:
    """What a single approver's decision needs: a reviewed limit the committee does not decide,
    a third person (neither proposer nor reviewer), and authority over its amount."""
    require_decider(session, caller, limit, "decide")
    if limit.status == COMMITTEE:
        why = committee_reason(limit, policy) or "it was referred to the committee"
        raise Conflict(
            f"credit limit {limit.id} is for the credit committee to decide ({why}); "
            "a single approver may not"
        )
    if limit.status != REVIEWED:
        raise Conflict(
            f"credit limit {limit.id} is {limit.status}; only a reviewed limit is decided"
        )
    if caller.subject == limit.proposed_by:
        raise Forbidden("you proposed this limit: a proposer never decides their own proposal")
    if caller.subject == limit.reviewed_by:
        raise Forbidden(
            "you reviewed this limit: the reviewer never decides it too (审贷分离, four eyes)"
        )
    reason = committee_reason(limit, policy)
    if reason is not None:
        raise Conflict(
            f"credit limit {limit.id} must go through the credit committee: {reason}",
            committee_line=f"{policy.committee.line:.2f}",
        )
    _check_authority(caller, limit, policy)


def approve(
    session: Session, recorder: EventRecorder, limit_id: str, note: str | None, caller: Caller
) -> CreditLimit:
    """Approve a reviewed limit within the caller's authority 审批."""
    limit = load_limit(session, limit_id)
    _check_single_decision(session, caller, limit, policy_on(business_today()))
    return approve_limit(
        session, recorder, limit, decided_by=caller.subject, note=note, by_committee=False
    )


def reject(
    session: Session, recorder: EventRecorder, limit_id: str, reason: str, caller: Caller
) -> CreditLimit:
    """Reject a reviewed limit within the caller's authority (the decision on an amount belongs
    to who may approve it)."""
    limit = load_limit(session, limit_id)
    _check_single_decision(session, caller, limit, policy_on(business_today()))
    return reject_limit(
        session, recorder, limit, decided_by=caller.subject, reason=reason, by_committee=False
    )


def approve_limit(
    session: Session,
    recorder: EventRecorder,
    limit: CreditLimit,
    *,
    decided_by: str,
    note: str | None,
    by_committee: bool,
) -> CreditLimit:
    """Put ``limit`` in force from today's business date to the end of its term; the customer's
    earlier approved limit is superseded. Records ``credit_limit.approved`` and commits."""
    now, today = utcnow(), business_today()
    limit_id = limit.id
    add_step(session, limit, "approve", decided_by, now, note=note, due_at=limit.step_due_at)
    limit.status = APPROVED
    limit.decided_by, limit.decided_at, limit.decision_note = decided_by, now, note
    limit.start_date, limit.expiry_date = today, expiry_of(today, limit.term_months)
    limit.step_due_at = None
    flush_or_conflict(session, limit_id)  # the decision first: of two at once, one wins here
    earlier = session.scalars(
        select(CreditLimit).where(
            CreditLimit.customer_id == limit.customer_id,
            CreditLimit.status == APPROVED,
            CreditLimit.id != limit.id,
        )
    ).all()
    for old in earlier:
        old.status = SUPERSEDED
        add_step(session, old, "supersede", decided_by, now, note=f"superseded by {limit.id}")
    flush_or_conflict(session, limit_id)
    recorder.record(
        session,
        events.CREDIT_LIMIT_APPROVED,
        {
            "customer_id": limit.customer_id,
            "credit_limit_id": limit.id,
            "grade": limit.grade,
            "total_amount": f"{limit.total_amount:.2f}",
            "credit_amount": f"{limit.credit_amount:.2f}",
            "guaranteed_amount": f"{limit.guaranteed_amount:.2f}",
            "secured_amount": f"{limit.secured_amount:.2f}",
            "sub_limits": [
                {"product": str(s["product"]), "amount": f"{Decimal(str(s['amount'])):.2f}"}
                for s in limit.sub_limits
            ],
            "revolving": limit.revolving,
            "start_date": today.isoformat(),
            "expiry_date": limit.expiry_date.isoformat(),
            "decided_by": decided_by,
            "by_committee": by_committee,
        },
        key=limit.customer_id,
        actor=decided_by,
    )
    session.commit()
    return limit


def reject_limit(
    session: Session,
    recorder: EventRecorder,
    limit: CreditLimit,
    *,
    decided_by: str,
    reason: str,
    by_committee: bool,
) -> CreditLimit:
    """Reject ``limit`` with ``reason``; records ``credit_limit.rejected`` and commits."""
    now = utcnow()
    limit_id = limit.id
    add_step(session, limit, "reject", decided_by, now, note=reason, due_at=limit.step_due_at)
    limit.status = REJECTED
    limit.decided_by, limit.decided_at, limit.decision_note = decided_by, now, reason
    limit.step_due_at = None
    flush_or_conflict(session, limit_id)
    recorder.record(
        session,
        events.CREDIT_LIMIT_REJECTED,
        {
            "customer_id": limit.customer_id,
            "credit_limit_id": limit.id,
            "reason": reason,
            "decided_by": decided_by,
            "by_committee": by_committee,
        },
        key=limit.customer_id,
        actor=decided_by,
    )
    session.commit()
    return limit


def list_steps(
    session: Session, limit_id: str, caller: Caller, limit: int, offset: int
) -> tuple[list[CreditLimitStep], int]:
    """The recorded steps of a limit the caller may read, in the order they happened."""
    readable_limit(session, limit_id, caller)
    query = select(CreditLimitStep).where(CreditLimitStep.credit_limit_id == limit_id)
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(CreditLimitStep.at, CreditLimitStep.id).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


# -- the sweep ----------------------------------------------------------------------------------
def sweep(runtime: ServiceRuntime) -> None:
    """Expire approved limits past their date and report steps past their deadline. Safe to
    run again at any time: what it did is recorded, so it is not done twice."""
    expired = expire_limits(runtime)
    late = report_late_steps(runtime)
    if expired or late:
        log.info("limits swept", extra={"expired": expired, "late_steps": late})


def expire_limits(runtime: ServiceRuntime, today: date | None = None) -> int:
    """Approved limits whose expiry date is before today's business date become ``expired``
    (``credit_limit.expired``), a chunk per transaction; the count done."""
    today = today or business_today()
    done = 0
    while True:
        with runtime.session_factory() as session:
            due = session.scalars(
                select(CreditLimit)
                .where(CreditLimit.status == APPROVED, CreditLimit.expiry_date < today)
                .order_by(CreditLimit.expiry_date, CreditLimit.id)
                .limit(CHUNK)
            ).all()
            if not due:
                return done
            now = utcnow()
            for limit in due:
                limit.status = EXPIRED
                add_step(
                    session, limit, "expire", SYSTEM, now, note=f"expired after {limit.expiry_date}"
                )
                runtime.recorder.record(
                    session,
                    events.CREDIT_LIMIT_EXPIRED,
                    {
                        "customer_id": limit.customer_id,
                        "credit_limit_id": limit.id,
                        "expiry_date": str(limit.expiry_date),
                    },
                    key=limit.customer_id,
                    actor=SYSTEM,
                )
            try:
                session.commit()
            except StaleDataError:
                # A limit of the chunk was superseded meanwhile: the next run finds the rest.
                session.rollback()
                log.warning("expiry chunk changed concurrently; left for the next run")
                return done
            done += len(due)
            if len(due) < CHUNK:
                return done


def report_late_steps(runtime: ServiceRuntime, now: datetime | None = None) -> int:
    """Record ``credit_limit.step_late`` once for each step waited for past its deadline; a
    ``late:<step>`` step row marks it reported. The count reported."""
    now = now or utcnow()
    marker = case(
        *(
            (CreditLimit.status == status, LATE_PREFIX + step)
            for status, step in WAITING_STEP.items()
        )
    )
    reported = exists().where(
        CreditLimitStep.credit_limit_id == CreditLimit.id, CreditLimitStep.step == marker
    )
    done = 0
    while True:
        with runtime.session_factory() as session:
            late = session.scalars(
                select(CreditLimit)
                .where(
                    CreditLimit.status.in_(list(WAITING_STEP)),
                    CreditLimit.step_due_at < now,
                    ~reported,
                )
                .order_by(CreditLimit.step_due_at, CreditLimit.id)
                .limit(CHUNK)
            ).all()
            if not late:
                return done
            at = utcnow()
            for limit in late:
                step = WAITING_STEP[limit.status]
                due_at = limit.step_due_at or now
                session.add(
                    CreditLimitStep(
                        credit_limit_id=limit.id,
                        step=LATE_PREFIX + step,
                        actor=SYSTEM,
                        at=at,
                        note=f"{step} was due at {due_at.isoformat()}",
                        due_at=due_at,
                        late=True,
                    )
                )
                runtime.recorder.record(
                    session,
                    events.CREDIT_LIMIT_STEP_LATE,
                    {
                        "customer_id": limit.customer_id,
                        "credit_limit_id": limit.id,
                        "step": step,
                        "due_at": due_at.isoformat(),
                        "org_unit": limit.org_unit,
                    },
                    key=limit.customer_id,
                    actor=SYSTEM,
                )
            session.commit()
            done += len(late)
            if len(late) < CHUNK:
                return done
