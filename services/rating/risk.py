"""Early warning 风险识别与预警: a risk status per customer, from signals and by hand.

A flag is raised by a signal of the figures or grades, or by a staff member, and stays open until
it is cleared: by the system when its signal went away, or by hand. A customer's risk status is
the most serious level of its open flags (``none`` without one); it is kept in ``customer_risk``
in the transaction that raises or clears a flag, and every raise or clear records
``risk.flagged`` / ``risk.cleared`` with the status after the change. The signals and their
thresholds are policy (``policy/risk/<effective date>.json``):

- overdue 逾期: a snapshot with an overdue amount raises a ``warning`` (``severe`` above the
  policy's amount); overdue back to zero clears it. A more serious level replaces the open flag;
  a lower overdue amount keeps the more serious flag open until the overdue is gone.
- sharp balance drop 存款大幅下降: deposits fell by the policy's ratio from the previous snapshot,
  which held at least the policy's floor; the flag clears when deposits are back above that
  ratio of the balance before the drop.
- downgrade 评级下调: a confirmed grade below the one before; ``warning`` by enough notches or to
  the policy's grades. Counted from the grade before the downgrade while the flag is open, so
  successive downgrades add up; a confirmed grade back at or above it clears the flag.

At most one signal flag per customer and signal is open (a partial unique index backs it); flags
raised by hand are as many as staff raise. A signal flag cleared by hand is not raised again by
the same episode: an overdue flag cleared by hand comes back only at a more serious level or
after the overdue was once repaid (``customer_risk.dismissed``); a balance drop or downgrade
comes back only with a new drop or downgrade.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import case, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.clock import business_today
from crmkit.db import count_rows, in_subtree, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound
from crmkit.outbox import recorder_of
from crmkit.policy import load_policy_file
from services.rating import access, events
from services.rating.models import Base, CustomerFigures, customer_refs, owner_refs
from services.rating.models_risk import CustomerRisk, RiskFlag
from services.rating.schemas_risk import FlagSignal, FlagSource, FlagStatus, RiskLevel, RiskStatus

POLICY_DIR = Path(__file__).with_name("policy") / "risk"
SYSTEM = "system"
LEVELS: tuple[str, ...] = tuple(level.value for level in RiskLevel)  # least serious first
NONE = RiskStatus.none.value
OPEN, CLEARED = FlagStatus.open.value, FlagStatus.cleared.value
SIGNAL, MANUAL = FlagSource.signal.value, FlagSource.manual.value
OVERDUE = FlagSignal.overdue.value
BALANCE_DROP = FlagSignal.balance_drop.value
DOWNGRADE = FlagSignal.downgrade.value
SIGNAL_ORDER: tuple[str, ...] = tuple(signal.value for signal in FlagSignal)
ZERO = Decimal("0.00")


class RiskPolicyError(ValueError):
    """A risk policy file that cannot be used."""


# -- the policy ---------------------------------------------------------------------------------
class OverdueRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warning_above: Decimal = Field(ge=0)
    severe_above: Decimal = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> OverdueRule:
        if self.severe_above < self.warning_above:
            raise ValueError("severe_above is below warning_above")
        return self


class BalanceDropRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_drop_ratio: Decimal = Field(gt=0, le=1)
    min_previous_deposits: Decimal = Field(ge=0)
    level: RiskLevel


class DowngradeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: RiskLevel
    warning_level: RiskLevel
    warning_notches: int = Field(ge=1)
    warning_grades: list[str]


class RiskPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    effective_from: date
    description: str
    grades: list[str] = Field(min_length=2, description="Credit grades, highest first")
    overdue: OverdueRule
    balance_drop: BalanceDropRule
    downgrade: DowngradeRule

    @model_validator(mode="after")
    def _sound(self) -> RiskPolicy:
        if len(set(self.grades)) != len(self.grades):
            raise ValueError("a grade is listed twice")
        unknown = set(self.downgrade.warning_grades) - set(self.grades)
        if unknown:
            raise ValueError(f"warning_grades that are no grade: {', '.join(sorted(unknown))}")
        return self

    def overdue_level(self, amount: Decimal) -> str | None:
        """The level an overdue amount raises; None when it raises none."""
        if amount <= self.overdue.warning_above:
            return None
        return "severe" if amount > self.overdue.severe_above else "warning"

    def notches(self, before: str, after: str) -> int:
        """How many grades ``after`` lies below ``before`` (negative: above)."""
        for grade in (before, after):
            if grade not in self.grades:
                raise ValueError(f"{grade} is not a grade of risk policy {self.version}")
        return self.grades.index(after) - self.grades.index(before)

    def downgrade_level(self, notches: int, grade: str) -> str:
        rule = self.downgrade
        serious = notches >= rule.warning_notches or grade in rule.warning_grades
        return (rule.warning_level if serious else rule.level).value


@cache
def policies(directory: Path = POLICY_DIR) -> tuple[RiskPolicy, ...]:
    found = [
        load_policy_file(path, RiskPolicy, "risk policy", RiskPolicyError)
        for path in sorted(directory.glob("*.json"))
    ]
    if not found:
        raise RiskPolicyError(f"no risk policy in {directory}")
    return tuple(sorted(found, key=lambda p: p.effective_from))


def policy_on(day: date, directory: Path = POLICY_DIR) -> RiskPolicy:
    """The policy in force on ``day`` (the latest effective on or before it)."""
    in_force = [p for p in policies(directory) if p.effective_from <= day]
    if not in_force:
        raise RiskPolicyError(f"no risk policy in force on {day}")
    return in_force[-1]


def rank(level: str) -> int:
    """How serious a level or status is: -1 for ``none``, then watch < warning < severe."""
    return LEVELS.index(level) if level in LEVELS else -1


def drop_ratio(before: Decimal, after: Decimal) -> Decimal:
    """The share of ``before`` that is gone in ``after`` (0 when nothing was there or it grew)."""
    if before <= 0 or after >= before:
        return Decimal(0)
    return (before - after) / before


# -- one change of a customer's flags -----------------------------------------------------------
@dataclass
class Change:
    """The flags one use case raises and clears for one customer, under the lock of its status
    row. The events are recorded at the end, all with the status after the whole change."""

    state: CustomerRisk
    org_unit: str
    now: datetime
    done: list[tuple[str, RiskFlag]] = field(default_factory=list)


def _unit_of(session: Session, customer_id: str) -> str | None:
    """The customer's org unit from this service's copy; None when not known here yet."""
    return session.execute(
        select(customer_refs.c.org_unit).where(customer_refs.c.customer_id == customer_id)
    ).scalar_one_or_none()


def _begin(session: Session, customer_id: str, org_unit: str) -> Change:
    """Lock the customer's status row (made when missing), so changes of one customer's flags
    are serialised: each sees the flags the one before it left."""
    made = utcnow()
    table = Base.metadata.tables[CustomerRisk.__tablename__]
    insert_ = (
        postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    )
    session.execute(
        insert_(table)
        .values(customer_id=customer_id, status=NONE, since=made, dismissed={}, updated_at=made)
        .on_conflict_do_nothing(index_elements=["customer_id"])
    )
    state = session.scalars(
        select(CustomerRisk)
        .where(CustomerRisk.customer_id == customer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return Change(state, org_unit, utcnow())  # taken under the lock: times follow the order


def _open_signal(session: Session, customer_id: str, signal: str) -> RiskFlag | None:
    return session.scalars(
        select(RiskFlag).where(
            RiskFlag.customer_id == customer_id,
            RiskFlag.signal == signal,
            RiskFlag.source == SIGNAL,
            RiskFlag.status == OPEN,
        )
    ).one_or_none()


def _raise(
    session: Session,
    change: Change,
    *,
    level: str,
    source: str,
    signal: str,
    reason: str,
    by: str,
    basis: dict[str, Any] | None = None,
) -> RiskFlag:
    flag = RiskFlag(
        id=str(uuid.uuid4()),
        customer_id=change.state.customer_id,
        org_unit=change.org_unit,
        level=level,
        source=source,
        signal=signal,
        reason=reason,
        basis=basis,
        raised_by=by,
        raised_at=change.now,
        status=OPEN,
    )
    session.add(flag)
    change.done.append(("flagged", flag))
    return flag


def _clear(session: Session, change: Change, flag: RiskFlag, *, by: str, reason: str) -> None:
    flag.status = CLEARED
    flag.cleared_by, flag.cleared_at, flag.cleared_reason = by, change.now, reason
    session.flush()  # before a new flag of the same signal is inserted (the unique index)
    change.done.append(("cleared", flag))


def _replace(
    session: Session,
    change: Change,
    old: RiskFlag,
    *,
    level: str,
    reason: str,
    basis: dict[str, Any],
) -> None:
    """A signal now more serious: its open flag is cleared and one of the new level raised."""
    _clear(session, change, old, by=SYSTEM, reason=f"Replaced by a {level} flag: {reason}")
    _raise(
        session,
        change,
        level=level,
        source=SIGNAL,
        signal=old.signal,
        reason=reason,
        by=SYSTEM,
        basis=basis,
    )


def _dismiss(change: Change, signal: str, level: str | None) -> None:
    dismissed = dict(change.state.dismissed or {})
    if level is None:
        dismissed.pop(signal, None)
    else:
        dismissed[signal] = level
    change.state.dismissed = dismissed  # a new dict: the JSON column sees the change


def _finish(session: Session, change: Change) -> str:
    """Keep the customer's status and record the events of the change; returns the status."""
    state = change.state
    session.flush()
    levels = session.scalars(
        select(RiskFlag.level).where(
            RiskFlag.customer_id == state.customer_id, RiskFlag.status == OPEN
        )
    ).all()
    status = max(levels, key=rank, default=NONE)
    if status != state.status:
        state.status, state.since = status, change.now
    state.updated_at = change.now
    recorder = recorder_of(session)
    for what, flag in change.done:
        if what == "flagged":
            recorder.record(
                session,
                events.RISK_FLAGGED,
                {
                    "customer_id": flag.customer_id,
                    "flag_id": flag.id,
                    "org_unit": change.org_unit,
                    "level": flag.level,
                    "source": flag.source,
                    "signal": flag.signal,
                    "reason": flag.reason,
                    "flagged_by": flag.raised_by,
                    "risk_status": status,
                },
                key=flag.customer_id,
                actor=flag.raised_by,
            )
        else:
            assert flag.cleared_by is not None and flag.cleared_reason is not None
            recorder.record(
                session,
                events.RISK_CLEARED,
                {
                    "customer_id": flag.customer_id,
                    "flag_id": flag.id,
                    "org_unit": change.org_unit,
                    "reason": flag.cleared_reason,
                    "cleared_by": flag.cleared_by,
                    "risk_status": status,
                },
                key=flag.customer_id,
                actor=flag.cleared_by,
            )
    return status


# -- signals ------------------------------------------------------------------------------------
def on_figures(session: Session, figures: CustomerFigures) -> None:
    """Raise or clear the signals the latest figures show (overdue, a sharp deposit drop).

    Runs in the consumer's transaction after a new snapshot; a customer not known here yet
    (no org unit) gets no flag. Most snapshots show no signal and find the customer without an
    open flag: they cost one read.
    """
    customer_id = figures.customer_id
    day = figures.business_date or business_today()
    policy = policy_on(day)
    overdue = figures.overdue_amount if figures.overdue_amount is not None else ZERO
    overdue_level = policy.overdue_level(overdue)
    dropped = _sharp_drop(policy, figures)
    if overdue_level is None and not dropped:
        state = session.get(CustomerRisk, customer_id)
        if state is None or (state.status == NONE and not state.dismissed):
            return
    unit = _unit_of(session, customer_id)
    if unit is None:
        return
    change = _begin(session, customer_id, unit)
    _overdue(session, change, policy, figures, overdue, overdue_level)
    _balance_drop(session, change, policy, figures, dropped)
    _finish(session, change)


def _overdue(
    session: Session,
    change: Change,
    policy: RiskPolicy,
    figures: CustomerFigures,
    amount: Decimal,
    level: str | None,
) -> None:
    day = figures.business_date.isoformat() if figures.business_date else "?"
    open_flag = _open_signal(session, figures.customer_id, OVERDUE)
    dismissed = (change.state.dismissed or {}).get(OVERDUE)
    if level is None:
        if open_flag is not None:
            reason = f"Overdue repaid: the overdue amount on {day} is {amount:.2f}"
            _clear(session, change, open_flag, by=SYSTEM, reason=reason)
        if dismissed is not None:
            _dismiss(change, OVERDUE, None)
        return
    reason = f"Overdue 逾期 of {amount:.2f} on {day}"
    if level == "severe":
        reason += f", above {policy.overdue.severe_above:.2f}"
    basis = {"business_date": day, "overdue_amount": f"{amount:.2f}"}
    if open_flag is not None:
        if rank(level) > rank(open_flag.level):
            _replace(session, change, open_flag, level=level, reason=reason, basis=basis)
        return
    if dismissed is not None and rank(level) <= rank(dismissed):
        return  # cleared by hand while overdue; back only when repaid once, or more serious
    _raise(
        session,
        change,
        level=level,
        source=SIGNAL,
        signal=OVERDUE,
        reason=reason,
        by=SYSTEM,
        basis=basis,
    )
    if dismissed is not None:
        _dismiss(change, OVERDUE, None)


def _sharp_drop(policy: RiskPolicy, figures: CustomerFigures) -> bool:
    before, after = figures.previous_deposits, figures.deposits
    if before is None or after is None:
        return False
    rule = policy.balance_drop
    return before >= rule.min_previous_deposits and drop_ratio(before, after) >= rule.min_drop_ratio


def _balance_drop(
    session: Session,
    change: Change,
    policy: RiskPolicy,
    figures: CustomerFigures,
    dropped: bool,
) -> None:
    rule = policy.balance_drop
    day = figures.business_date.isoformat() if figures.business_date else "?"
    deposits = figures.deposits if figures.deposits is not None else ZERO
    open_flag = _open_signal(session, figures.customer_id, BALANCE_DROP)
    if open_flag is not None:
        reference = Decimal((open_flag.basis or {}).get("previous_deposits", "0"))
        if drop_ratio(reference, deposits) < rule.min_drop_ratio:
            reason = (
                f"Deposits recovered to {deposits:.2f} on {day}, less than "
                f"{rule.min_drop_ratio:.0%} below {reference:.2f} before the drop"
            )
            _clear(session, change, open_flag, by=SYSTEM, reason=reason)
            open_flag = None
    if not dropped or open_flag is not None:
        return
    before = figures.previous_deposits
    assert before is not None  # a drop needs the previous figure
    previous_day = (
        figures.previous_business_date.isoformat() if figures.previous_business_date else "?"
    )
    reason = (
        f"Deposits fell by {drop_ratio(before, deposits):.1%}, from {before:.2f} on "
        f"{previous_day} to {deposits:.2f} on {day}"
    )
    _raise(
        session,
        change,
        level=rule.level.value,
        source=SIGNAL,
        signal=BALANCE_DROP,
        reason=reason,
        by=SYSTEM,
        basis={
            "previous_business_date": previous_day,
            "previous_deposits": f"{before:.2f}",
            "business_date": day,
            "deposits": f"{deposits:.2f}",
        },
    )


def on_grade_confirmed(
    session: Session, customer_id: str, previous_grade: str | None, grade: str
) -> None:
    """Raise the downgrade signal when a confirmed grade is lower than the one before.

    Runs in the transaction that confirms the grade (the caller commits). ``previous_grade`` is
    the customer's confirmed grade before this one (None for its first grade). While a downgrade
    flag is open, a further downgrade is counted from the grade before the first one and may make
    it more serious; a grade back at or above that grade clears it.
    """
    policy = policy_on(business_today())
    lower = previous_grade is not None and policy.notches(previous_grade, grade) > 0
    if not lower:
        policy.notches(grade, grade)  # an unknown grade is refused, not ignored
        state = session.get(CustomerRisk, customer_id)
        if state is None or state.status == NONE:
            return
    unit = _unit_of(session, customer_id)
    if unit is None:
        return
    change = _begin(session, customer_id, unit)
    open_flag = _open_signal(session, customer_id, DOWNGRADE)
    if open_flag is not None:
        from_grade = str((open_flag.basis or {})["from_grade"])
        notches = policy.notches(from_grade, grade)
        if notches <= 0:
            reason = f"Grade {grade} confirmed: back at or above {from_grade} before the downgrade"
            _clear(session, change, open_flag, by=SYSTEM, reason=reason)
        else:
            level = policy.downgrade_level(notches, grade)
            if rank(level) > rank(open_flag.level):
                reason = _downgrade_reason(from_grade, grade, notches)
                basis = {"from_grade": from_grade, "to_grade": grade}
                _replace(session, change, open_flag, level=level, reason=reason, basis=basis)
    elif lower:
        assert previous_grade is not None
        notches = policy.notches(previous_grade, grade)
        _raise(
            session,
            change,
            level=policy.downgrade_level(notches, grade),
            source=SIGNAL,
            signal=DOWNGRADE,
            reason=_downgrade_reason(previous_grade, grade, notches),
            by=SYSTEM,
            basis={"from_grade": previous_grade, "to_grade": grade},
        )
    _finish(session, change)


def _downgrade_reason(from_grade: str, grade: str, notches: int) -> str:
    unit = "notch" if notches == 1 else "notches"
    return f"Grade lowered 评级下调 from {from_grade} to {grade} ({notches} {unit})"


# -- by hand ------------------------------------------------------------------------------------
def flag_by_hand(
    session: Session, caller: Caller, customer_id: str, level: RiskLevel, reason: str
) -> RiskFlag:
    """Flag a customer by hand (its owner or serving managers, risk and internal-control staff
    and approvers of its subtree, administrators); commits."""
    unit = _unit_of(session, customer_id)
    if unit is None:
        raise NotFound(f"no customer {customer_id} (not known here yet)")
    if not access.may_flag(session, caller, customer_id, unit):
        raise Forbidden(
            f"you may not flag customer {customer_id}: its owner and serving managers, risk and "
            f"internal-control staff and approvers of {unit}, and administrators flag it"
        )
    change = _begin(session, customer_id, unit)
    flag = _raise(
        session,
        change,
        level=level.value,
        source=MANUAL,
        signal=FlagSignal.manual.value,
        reason=reason,
        by=caller.subject,
    )
    _finish(session, change)
    session.commit()
    return flag


def may_clear(session: Session, caller: Caller, flag: RiskFlag, org_unit: str) -> bool:
    """Clear a flag: who may flag the customer, except that a customer manager clears only the
    flags they raised by hand — signal flags and others' flags are cleared by risk or
    internal-control staff, approvers or administrators (内部控制: who serves the customer does
    not lift its warnings alone)."""
    if not access.may_flag(session, caller, flag.customer_id, org_unit):
        return False
    if caller.has_role(ROLE_ADMIN):
        return True
    if caller.has_role(*access.RISK_STAFF, *access.APPROVERS) and caller.within(org_unit):
        return True
    return flag.source == MANUAL and flag.raised_by == caller.subject


def clear_by_hand(session: Session, caller: Caller, flag_id: str, reason: str) -> RiskFlag:
    """Clear an open flag by hand; commits. An overdue flag cleared while the customer is still
    overdue is not raised again until the overdue is repaid once or becomes more serious."""
    flag = session.get(RiskFlag, flag_id)
    if flag is None:
        raise NotFound(f"no risk flag {flag_id}")
    unit = _unit_of(session, flag.customer_id) or flag.org_unit
    if not access.may_flag(session, caller, flag.customer_id, unit):
        raise Forbidden(
            f"you may not clear the flags of customer {flag.customer_id}: its owner and serving "
            f"managers, risk and internal-control staff and approvers of {unit}, and "
            "administrators do"
        )
    if not may_clear(session, caller, flag, unit):
        raise Forbidden(
            "a customer manager clears only the flags they raised by hand; signal flags and "
            "flags raised by others are cleared by risk or internal-control staff, approvers "
            "or administrators"
        )
    change = _begin(session, flag.customer_id, unit)
    session.refresh(flag)  # as it stands under the customer's lock
    if flag.status != OPEN:
        raise Conflict(
            f"risk flag {flag_id} was cleared already by {flag.cleared_by}",
            cleared_by=flag.cleared_by,
            cleared_at=flag.cleared_at.isoformat() if flag.cleared_at else None,
        )
    _clear(session, change, flag, by=caller.subject, reason=reason)
    if flag.source == SIGNAL and flag.signal == OVERDUE:
        _dismiss(change, OVERDUE, flag.level)
    _finish(session, change)
    session.commit()
    return flag


# -- reading ------------------------------------------------------------------------------------
def _readable_unit(session: Session, caller: Caller, customer_id: str) -> str:
    unit = _unit_of(session, customer_id)
    if unit is None:
        raise NotFound(f"no customer {customer_id} (not known here yet)")
    if not access.may_read(session, caller, customer_id, unit):
        raise Forbidden(
            f"you may not read the risk of customer {customer_id}: its owner and serving "
            f"managers, staff of {unit} who read its subtree, auditors and administrators do"
        )
    return unit


def load_flag(session: Session, caller: Caller, flag_id: str) -> RiskFlag:
    flag = session.get(RiskFlag, flag_id)
    if flag is None:
        raise NotFound(f"no risk flag {flag_id}")
    _readable_unit(session, caller, flag.customer_id)
    return flag


def _by_seriousness(flags: Sequence[RiskFlag]) -> list[RiskFlag]:
    return sorted(flags, key=lambda f: (-rank(f.level), f.raised_at, f.id))


def customer_risk(
    session: Session, caller: Caller, customer_id: str
) -> tuple[str, CustomerRisk | None, list[RiskFlag]]:
    """The customer's org unit, status row (None: never flagged) and open flags."""
    unit = _readable_unit(session, caller, customer_id)
    state = session.get(CustomerRisk, customer_id)
    flags = session.scalars(
        select(RiskFlag).where(RiskFlag.customer_id == customer_id, RiskFlag.status == OPEN)
    ).all()
    return unit, state, _by_seriousness(flags)


def _scope(caller: Caller, org_unit: str | None) -> list[ColumnElement[bool]]:
    """Which customers the caller reads in lists: administrators and auditors every customer,
    risk, internal-control, approving and committee staff their subtree, customer managers those
    they own or serve; ``org_unit`` narrows it."""
    where: list[ColumnElement[bool]] = []
    if caller.has_role(ROLE_ADMIN, access.ROLE_AUDITOR):
        pass
    elif caller.has_role(*access.SUBTREE_READERS):
        if org_unit and not caller.within(org_unit):
            raise Forbidden(f"{org_unit} lies outside your subtree {caller.org_unit}")
        where.append(in_subtree(customer_refs.c.org_unit, caller.org_unit))
    elif caller.has_role(access.ROLE_CUSTOMER_MANAGER):
        served = select(owner_refs.c.customer_id).where(owner_refs.c.staff_id == caller.subject)
        where.append(customer_refs.c.customer_id.in_(served.scalar_subquery()))
    else:
        raise Forbidden(
            "risk lists are read by customer managers (their customers), risk, internal-control, "
            "approving and committee staff (their subtree), auditors and administrators"
        )
    if org_unit:
        where.append(in_subtree(customer_refs.c.org_unit, org_unit))
    return where


def list_flags(
    session: Session,
    caller: Caller,
    customer_id: str | None,
    status: FlagStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[RiskFlag], int]:
    """Flags, newest first: of one customer the caller may read, or of the caller's scope."""
    query = select(RiskFlag)
    if customer_id is not None:
        _readable_unit(session, caller, customer_id)
        query = query.where(RiskFlag.customer_id == customer_id)
    else:
        query = query.join(
            customer_refs, customer_refs.c.customer_id == RiskFlag.customer_id
        ).where(*_scope(caller, None))
    if status is not None:
        query = query.where(RiskFlag.status == status.value)
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(RiskFlag.raised_at.desc(), RiskFlag.id).limit(limit).offset(offset)
    ).all()
    return list(rows), total


@dataclass(frozen=True)
class WatchRow:
    """A customer of the watch list 风险客户名单."""

    customer_id: str
    name: str
    org_unit: str
    owner: str | None
    level: str
    signals: list[str]
    open_flags: int
    since: datetime
    flagged_since: datetime


def watchlist(
    session: Session,
    caller: Caller,
    org_unit: str | None,
    level: RiskLevel | None,
    limit: int | None,
    offset: int = 0,
) -> tuple[list[WatchRow], int]:
    """Customers of the caller's scope with an open flag, most serious first, then longest at
    their level; ``level`` keeps those whose most serious level is exactly it; ``limit`` None
    gives every row (the CSV)."""
    query = (
        select(CustomerRisk, customer_refs.c.name, customer_refs.c.org_unit)
        .join(customer_refs, customer_refs.c.customer_id == CustomerRisk.customer_id)
        .where(CustomerRisk.status != NONE, *_scope(caller, org_unit))
    )
    if level is not None:
        query = query.where(CustomerRisk.status == level.value)
    total = count_rows(session, query)
    seriousness = case({name: n for n, name in enumerate(LEVELS)}, value=CustomerRisk.status)
    query = query.order_by(seriousness.desc(), CustomerRisk.since, CustomerRisk.customer_id)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    found = session.execute(query).all()
    ids = [state.customer_id for state, _, _ in found]
    flags: dict[str, list[RiskFlag]] = {}
    owners: dict[str, str] = {}
    if ids:
        for flag in session.scalars(
            select(RiskFlag).where(RiskFlag.customer_id.in_(ids), RiskFlag.status == OPEN)
        ):
            flags.setdefault(flag.customer_id, []).append(flag)
        owned = session.execute(
            select(owner_refs.c.customer_id, owner_refs.c.staff_id).where(
                owner_refs.c.customer_id.in_(ids), owner_refs.c.role == "owner"
            )
        )
        owners = {customer: staff for customer, staff in owned}
    rows: list[WatchRow] = []
    for state, name, unit in found:
        open_flags = flags.get(state.customer_id, [])
        signals = {f.signal for f in open_flags}
        rows.append(
            WatchRow(
                customer_id=state.customer_id,
                name=name,
                org_unit=unit,
                owner=owners.get(state.customer_id),
                level=state.status,
                signals=[s for s in SIGNAL_ORDER if s in signals],
                open_flags=len(open_flags),
                since=state.since,
                flagged_since=min((f.raised_at for f in open_flags), default=state.since),
            )
        )
    return rows, total
