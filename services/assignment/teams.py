"""Teams 团队维护: the customers that must be served by a team, the teams, and the customers that
break the rule.

A team is the customer's owner — its first responsible 第一负责人, changed only through
assignments — and the staff serving it beside them: further managers (``member``), a senior lead
of senior grade for core customers and an accountable leader 挂钩领导 for high-end, high-value and
group customers. Which customers need a team, and what a compliant team is, is policy
(``policy/teams/<effective date>.json``): the eight cases of seed 000 are computed from the
customer's profile (tiers and figures kept from customer events), its owner and the open
designations of product or internal-control staff. From policy 2026-12-01 the members and
parents of groups 集团客户 (``customer.group_changed``) are a case of their own, ``group``: they
need an accountable leader beside the owner (not a team of managers), and every member the
leader of its group's parent (gap ``same_group_leader``). ``set_group_leader`` sets one leader on
a whole group.

Setting a team publishes ``ownership.assigned`` (role ``team_member``, with ``team_role``) for
each member added or given another role, and ``ownership.released`` (role ``team_member``) for
each member removed, in the transaction that changes the team. Closing a designation dissolves
the team the same way when the customer is left with no case.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, String, and_, cast, exists, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.db import in_subtree, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.outbox import EventRecorder
from crmkit.policy import load_policy_file
from services.assignment import access, events, service
from services.assignment.models import CustomerProfile, Ownership, Staff, customer_refs
from services.assignment.models_teams import TeamDesignation, TeamMember
from services.assignment.schemas_teams import (
    DesignationCloseIn,
    DesignationIn,
    GroupLeaderIn,
    GroupLeaderOut,
    GroupLeaderRelease,
    TeamCase,
    TeamGap,
    TeamIn,
    TeamMemberOut,
    TeamOut,
    TeamRole,
    ViolationOut,
)

POLICY_DIR = Path(__file__).with_name("policy") / "teams"
ROLE_LINE_DEPARTMENT = "line_department"
DESIGNATORS = frozenset({ROLE_ADMIN, ROLE_LINE_DEPARTMENT, access.ROLE_AUDITOR})
VIOLATION_READERS = access.READERS | {ROLE_LINE_DEPARTMENT}
MANAGER_ROLES = (TeamRole.member.value, TeamRole.senior_lead.value)


class TeamPolicyError(ValueError):
    """A team policy file that cannot be used."""


# -- the policy ---------------------------------------------------------------------------------
class TeamPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    effective_from: date
    description: str
    grades: list[str] = Field(min_length=1, description="Staff grades, highest first")
    senior_lead_min_grade: str
    min_managers: int = Field(ge=2)
    accountable_leader_roles: list[str] = Field(min_length=1)
    large_core_value_tiers: list[str]
    great_value_wealth_layers: list[str]
    great_value_vip_levels: list[str]
    credit_exposure_loans_above: Decimal
    new_large_within_days: int = Field(ge=1)
    new_large_owner_reasons: list[str]
    new_products: list[str]
    at_risk_overdue_above: Decimal
    senior_lead_for: list[TeamCase]
    accountable_leader_for: list[TeamCase]
    # Members and parents of groups 集团客户 are the case ``group``.
    group_case: bool = False
    # A group member's accountable leader is its group parent's (gap ``same_group_leader``).
    same_group_leader: bool = False
    # The cases that need min_managers managers beside any leader (None: every case). A customer
    # of other cases only (``group``) needs the leaders their cases name, not a team of managers.
    managers_for: list[TeamCase] | None = None

    @model_validator(mode="after")
    def _sound(self) -> TeamPolicy:
        if self.senior_lead_min_grade not in self.grades:
            raise ValueError(f"senior_lead_min_grade {self.senior_lead_min_grade} is no grade")
        named = {*self.senior_lead_for, *self.accountable_leader_for, *(self.managers_for or ())}
        if not self.group_case and (TeamCase.group in named or self.same_group_leader):
            raise ValueError("the group case and its leader need group_case: true")
        unknown = set(self.accountable_leader_roles) - access.BOOK_ROLES
        if unknown:
            raise ValueError(f"leader roles that hold no book: {', '.join(sorted(unknown))}")
        return self

    def needs_managers(self, cases: Sequence[TeamCase]) -> bool:
        """Whether ``cases`` call for a team of managers (a customer of no case: yes, if it
        has a team at all)."""
        return self.managers_for is None or not cases or bool(set(cases) & set(self.managers_for))

    def senior_enough(self, grade: str | None) -> bool:
        if grade not in self.grades:
            return False
        return self.grades.index(grade) <= self.grades.index(self.senior_lead_min_grade)


@cache
def policies(directory: Path = POLICY_DIR) -> tuple[TeamPolicy, ...]:
    found = [
        load_policy_file(path, TeamPolicy, "team policy", TeamPolicyError)
        for path in sorted(directory.glob("*.json"))
    ]
    if not found:
        raise TeamPolicyError(f"no team policy in {directory}")
    return tuple(sorted(found, key=lambda p: p.effective_from))


def policy_on(day: date, directory: Path = POLICY_DIR) -> TeamPolicy:
    """The policy in force on ``day`` (the latest effective on or before it)."""
    in_force = [p for p in policies(directory) if p.effective_from <= day]
    if not in_force:
        raise TeamPolicyError(f"no team policy in force on {day}")
    return in_force[-1]


# -- the cases and the gaps ---------------------------------------------------------------------
@dataclass(slots=True)
class Seat:
    """A staff member in a customer's team (the owner as ``first_responsible``)."""

    staff_id: str
    role: str
    staff: Staff | None
    added_at: datetime | None = None
    added_by: str | None = None


@dataclass(slots=True)
class Subject:
    """What the team checks read of one customer."""

    customer_id: str
    name: str
    org_unit: str
    profile: CustomerProfile | None
    owner: Ownership | None
    designation_id: str | None  # the open designation naming it
    seats: list[Seat] = field(default_factory=list)
    group_members: int = 0  # customers naming it as their group's parent
    parent_seats: list[Seat] = field(default_factory=list)  # a member's group parent's leaders

    @property
    def designated(self) -> bool:
        return self.designation_id is not None

    @property
    def member_of(self) -> str | None:
        """The group it is a member of (its parent's id)."""
        return self.profile.group_id if self.profile is not None else None

    @property
    def group_id(self) -> str | None:
        """The group it is a member or the parent of (the parent's id)."""
        if self.member_of is not None:
            return self.member_of
        return self.customer_id if self.group_members else None


def cases_of(policy: TeamPolicy, subject: Subject, now: datetime) -> list[TeamCase]:
    """The cases by which the customer needs a team, in the policy's order."""
    found: list[TeamCase] = []
    p = subject.profile
    if p is not None:
        large = p.value_tier in policy.large_core_value_tiers
        if large:
            found.append(TeamCase.large_core)
        if (
            p.wealth_layer in policy.great_value_wealth_layers
            or p.vip_level in policy.great_value_vip_levels
        ):
            found.append(TeamCase.great_value)
        if p.loans is not None and p.loans > policy.credit_exposure_loans_above:
            found.append(TeamCase.credit_exposure)
        owner = subject.owner
        if (
            large
            and owner is not None
            and owner.reason in policy.new_large_owner_reasons
            and owner.started_at >= now - timedelta(days=policy.new_large_within_days)
        ):
            found.append(TeamCase.new_large)
        if set(p.products or ()) & set(policy.new_products):
            found.append(TeamCase.new_product)
        if p.risk_flag:
            found.append(TeamCase.anomaly)
        if p.overdue_amount is not None and p.overdue_amount > policy.at_risk_overdue_above:
            found.append(TeamCase.at_risk)
    if subject.designated:
        found.append(TeamCase.designated)
    if policy.group_case and subject.group_id is not None:
        found.append(TeamCase.group)
    return found


def _active(staff: Staff | None) -> bool:
    return staff is not None and staff.status == "active"


def senior_lead_problem(policy: TeamPolicy, staff: Staff, today: date) -> str | None:
    if not access.BOOK_ROLES.intersection(staff.roles):
        return f"staff {staff.id} has no role that holds customers"
    if not policy.senior_enough(staff.grade):
        return (
            f"staff {staff.id} is of grade {staff.grade or 'none'}; a senior lead is "
            f"{policy.senior_lead_min_grade} or above"
        )
    if staff.grade_expires_on is not None and staff.grade_expires_on < today:
        return f"the grade of staff {staff.id} expired on {staff.grade_expires_on}"
    return None


def leader_problem(policy: TeamPolicy, staff: Staff) -> str | None:
    if not set(policy.accountable_leader_roles).intersection(staff.roles):
        roles = ", ".join(policy.accountable_leader_roles)
        return f"staff {staff.id} is not a leader ({roles})"
    return None


def _leader_in(policy: TeamPolicy, seats: Iterable[Seat]) -> str | None:
    """The active accountable leader among ``seats`` who holds a leader's role, if any."""
    return next(
        (
            s.staff_id
            for s in seats
            if s.role == TeamRole.accountable_leader.value
            and s.staff is not None
            and _active(s.staff)
            and leader_problem(policy, s.staff) is None
        ),
        None,
    )


def accountable_leader_of(policy: TeamPolicy, subject: Subject) -> str | None:
    return _leader_in(policy, subject.seats)


def group_leader_of(policy: TeamPolicy, subject: Subject) -> str | None:
    """The leader of the customer's group: its parent's accountable leader (the customer's own
    when it is the parent)."""
    if subject.member_of is not None:
        return _leader_in(policy, subject.parent_seats)
    if subject.group_members:
        return accountable_leader_of(policy, subject)
    return None


def managers_of(subject: Subject) -> int:
    """Active managers: the owner and the members and senior lead, each once."""
    ids = {s.staff_id for s in subject.seats if s.role in MANAGER_ROLES and _active(s.staff)}
    if subject.owner is not None and _active(_owner_seat(subject).staff):
        ids.add(subject.owner.staff_id)
    return len(ids)


def gaps_of(
    policy: TeamPolicy, subject: Subject, cases: Sequence[TeamCase], today: date
) -> list[TeamGap]:
    """What the customer's team lacks for ``cases`` (empty: compliant)."""
    gaps: list[TeamGap] = []
    if subject.owner is None:
        gaps.append(TeamGap.first_responsible)
    served = [s for s in subject.seats if s.role != TeamRole.first_responsible.value]
    if policy.needs_managers(cases):
        if not served:
            gaps.append(TeamGap.team)
        elif managers_of(subject) < policy.min_managers:
            gaps.append(TeamGap.managers)
    if set(cases) & set(policy.senior_lead_for) and not any(
        s.role == TeamRole.senior_lead.value
        and s.staff is not None
        and _active(s.staff)
        and senior_lead_problem(policy, s.staff, today) is None
        for s in served
    ):
        gaps.append(TeamGap.senior_lead)
    leader = accountable_leader_of(policy, subject)
    if set(cases) & set(policy.accountable_leader_for) and leader is None:
        gaps.append(TeamGap.accountable_leader)
    if policy.same_group_leader and subject.member_of is not None:
        group_leader = group_leader_of(policy, subject)
        if group_leader is None or group_leader != leader:
            gaps.append(TeamGap.same_group_leader)
    return gaps


def _owner_seat(subject: Subject) -> Seat:
    return next(s for s in subject.seats if s.role == TeamRole.first_responsible.value)


# -- reading the subjects -----------------------------------------------------------------------
OwnerStaff = aliased(Staff, name="owner_staff")


def _subjects(
    session: Session, where: Iterable[ColumnElement[bool]], policy: TeamPolicy | None, now: datetime
) -> list[Subject]:
    """The customers ``where`` selects (with ``policy``: only those that may meet a case), with
    their profile, owner, open designation and team, ordered by unit and id."""
    query = (
        select(
            customer_refs.c.customer_id,
            customer_refs.c.name,
            customer_refs.c.org_unit,
            CustomerProfile,
            Ownership,
            OwnerStaff,
            TeamDesignation.id,
        )
        .outerjoin(CustomerProfile, CustomerProfile.customer_id == customer_refs.c.customer_id)
        .outerjoin(
            Ownership,
            and_(
                Ownership.customer_id == customer_refs.c.customer_id,
                Ownership.ended_at.is_(None),
            ),
        )
        .outerjoin(OwnerStaff, OwnerStaff.id == Ownership.staff_id)
        .outerjoin(
            TeamDesignation,
            and_(
                TeamDesignation.customer_id == customer_refs.c.customer_id,
                TeamDesignation.closed_at.is_(None),
            ),
        )
    )
    for condition in where:
        query = query.where(condition)
    if policy is not None:
        query = query.where(_may_need_team(policy))
    rows = session.execute(
        query.order_by(customer_refs.c.org_unit, customer_refs.c.customer_id)
    ).all()
    subjects: dict[str, Subject] = {}
    for customer_id, name, unit, profile, owner, owner_staff, designation in rows:
        subject = Subject(customer_id, name, unit, profile, owner, designation)
        if owner is not None:
            subject.seats.append(
                Seat(owner.staff_id, TeamRole.first_responsible.value, owner_staff)
            )
        subjects[customer_id] = subject
    if subjects:
        ids = select(customer_refs.c.customer_id)
        for condition in where:
            ids = ids.where(condition)
        members = session.execute(
            select(TeamMember, Staff)
            .outerjoin(Staff, Staff.id == TeamMember.staff_id)
            .where(TeamMember.customer_id.in_(ids.scalar_subquery()))
            .order_by(TeamMember.customer_id, TeamMember.added_at, TeamMember.staff_id)
        ).all()
        for member, staff in members:
            found = subjects.get(member.customer_id)
            if found is not None:
                found.seats.append(
                    Seat(member.staff_id, member.role, staff, member.added_at, member.added_by)
                )
        _add_groups(session, subjects, ids)
    return list(subjects.values())


GroupMember = aliased(CustomerProfile, name="group_member")


def _add_groups(session: Session, subjects: dict[str, Subject], ids: Select[Any]) -> None:
    """Count the members of the subjects that are groups' parents, and give each member the
    accountable leaders of its group's parent (two queries)."""
    counts = session.execute(
        select(GroupMember.group_id, func.count())
        .where(GroupMember.group_id.in_(ids.scalar_subquery()))
        .group_by(GroupMember.group_id)
    ).all()
    for parent_id, count in counts:
        found = subjects.get(str(parent_id))
        if found is not None:
            found.group_members = int(count)
    parents = {s.member_of for s in subjects.values() if s.member_of is not None}
    if not parents:
        return
    leaders: dict[str, list[Seat]] = {}
    for member, staff in session.execute(
        select(TeamMember, Staff)
        .outerjoin(Staff, Staff.id == TeamMember.staff_id)
        .where(
            TeamMember.customer_id.in_(sorted(parents)),
            TeamMember.role == TeamRole.accountable_leader.value,
        )
        .order_by(TeamMember.customer_id, TeamMember.added_at, TeamMember.staff_id)
    ).all():
        leaders.setdefault(member.customer_id, []).append(
            Seat(member.staff_id, member.role, staff, member.added_at, member.added_by)
        )
    for subject in subjects.values():
        if subject.member_of is not None:
            subject.parent_seats = leaders.get(subject.member_of, [])


def _may_need_team(policy: TeamPolicy) -> ColumnElement[bool]:
    """A filter that keeps every customer meeting a case (and few others): the exact test is
    ``cases_of``. New products are matched in the profile's JSON text."""
    conditions: list[ColumnElement[bool]] = [
        TeamDesignation.id.is_not(None),
        CustomerProfile.risk_flag.is_not(None),
        CustomerProfile.loans > policy.credit_exposure_loans_above,
        CustomerProfile.overdue_amount > policy.at_risk_overdue_above,
    ]
    if policy.large_core_value_tiers:
        conditions.append(CustomerProfile.value_tier.in_(policy.large_core_value_tiers))
    if policy.great_value_wealth_layers:
        conditions.append(CustomerProfile.wealth_layer.in_(policy.great_value_wealth_layers))
    if policy.great_value_vip_levels:
        conditions.append(CustomerProfile.vip_level.in_(policy.great_value_vip_levels))
    products = cast(CustomerProfile.products, String)
    conditions.extend(products.like(f'%"{code}"%') for code in policy.new_products)
    if policy.group_case:
        conditions.append(CustomerProfile.group_id.is_not(None))
        conditions.append(
            exists()
            .where(GroupMember.group_id == customer_refs.c.customer_id)
            .correlate(customer_refs)
        )
    return or_(false(), *conditions)


def _subject(session: Session, customer_id: str) -> Subject:
    found = _subjects(session, [customer_refs.c.customer_id == customer_id], None, utcnow())
    if not found:
        raise NotFound(f"no customer {customer_id} (not known here yet)")
    return found[0]


def _team_out(policy: TeamPolicy, subject: Subject, now: datetime) -> TeamOut:
    cases = cases_of(policy, subject, now)
    gaps = gaps_of(policy, subject, cases, now.date())
    return TeamOut(
        customer_id=subject.customer_id,
        org_unit=subject.org_unit,
        first_responsible=subject.owner.staff_id if subject.owner is not None else None,
        members=[_seat_out(s) for s in subject.seats],
        managers=managers_of(subject),
        cases=cases,
        missing=gaps,
        compliant=not gaps,
        designation_id=subject.designation_id,
        policy_version=policy.version,
        group_id=subject.group_id,
        group_members=subject.group_members,
        group_leader=group_leader_of(policy, subject),
    )


def _seat_out(seat: Seat) -> TeamMemberOut:
    staff = seat.staff
    return TeamMemberOut(
        staff_id=seat.staff_id,
        role=TeamRole(seat.role),
        name=staff.name if staff is not None else None,
        org_unit=staff.org_unit if staff is not None else None,
        status=staff.status if staff is not None else None,
        grade=staff.grade if staff is not None else None,
        added_at=seat.added_at,
        added_by=seat.added_by,
    )


# -- reading and setting a team -----------------------------------------------------------------
def read_team(session: Session, customer_id: str, caller: Caller) -> TeamOut:
    """The customer's team with its cases and gaps: for readers of the customer's subtree, its
    owner and the members of its team."""
    subject = _subject(session, customer_id)
    serving = {s.staff_id for s in subject.seats}
    if caller.subject not in serving and not access.may_read(caller, subject.org_unit):
        raise NotFound(f"no customer {customer_id} in your scope")
    now = utcnow()
    return _team_out(policy_on(now.date()), subject, now)


def set_team(
    session: Session, recorder: EventRecorder, customer_id: str, body: TeamIn, caller: Caller
) -> TeamOut:
    """Replace the customer's team (administrators, heads of the customer's subtree)."""
    unit = service.customer_unit(session, customer_id)
    if unit is None:
        raise NotFound(f"no customer {customer_id} (not known here yet)")
    if not access.may_manage(caller, unit):
        raise Forbidden(f"you may not set the teams of customers of {unit}")
    _check_shape(body)
    owner = service.current_owner(session, customer_id, lock=True)
    first = next(m.staff_id for m in body.members if m.role is TeamRole.first_responsible)
    if owner is None:
        raise Conflict(
            f"customer {customer_id} has no owner; assign one through /api/v1/assignments first",
            current_owner=None,
        )
    if owner.staff_id != first:
        raise Conflict(
            f"the first responsible is the owner {owner.staff_id}, not {first}; the owner is "
            "changed through /api/v1/assignments",
            current_owner=owner.staff_id,
        )
    now = utcnow()
    policy = policy_on(now.date())
    wanted = {m.staff_id: m.role.value for m in body.members if m.staff_id != first}
    staff = {
        s.id: s for s in session.scalars(select(Staff).where(Staff.id.in_(list(wanted)))).all()
    }
    _check_eligible(policy, body, staff, now.date())
    subject = _subject(session, customer_id)
    subject.seats = [_owner_seat(subject)] + [
        Seat(staff_id, role, staff[staff_id]) for staff_id, role in wanted.items()
    ]
    cases = cases_of(policy, subject, now)
    # Without anyone beside the owner the team lacks managers.
    gaps = [
        TeamGap.managers if g is TeamGap.team else g
        for g in gaps_of(policy, subject, cases, now.date())
    ]
    group_leader = group_leader_of(policy, subject)
    if group_leader is None and TeamGap.same_group_leader in gaps:
        # The parent has no leader yet: the member cannot follow it; the list shows the gap.
        gaps.remove(TeamGap.same_group_leader)
    if gaps:
        extra: dict[str, Any] = {}
        if TeamGap.same_group_leader in gaps:
            extra["group_leader"] = group_leader
        raise ValidationFailed(
            "the team does not meet the team policy: " + ", ".join(g.value for g in gaps),
            errors=[{"field": "members", "reason": _GAP_REASONS[g]} for g in gaps],
            cases=[c.value for c in cases],
            **extra,
        )
    _apply(session, recorder, customer_id, wanted, staff, caller.subject, now)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"the team of customer {customer_id} was changed concurrently") from exc
    return read_team(session, customer_id, caller)


_GAP_REASONS = {
    TeamGap.first_responsible: "the customer has no owner",
    TeamGap.team: "nobody serves the customer beside its owner",
    TeamGap.managers: "a team has at least the policy's minimum of active managers",
    TeamGap.senior_lead: "a senior lead is required for this customer",
    TeamGap.accountable_leader: "an accountable leader is required for this customer",
    TeamGap.same_group_leader: "every member of a group gets the accountable leader of its "
    "group's parent (group_leader)",
}


def _check_shape(body: TeamIn) -> None:
    errors: list[dict[str, str]] = []
    counts = {role: sum(1 for m in body.members if m.role is role) for role in TeamRole}
    if counts[TeamRole.first_responsible] != 1:
        errors.append({"field": "members", "reason": "name exactly one first_responsible"})
    for role in (TeamRole.senior_lead, TeamRole.accountable_leader):
        if counts[role] > 1:
            errors.append({"field": "members", "reason": f"at most one {role.value}"})
    ids = [m.staff_id for m in body.members]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        errors.append({"field": "members", "reason": f"staff {duplicate} is named twice"})
    if errors:
        raise ValidationFailed("The team is not well formed.", errors=errors)


def _check_eligible(policy: TeamPolicy, body: TeamIn, staff: dict[str, Staff], today: date) -> None:
    errors: list[dict[str, str]] = []
    for index, member in enumerate(body.members):
        if member.role is TeamRole.first_responsible:
            continue
        where = f"members[{index}].staff_id"
        found = staff.get(member.staff_id)
        if found is None:
            errors.append({"field": where, "reason": f"no staff {member.staff_id}"})
            continue
        problem: str | None = None
        if found.status != "active":
            problem = f"staff {found.id} is {found.status}"
        elif member.role is TeamRole.member:
            if not access.BOOK_ROLES.intersection(found.roles):
                problem = f"staff {found.id} has no role that holds customers"
        elif member.role is TeamRole.senior_lead:
            problem = senior_lead_problem(policy, found, today)
        else:
            problem = leader_problem(policy, found)
        if problem is not None:
            errors.append({"field": where, "reason": problem})
    if errors:
        raise ValidationFailed(
            "; ".join(e["reason"] for e in errors) + ".",
            errors=errors,
        )


def _apply(
    session: Session,
    recorder: EventRecorder,
    customer_id: str,
    wanted: dict[str, str],
    staff: dict[str, Staff],
    actor: str,
    now: datetime,
) -> list[str]:
    """Replace the stored members by ``wanted``, recording an event for each change; returns
    the staff ids of the members removed."""
    current = {
        m.staff_id: m
        for m in session.scalars(
            select(TeamMember).where(TeamMember.customer_id == customer_id).with_for_update()
        ).all()
    }
    effective = now.isoformat()
    released: list[str] = []
    for staff_id, member in sorted(current.items()):
        if staff_id not in wanted:
            released.append(staff_id)
            session.delete(member)
            data: dict[str, Any] = {
                "customer_id": customer_id,
                "staff_id": staff_id,
                "role": "team_member",
                "team_role": member.role,
                "effective_at": effective,
            }
            recorder.record(session, events.OWNERSHIP_RELEASED, data, key=customer_id, actor=actor)
    for staff_id, role in wanted.items():
        existing = current.get(staff_id)
        if existing is not None and existing.role == role:
            continue
        if existing is None:
            session.add(
                TeamMember(
                    customer_id=customer_id,
                    staff_id=staff_id,
                    role=role,
                    added_at=now,
                    added_by=actor,
                )
            )
        else:
            existing.role, existing.added_at, existing.added_by = role, now, actor
        data = {
            "customer_id": customer_id,
            "staff_id": staff_id,
            "role": "team_member",
            "team_role": role,
            "org_unit": staff[staff_id].org_unit,
            "effective_at": effective,
        }
        recorder.record(session, events.OWNERSHIP_ASSIGNED, data, key=customer_id, actor=actor)
    return released


# -- designations -------------------------------------------------------------------------------
def designate(session: Session, body: DesignationIn, caller: Caller) -> TeamDesignation:
    """Name a customer as needing a team: administrators and line departments (bank-wide),
    auditors within their subtree."""
    if not caller.has_role(*DESIGNATORS):
        raise Forbidden("only line departments, auditors and administrators designate customers")
    unit = service.customer_unit(session, body.customer_id)
    if unit is None:
        raise NotFound(f"no customer {body.customer_id} (not known here yet)")
    if not caller.has_role(ROLE_ADMIN, ROLE_LINE_DEPARTMENT) and not caller.within(unit):
        raise Forbidden(f"you may not designate customers of {unit}")
    existing = session.scalars(
        select(TeamDesignation).where(
            TeamDesignation.customer_id == body.customer_id, TeamDesignation.closed_at.is_(None)
        )
    ).first()
    if existing is not None:
        raise Conflict(f"customer {body.customer_id} is designated already", existing=existing.id)
    designation = TeamDesignation(
        id=str(uuid.uuid4()),
        customer_id=body.customer_id,
        org_unit=unit,
        reason=body.reason,
        designated_by=caller.subject,
        created_at=utcnow(),
    )
    session.add(designation)
    try:
        session.commit()
    except IntegrityError as exc:  # designated concurrently
        session.rollback()
        raise Conflict(f"customer {body.customer_id} is designated already") from exc
    return designation


def close_designation(
    session: Session,
    recorder: EventRecorder,
    designation_id: str,
    body: DesignationCloseIn,
    caller: Caller,
) -> tuple[TeamDesignation, list[TeamCase], list[str]]:
    """Close an open designation (those who may designate the customer, with a reason).

    Its end is recorded (``closed_at``, ``closed_by``, ``close_reason``). When the customer then
    meets no case of the policy, its team is no longer required and is dissolved: each member
    (the owner stays, as owner) is released with ``ownership.released`` (role ``team_member``),
    as when a team is set without them. Returns the designation, the cases left and the staff
    released.
    """
    if not caller.has_role(*DESIGNATORS):
        raise Forbidden("only line departments, auditors and administrators close designations")
    designation = session.scalars(
        select(TeamDesignation)
        .where(TeamDesignation.id == designation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if designation is None:
        raise NotFound(f"no designation {designation_id}")
    if not caller.has_role(ROLE_ADMIN, ROLE_LINE_DEPARTMENT) and not caller.within(
        designation.org_unit
    ):
        raise Forbidden(f"you may not close designations of customers of {designation.org_unit}")
    if designation.closed_at is not None:
        raise Conflict(
            f"designation {designation.id} was closed already",
            closed_at=designation.closed_at.isoformat(),
            closed_by=designation.closed_by,
        )
    customer_id = designation.customer_id
    service.current_owner(session, customer_id, lock=True)  # one change of the team at a time
    now = utcnow()
    designation.closed_at, designation.closed_by = now, caller.subject
    designation.close_reason = body.reason
    session.flush()
    cases: list[TeamCase] = []
    if service.customer_unit(session, customer_id) is not None:
        cases = cases_of(policy_on(now.date()), _subject(session, customer_id), now)
    released: list[str] = []
    if not cases:
        released = _apply(session, recorder, customer_id, {}, {}, caller.subject, now)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"the team of customer {customer_id} was changed concurrently") from exc
    return designation, cases, released


# -- groups -------------------------------------------------------------------------------------
def _group_leader(session: Session, policy: TeamPolicy, staff_id: str) -> Staff:
    """The staff member named to lead a group: active and of a leader's role (else 422)."""
    leader = session.get(Staff, staff_id)
    if leader is None:
        problem: str | None = f"no staff {staff_id}"
    elif leader.status != "active":
        problem = f"staff {leader.id} is {leader.status}"
    else:
        problem = leader_problem(policy, leader)
    if leader is None or problem is not None:
        reason = problem or f"staff {staff_id} may not lead the group"
        raise ValidationFailed(reason + ".", errors=[{"field": "staff_id", "reason": reason}])
    return leader


def set_group_leader(
    session: Session, recorder: EventRecorder, group_id: str, body: GroupLeaderIn, caller: Caller
) -> GroupLeaderOut:
    """Make ``body.staff_id`` the accountable leader 挂钩领导 of a group's parent and of every
    member, in one transaction: every member of a group gets the same leader.

    Administrators, and heads whose subtree holds every customer of the group (403 naming the
    units outside). The leader is an active outlet head, branch president or head-office leader
    of any unit (422 otherwise); one who serves a customer of the group in another way (its
    owner, a member or senior lead of its team) cannot also be its leader (409 naming the
    customers). Each team keeps its other members; a leader it had is replaced. As when a team
    is set, each customer given the leader publishes ``ownership.assigned`` and each leader
    replaced ``ownership.released`` (role ``team_member``, key the customer); a customer whose
    leader it is already changes nothing. The teams are not checked against the rest of the
    policy: what they lack besides stays in the violations.
    """
    members = list(
        session.scalars(
            select(CustomerProfile.customer_id)
            .where(CustomerProfile.group_id == group_id)
            .order_by(CustomerProfile.customer_id)
        )
    )
    if service.customer_unit(session, group_id) is None or not members:
        raise NotFound(f"no group of customer {group_id}: no customer known here names it")
    customers = [group_id, *members]
    units: dict[str, str] = {
        customer_id: unit
        for customer_id, unit in session.execute(
            select(customer_refs.c.customer_id, customer_refs.c.org_unit).where(
                customer_refs.c.customer_id.in_(customers)
            )
        )
    }
    outside = sorted({u for u in units.values() if not access.may_manage(caller, u)})
    if outside:
        raise Forbidden(
            "you may not set the teams of customers of " + ", ".join(outside) + "; the group "
            "has customers there"
        )
    now = utcnow()
    policy = policy_on(now.date())
    leader = _group_leader(session, policy, body.staff_id)
    customers = [c for c in customers if c in units]
    for customer_id in sorted(customers):  # one change of each team at a time, in one order
        service.current_owner(session, customer_id, lock=True)
    seats = session.scalars(
        select(TeamMember).where(TeamMember.customer_id.in_(customers)).with_for_update()
    ).all()
    owners = session.execute(
        select(Ownership.customer_id).where(
            Ownership.customer_id.in_(customers),
            Ownership.ended_at.is_(None),
            Ownership.staff_id == leader.id,
        )
    ).scalars()
    otherwise = sorted(
        {*owners}
        | {
            m.customer_id
            for m in seats
            if m.staff_id == leader.id and m.role != TeamRole.accountable_leader.value
        }
    )
    if otherwise:
        raise Conflict(
            f"staff {leader.id} serves customers of the group in another role already; a leader "
            "is not also their owner or manager",
            serving_otherwise=otherwise,
        )
    serving: dict[str, dict[str, str]] = {c: {} for c in customers}  # staff and role by customer
    for m in seats:
        serving[m.customer_id][m.staff_id] = m.role
    changed: list[str] = []
    released: list[GroupLeaderRelease] = []
    for customer_id in customers:
        team = serving[customer_id]
        if team.get(leader.id) == TeamRole.accountable_leader.value:
            continue  # its leader already (a team has one leader at most)
        wanted = {
            staff_id: role
            for staff_id, role in team.items()
            if role != TeamRole.accountable_leader.value
        }
        wanted[leader.id] = TeamRole.accountable_leader.value
        gone = _apply(
            session, recorder, customer_id, wanted, {leader.id: leader}, caller.subject, now
        )
        changed.append(customer_id)
        released.extend(GroupLeaderRelease(customer_id=customer_id, staff_id=s) for s in gone)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"the teams of the group of {group_id} were changed concurrently") from exc
    return GroupLeaderOut(
        group_id=group_id,
        staff_id=leader.id,
        customers=customers,
        changed=changed,
        released=released,
    )


# -- violations ---------------------------------------------------------------------------------
def violations(
    session: Session,
    caller: Caller,
    org_unit: str | None,
    case: TeamCase | None,
    limit: int,
    offset: int,
) -> tuple[list[ViolationOut], int]:
    """The customers of the caller's scope that need a team and lack a compliant one, by unit.

    Administrators see every customer; heads, auditors, credit approvers and line departments
    their subtree; staff who hold a book the customers they own.
    """
    where: list[ColumnElement[bool]] = []
    if caller.has_role(ROLE_ADMIN):
        pass
    elif caller.has_role(*VIOLATION_READERS):
        where.append(_within(caller.org_unit))
    elif caller.has_role(*access.BOOK_ROLES):
        owned = select(Ownership.customer_id).where(
            Ownership.staff_id == caller.subject, Ownership.ended_at.is_(None)
        )
        where.append(customer_refs.c.customer_id.in_(owned.scalar_subquery()))
    else:
        raise Forbidden("you may not read team violations")
    if org_unit:
        where.append(_within(org_unit))
    now = utcnow()
    policy = policy_on(now.date())
    found: list[ViolationOut] = []
    for subject in _subjects(session, where, policy, now):
        cases = cases_of(policy, subject, now)
        if not cases or (case is not None and case not in cases):
            continue
        gaps = gaps_of(policy, subject, cases, now.date())
        if gaps:
            found.append(
                ViolationOut(
                    customer_id=subject.customer_id,
                    name=subject.name,
                    org_unit=subject.org_unit,
                    owner=subject.owner.staff_id if subject.owner is not None else None,
                    managers=managers_of(subject),
                    cases=cases,
                    missing=gaps,
                    accountable_leader=accountable_leader_of(policy, subject),
                    group_id=subject.group_id,
                    group_leader=group_leader_of(policy, subject),
                )
            )
    return found[offset : offset + limit], len(found)


def _within(org_unit: str) -> ColumnElement[bool]:
    return in_subtree(customer_refs.c.org_unit, org_unit)
