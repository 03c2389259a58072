"""The manager's day 日工作报告 (seed 001): a customer's care state and importance, the overdue
lists by branch and manager, the daily agenda ordered by a score, and the activity recorded per
staff member (read by the agenda, the day plans and the activity reports in ``workday``).

Who reads what:

- a customer's care state: those who read the customer (its owner and serving team, heads of
  its subtree, auditors, administrators); its importance: those who record for it;
- overdue lists: a staff member their own customers, heads their subtree, auditors and
  administrators everything;
- an agenda: the staff member; heads of a subtree that holds customers the staff member owns
  (or where they saved a day plan) — only those customers; auditors and administrators.

The agenda's score (the weights are in the follow-up policy's ``agenda`` section): the plan's
weight for the customer's tiers (monthly 30, quarterly 20, half-yearly 10), the importance
(high +10, low -5), a point per day overdue (at most 60), 25 per open complaint (at most 3),
the risk status (watch 10, warning 25, severe 40), 20 when a credit limit ends within 30 days,
and the reason beyond the cycle (risk 30, post-sale 15, event 15). Ties: the earlier due date,
then the customer id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    exists,
    func,
    select,
    union,
)
from sqlalchemy.orm import Session

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.clock import BUSINESS_TZ, business_today
from crmkit.db import in_subtree, one_of, utcnow
from crmkit.errors import Forbidden, NotFound
from services.visits import access, complaints, followups
from services.visits.followups import CompiledPlan, FollowupPolicy
from services.visits.models import CustomerCare, customer_refs
from services.visits.models_records import Visit, VisitParticipant
from services.visits.models_workday import CareContact, DayPlan
from services.visits.schemas_followups import (
    ActivityCounts,
    Agenda,
    CareOut,
    CarePatch,
    HolidayAhead,
    OverdueGroup,
    OverdueItem,
    OverdueReport,
    PlanOut,
)

TABLES = CustomerCare.metadata.tables
CARE = TABLES[CustomerCare.__tablename__]
VISITS = TABLES[Visit.__tablename__]
PARTICIPANTS = TABLES[VisitParticipant.__tablename__]
CONTACTS = TABLES[CareContact.__tablename__]
PLANS = TABLES[DayPlan.__tablename__]
NORMAL = "normal"
CHANNELS = ("in_person", "phone", "sms", "letter", "event")


def policy_for(day: date) -> FollowupPolicy:
    """The policy in force on ``day``; for a day before every policy, the first one."""
    try:
        return followups.policy_on(day)
    except followups.FollowupPolicyError:
        return followups.policies()[0]


def all_seeing(caller: Caller) -> bool:
    return caller.has_role(ROLE_ADMIN, access.ROLE_AUDITOR)


def is_head(caller: Caller) -> bool:
    return caller.has_role(*access.HEADS)


def live() -> ColumnElement[bool]:
    """Customers with a plan: not closed, not merged away."""
    return customer_refs.c.status.not_in(sorted(followups.NO_PLAN_STATUSES))


def overdue_days(due: date | None, day: date) -> int:
    return max(0, (day - due).days) if due is not None else 0


# -- a customer's care state --------------------------------------------------------------------
def _care_and_ref(session: Session, customer_id: str) -> tuple[CustomerCare, str, str]:
    row = session.execute(
        select(CustomerCare, customer_refs.c.name, customer_refs.c.status)
        .join(customer_refs, customer_refs.c.customer_id == CustomerCare.customer_id)
        .where(CustomerCare.customer_id == customer_id)
    ).first()
    if row is None:
        raise NotFound(f"no customer {customer_id} is known to the visits service")
    return row[0], row[1], row[2]


def _plan_out(plan: CompiledPlan, care: CustomerCare) -> PlanOut:
    key, contact = plan.plan_for(care.value_tier, care.wealth_layer, care.vip_level)
    tiers = (care.value_tier, care.wealth_layer, care.vip_level, care.importance)
    return PlanOut(
        id=key,
        name=contact.name,
        interval_days=plan.step(tiers).days,
        channel=contact.channel.value,
        greetings=contact.greetings,
    )


def _care_out(care: CustomerCare, name: str, status: str, today: date) -> CareOut:
    closed = status in followups.NO_PLAN_STATUSES
    plan = None if closed else _plan_out(followups.compiled(policy_for(today)), care)
    return CareOut.model_validate(
        {
            "customer_id": care.customer_id,
            "name": name,
            "status": status,
            "org_unit": care.org_unit,
            "value_tier": care.value_tier,
            "wealth_layer": care.wealth_layer,
            "vip_level": care.vip_level,
            "aum": care.aum,
            "business_date": care.business_date,
            "importance": care.importance or NORMAL,
            "owner_id": care.owner_id,
            "last_contact_at": care.last_contact_at,
            "last_channel": care.last_channel,
            "next_due_on": care.next_due_on,
            "due_reason": care.due_reason,
            "overdue_days": overdue_days(care.next_due_on, today),
            "plan": plan,
            "plan_version": care.plan_version,
            "risk_status": care.risk_status,
            "credit_limit_expires_on": care.credit_limit_expires_on,
            "updated_at": care.updated_at,
        }
    )


def read_care(
    session: Session, caller: Caller, customer_id: str, today: date | None = None
) -> CareOut:
    """The customer's follow-up state, its plan and next contact due."""
    care, name, status = _care_and_ref(session, customer_id)
    if not access.may_read_customer(session, caller, customer_id, care.org_unit):
        raise Forbidden(
            f"customer {customer_id} ({care.org_unit}) is neither owned nor served by you, nor "
            "in the subtree you head"
        )
    return _care_out(care, name, status, today or business_today())


def set_importance(
    session: Session, caller: Caller, customer_id: str, patch: CarePatch, today: date | None = None
) -> CareOut:
    """The owner's (or a head's) assessment of the customer's importance; the next contact is
    derived again by it. Last writer wins: the one field is all the change holds."""
    today = today or business_today()
    care, name, status = _care_and_ref(session, customer_id)
    if not access.may_record(session, caller, customer_id, care.org_unit):
        raise Forbidden(
            f"the importance of customer {customer_id} ({care.org_unit}) is set by its owner or "
            "serving team, a head of its subtree or an administrator; you are none"
        )
    care.importance = patch.importance.value
    followups.refresh(session, care, today)
    care.updated_at = utcnow()
    session.commit()
    return _care_out(care, name, status, today)


# -- overdue lists ------------------------------------------------------------------------------
def _overdue_scope(
    caller: Caller, org_unit: str | None, owner: str | None
) -> tuple[str | None, str | None]:
    """(unit, owner) the caller's overdue list is narrowed to."""
    if all_seeing(caller):
        return org_unit, owner
    if is_head(caller):
        unit = org_unit or caller.org_unit
        if not caller.within(unit):
            raise Forbidden(f"you head {caller.org_unit}; {unit} is outside it")
        return unit, owner
    if owner is not None and owner != caller.subject:
        raise Forbidden("you read your own overdue customers; heads read their subtree's")
    return org_unit, caller.subject


def overdue(
    session: Session,
    caller: Caller,
    org_unit: str | None,
    owner: str | None,
    limit: int,
    offset: int,
    today: date | None = None,
) -> OverdueReport:
    """Customers whose next contact was due before today, by branch and manager."""
    today = today or business_today()
    unit, owner = _overdue_scope(caller, org_unit, owner)
    c = CARE.c
    where: list[ColumnElement[bool]] = [c.next_due_on < today, live()]
    if unit is not None:
        where.append(in_subtree(c.org_unit, unit))
    if owner is not None:
        where.append(c.owner_id == owner)
    joined = CARE.join(customer_refs, customer_refs.c.customer_id == c.customer_id)
    total = session.execute(select(func.count()).select_from(joined).where(*where)).scalar_one()
    rows = session.execute(
        select(
            c.customer_id,
            customer_refs.c.name,
            c.org_unit,
            c.owner_id,
            c.value_tier,
            c.wealth_layer,
            c.vip_level,
            c.importance,
            c.next_due_on,
            c.due_reason,
            c.last_contact_at,
            c.last_channel,
        )
        .select_from(joined)
        .where(*where)
        .order_by(c.org_unit, func.coalesce(c.owner_id, ""), c.next_due_on, c.customer_id)
        .limit(limit)
        .offset(offset)
    ).all()
    groups = session.execute(
        select(c.org_unit, c.owner_id, func.count(), func.min(c.next_due_on))
        .select_from(joined)
        .where(*where)
        .group_by(c.org_unit, c.owner_id)
        .order_by(c.org_unit, func.coalesce(c.owner_id, ""))
    ).all()
    return OverdueReport(
        as_of=today,
        items=[
            OverdueItem.model_validate(
                {
                    **row._asdict(),
                    "importance": row.importance or NORMAL,
                    "overdue_days": overdue_days(row.next_due_on, today),
                }
            )
            for row in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
        groups=[
            OverdueGroup(
                org_unit=g[0],
                owner_id=g[1],
                customers=int(g[2]),
                most_overdue_days=overdue_days(g[3], today),
            )
            for g in groups
        ],
    )


# -- the agenda ---------------------------------------------------------------------------------
SCORE_PARTS = ("tier", "importance", "overdue", "complaints", "risk", "limit", "reason")
Parts = tuple[int, int, int, int, int, int, int]


def score(
    policy: FollowupPolicy,
    plan_weight: int,
    importance: str | None,
    overdue: int,
    open_complaints: int,
    risk_status: str | None,
    limit_expiring: bool,
    reason: str | None,
) -> Parts:
    """An agenda entry's score, part by part in the order of ``SCORE_PARTS`` (see the module's
    docstring); the score is their sum."""
    weights = policy.agenda
    return (
        plan_weight,
        weights.importance.get(importance or NORMAL, 0),
        min(overdue, weights.overdue_days_cap) * weights.overdue_day,
        min(open_complaints, weights.open_complaints_cap) * weights.open_complaint,
        weights.risk.get(risk_status or "", 0),
        weights.limit_expiring if limit_expiring else 0,
        weights.reason.get(reason or followups.CYCLE, 0),
    )


def staff_scope(session: Session, caller: Caller, staff_id: str, what: str) -> str | None:
    """The org subtree the caller reads of a staff member's customers (None: all of them)."""
    if caller.subject == staff_id or all_seeing(caller):
        return None
    if is_head(caller) and _staff_within(session, staff_id, caller.org_unit):
        return caller.org_unit
    raise Forbidden(
        f"you read your own {what}; heads read the {what} of staff who hold customers in their "
        f"subtree, and {staff_id} holds none in {caller.org_unit}"
    )


def _staff_within(session: Session, staff_id: str, unit: str) -> bool:
    c = CARE.c
    holds = exists().where(c.owner_id == staff_id, in_subtree(c.org_unit, unit))
    planned = exists().where(PLANS.c.staff_id == staff_id, in_subtree(PLANS.c.org_unit, unit))
    return bool(session.execute(select(holds | planned)).scalar())


def _owned(staff_id: str, unit: str | None) -> list[ColumnElement[bool]]:
    c = CARE.c
    where: list[ColumnElement[bool]] = [c.owner_id == staff_id]
    if unit is not None:
        where.append(in_subtree(c.org_unit, unit))
    return where


def _agenda_query(staff_id: str, day: date, unit: str | None) -> Select[Any]:
    """The staff member's customers due by ``day`` (id, name, status, then the care columns),
    by the owner-and-due index. The name and status are looked up by key for each row: joined
    instead, PostgreSQL may read every customer's copy to hash them."""
    c, refs = CARE.c, customer_refs.c

    def of_customer(column: Any) -> Any:
        return select(column).where(refs.customer_id == c.customer_id).scalar_subquery()

    return select(
        c.customer_id,
        of_customer(refs.name),
        of_customer(refs.status),
        c.org_unit,
        c.value_tier,
        c.wealth_layer,
        c.vip_level,
        c.importance,
        c.next_due_on,
        c.due_reason,
        c.last_contact_at,
        c.last_channel,
        c.risk_status,
        c.credit_limit_expires_on,
    ).where(*_owned(staff_id, unit), c.next_due_on <= day)


def names_of(session: Session, customer_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(name, status) of each customer known here, by id."""
    if not customer_ids:
        return {}
    refs = customer_refs.c
    rows = session.execute(
        select(refs.customer_id, refs.name, refs.status).where(
            one_of(session, refs.customer_id, customer_ids)
        )
    )
    return {cid: (name, status) for cid, name, status in rows}


def _due_rows(
    session: Session, staff_id: str, day: date, unit: str | None
) -> list[tuple[Any, ...]]:
    """The agenda's rows (id, name, then the care columns), closed and merged customers left
    out (and a care row whose customer copy is missing)."""
    closed = followups.NO_PLAN_STATUSES
    return [
        (cid, name, *rest)
        for cid, name, status, *rest in session.execute(_agenda_query(staff_id, day, unit))
        if status is not None and status not in closed
    ]


class _Entry(NamedTuple):
    """A customer on the agenda, scored (its wire fields are built only for the page sent)."""

    rank: tuple[int, date, str]  # (- score, due date, customer id): the agenda's order
    row: tuple[Any, ...]  # as :func:`_agenda_query` selects it
    parts: Parts
    overdue_days: int
    open_complaints: int
    limit_expiring: bool
    reason: str
    channel: str

    def item(self) -> dict[str, Any]:
        """The entry as the fields of :class:`AgendaItem`."""
        cid, name, unit, vt, wl, vip, imp, due, _, last_at, last_ch, risk, expires = self.row
        return {
            "customer_id": cid,
            "name": name,
            "org_unit": unit,
            "value_tier": vt,
            "wealth_layer": wl,
            "vip_level": vip,
            "importance": imp or NORMAL,
            "next_due_on": due,
            "due_reason": self.reason,
            "overdue_days": self.overdue_days,
            "channel": self.channel,
            "last_contact_at": last_at,
            "last_channel": last_ch,
            "open_complaints": self.open_complaints,
            "risk_status": risk,
            "credit_limit_expires_on": expires,
            "limit_expiring": self.limit_expiring,
            "score": -self.rank[0],
            "score_parts": dict(zip(SCORE_PARTS, self.parts, strict=True)),
        }


def scored_entries(
    policy: FollowupPolicy,
    rows: Sequence[tuple[Any, ...]],
    open_by_customer: dict[str, int],
    day: date,
) -> list[_Entry]:
    """The agenda's rows scored and ordered: the highest score first, then the earlier due
    date, then the customer id."""
    plan = followups.compiled(policy)
    expiring_by = day + timedelta(days=policy.agenda.limit_expiring_within_days)
    extra = policy.extra
    entries: list[_Entry] = []
    for row in rows:
        cid, _, _, vt, wl, vip, imp, due, reason, _, _, risk, expires = row
        contact = plan.plan_for(vt, wl, vip)[1]
        late = overdue_days(due, day)
        expiring = expires is not None and day <= expires <= expiring_by
        opened = open_by_customer.get(cid, 0)
        reason = reason or followups.CYCLE
        parts = score(policy, contact.agenda_weight, imp, late, opened, risk, expiring, reason)
        channel = extra[reason].channel if reason in extra else contact.channel
        entries.append(
            _Entry((-sum(parts), due, cid), row, parts, late, opened, expiring, reason, channel)
        )
    entries.sort(key=itemgetter(0))
    return entries


def agenda(
    session: Session,
    caller: Caller,
    staff_id: str,
    day: date,
    limit: int,
    offset: int,
) -> Agenda:
    """The customers ``staff_id`` owns with a contact due on or before ``day``, most important
    first, with the day's activity and the holidays to greet for ahead."""
    unit = staff_scope(session, caller, staff_id, "agenda")
    policy = policy_for(day)
    rows = _due_rows(session, staff_id, day, unit)
    open_by_customer = complaints.open_counts(session, [row[0] for row in rows])
    entries = scored_entries(policy, rows, open_by_customer, day)
    saved = session.get(DayPlan, (staff_id, day)) is not None
    # One validation of the whole answer: the page's entries are plain dictionaries until here.
    return Agenda.model_validate(
        {
            "staff_id": staff_id,
            "date": day,
            "plan_version": policy.version,
            "due": len(entries),
            "overdue": sum(1 for e in entries if e.overdue_days > 0),
            "items": [e.item() for e in entries[offset : offset + limit]],
            "total": len(entries),
            "limit": limit,
            "offset": offset,
            "activity": activity_counts(session, day, day, [staff_id], unit, policy)[staff_id],
            "day_plan_saved": saved,
            "holidays_ahead": _holidays_ahead(session, policy, staff_id, day, unit),
        }
    )


def _holidays_ahead(
    session: Session, policy: FollowupPolicy, staff_id: str, day: date, unit: str | None
) -> list[HolidayAhead]:
    upcoming = followups.upcoming_holidays(policy, day)
    if not upcoming:
        return []
    c = CARE.c
    tiers, layers, levels = policy.greeting_tiers()
    greeted = c.value_tier.in_(tiers) | c.wealth_layer.in_(layers) | c.vip_level.in_(levels)
    ids = session.execute(select(c.customer_id).where(*_owned(staff_id, unit), greeted)).scalars()
    names = names_of(session, list(ids))
    count = sum(1 for _, status in names.values() if status not in followups.NO_PLAN_STATUSES)
    return [
        HolidayAhead(id=h.id, name=h.name, on=on, customers_to_greet=int(count))
        for h, on in upcoming
    ]


# -- recorded activity --------------------------------------------------------------------------
def day_start(day: date) -> datetime:
    """The first instant of a business date, in UTC."""
    return datetime.combine(day, time.min, tzinfo=BUSINESS_TZ).astimezone(UTC)


def empty_counts() -> ActivityCounts:
    return ActivityCounts(
        visits=0, by_channel={}, customers_contacted=0, opportunities=0, due_met=0
    )


def activity_counts(
    session: Session,
    first: date,
    last: date,
    staff_ids: Sequence[str] | None,
    unit: str | None,
    policy: FollowupPolicy,
) -> dict[str, ActivityCounts]:
    """Per staff member, the contacts recorded from ``first`` to ``last`` (business dates) by
    them or with them present (the current version of each record; the customers of ``unit``
    when given), and the due contacts of their book met (from the contacts the plan logged).
    With ``staff_ids`` None: everyone found."""
    visits = _visits_of(session, first, last, staff_ids, unit)
    met = _due_met(session, first, last, staff_ids, unit, policy.due_met_window_days)
    found: dict[str, ActivityCounts] = {s: empty_counts() for s in staff_ids or ()}
    customers: dict[str, set[str]] = {}
    for staff, customer_id, channel, opportunities in visits:
        counts = found.setdefault(staff, empty_counts())
        counts.visits += 1
        counts.by_channel[channel] = counts.by_channel.get(channel, 0) + 1
        counts.opportunities += len(opportunities or ())
        customers.setdefault(staff, set()).add(customer_id)
    for staff, contacted in customers.items():
        found[staff].customers_contacted = len(contacted)
    for staff, count in met.items():
        found.setdefault(staff, empty_counts()).due_met = count
    return found


def _visits_of(
    session: Session, first: date, last: date, staff_ids: Sequence[str] | None, unit: str | None
) -> list[tuple[str, str, str, list[str] | None]]:
    v = VISITS.c
    corrected = VISITS.alias("corrected")
    window: list[ColumnElement[bool]] = [
        v.visited_at >= day_start(first),
        v.visited_at < day_start(last + timedelta(days=1)),
        ~exists().where(corrected.c.corrects == v.id),
    ]
    if unit is not None:
        window.append(in_subtree(v.org_unit, unit))
    recorders = select(v.recorded_by.label("staff_id"), v.id.label("visit_id")).where(*window)
    present = (
        select(PARTICIPANTS.c.staff_id, PARTICIPANTS.c.visit_id)
        .join(VISITS, v.id == PARTICIPANTS.c.visit_id)
        .where(*window)
    )
    if staff_ids is not None:
        recorders = recorders.where(one_of(session, v.recorded_by, staff_ids))
        present = present.where(one_of(session, PARTICIPANTS.c.staff_id, staff_ids))
    people = union(recorders, present).subquery()
    rows = session.execute(
        select(people.c.staff_id, v.customer_id, v.channel, v.opportunities).join(
            VISITS, v.id == people.c.visit_id
        )
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def _due_met(
    session: Session,
    first: date,
    last: date,
    staff_ids: Sequence[str] | None,
    unit: str | None,
    window_days: int,
) -> dict[str, int]:
    """Contacts with customers of each owner's book made on or after ``window_days`` before
    their due date: the due contacts met."""
    k = CONTACTS.c
    where: list[ColumnElement[bool]] = [
        k.contact_day >= first,
        k.contact_day <= last,
        k.owner_id.is_not(None),
        k.due_on.is_not(None),
    ]
    if staff_ids is not None:
        where.append(one_of(session, k.owner_id, staff_ids))
    if unit is not None:
        where.append(in_subtree(k.org_unit, unit))
    rows = session.execute(select(k.owner_id, k.contact_day, k.due_on).where(*where)).all()
    met: Counter[str] = Counter()
    window = timedelta(days=window_days)
    for owner, day, due in rows:
        if day >= due - window:
            met[owner] += 1
    return dict(met)
