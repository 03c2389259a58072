"""The manager's day plans 日工作报告 and the activity-volume and output tables per employee
(seed 001, seed 004) for the weekly and monthly meetings.

A day plan is saved by its staff member only, whole (first, second and minor tasks, and the
evening review with the actual counts); replacing it names the version read. It is read by the
staff member, the heads of the unit it was saved in, auditors and administrators.

An activity report counts per employee, over a day, a week (Monday to Sunday) or a month: the
contacts recorded by them or with them present by channel, the customers contacted, the due
contacts of their book met, their book and its customers overdue now, the opportunities noted,
the walk-in customers they identified at the counter, the leads and sales they recorded after
marketing events, and their day plans and evening reviews. Heads read their subtree's staff
(only the subtree's customers, visits and events count), auditors and administrators everyone,
a staff member their own row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit.auth import Caller
from crmkit.clock import business_today
from crmkit.csvout import BOM, csv_cell
from crmkit.db import in_subtree, one_of, utcnow
from crmkit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crmkit.versioning import check_version
from services.visits.agenda import (
    CARE,
    CHANNELS,
    PLANS,
    TABLES,
    activity_counts,
    all_seeing,
    day_start,
    empty_counts,
    is_head,
    live,
    policy_for,
)
from services.visits.models import customer_refs
from services.visits.models_marketing import MarketingEvent, MarketingOutcome, TellerLead
from services.visits.models_workday import DayPlan
from services.visits.schemas_followups import (
    ActivityCounts,
    ActivityPeriod,
    ActivityReport,
    ActivityRow,
    DayPlanIn,
    DayPlanOut,
    EveningActuals,
    EveningReview,
    PlanTask,
)

TELLER_LEADS = TABLES[TellerLead.__tablename__]
MARKETING_EVENTS = TABLES[MarketingEvent.__tablename__]
OUTCOMES = TABLES[MarketingOutcome.__tablename__]
ZERO = Decimal("0.00")


class Outputs(NamedTuple):
    """What followed from an employee's work in a period."""

    leads_identified: int
    event_leads: int
    event_sales: int
    sales_amount: Decimal


# -- day plans ----------------------------------------------------------------------------------
def _day_plan_out(session: Session, plan: DayPlan, unit: str | None) -> DayPlanOut:
    policy = policy_for(plan.plan_date)
    recorded = activity_counts(
        session, plan.plan_date, plan.plan_date, [plan.staff_id], unit, policy
    )
    return DayPlanOut(
        staff_id=plan.staff_id,
        date=plan.plan_date,
        org_unit=plan.org_unit,
        primary=[PlanTask.model_validate(t) for t in plan.primary_tasks],
        secondary=[PlanTask.model_validate(t) for t in plan.secondary_tasks],
        minor=[PlanTask.model_validate(t) for t in plan.minor_tasks],
        evening=EveningReview.model_validate(plan.evening) if plan.evening else None,
        version=plan.version,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        recorded=recorded[plan.staff_id],
    )


def _tasks(tasks: list[PlanTask]) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json", exclude_none=True) for t in tasks]


def _unknown_customers(session: Session, body: DayPlanIn) -> list[dict[str, str]]:
    named = {
        (part, n): str(task.customer_id)
        for part, tasks in (
            ("primary", body.primary),
            ("secondary", body.secondary),
            ("minor", body.minor),
        )
        for n, task in enumerate(tasks)
        if task.customer_id is not None
    }
    if not named:
        return []
    known = set(
        session.execute(
            select(customer_refs.c.customer_id).where(
                one_of(session, customer_refs.c.customer_id, sorted(set(named.values())))
            )
        ).scalars()
    )
    return [
        {"field": f"{part}.{n}.customer_id", "reason": f"no customer {cid} is known here"}
        for (part, n), cid in named.items()
        if cid not in known
    ]


def save_day_plan(
    session: Session,
    caller: Caller,
    staff_id: str,
    day: date,
    body: DayPlanIn,
    if_match: str | None,
) -> DayPlanOut:
    """Save the staff member's plan of ``day`` whole (the first save creates it; a later one
    names the version read)."""
    if caller.subject != staff_id:
        raise Forbidden(f"a day plan is saved by its staff member; you are not {staff_id}")
    errors = _unknown_customers(session, body)
    if errors:
        raise ValidationFailed("The plan names customers not known here.", errors=errors)
    now = utcnow()
    plan = session.get(DayPlan, (staff_id, day))
    if plan is None:
        plan = DayPlan(staff_id=staff_id, plan_date=day, created_at=now)
        session.add(plan)
    else:
        check_version(f"the day plan of {staff_id} on {day}", plan.version, body.version, if_match)
    plan.org_unit = caller.org_unit
    plan.primary_tasks = _tasks(body.primary)
    plan.secondary_tasks = _tasks(body.secondary)
    plan.minor_tasks = _tasks(body.minor)
    plan.evening = body.evening.model_dump(mode="json") if body.evening else None
    plan.updated_at = now
    try:
        session.commit()
    except (StaleDataError, IntegrityError) as exc:
        session.rollback()
        raise Conflict(
            f"the day plan of {staff_id} on {day} was saved concurrently; read it again"
        ) from exc
    return _day_plan_out(session, plan, None)


def read_day_plan(session: Session, caller: Caller, staff_id: str, day: date) -> DayPlanOut:
    plan = session.get(DayPlan, (staff_id, day))
    if plan is None:
        raise NotFound(f"{staff_id} saved no plan for {day}")
    own = caller.subject == staff_id or all_seeing(caller)
    if not own and not (is_head(caller) and caller.within(plan.org_unit)):
        raise Forbidden(
            f"the day plan of {staff_id} ({plan.org_unit}) is read by them, the heads of "
            "their unit, auditors and administrators"
        )
    return _day_plan_out(session, plan, None if own else caller.org_unit)


# -- activity reports ---------------------------------------------------------------------------
def period_days(period: ActivityPeriod, day: date) -> tuple[date, date]:
    """The first and last business date of the ``period`` holding ``day`` (weeks start on
    Monday)."""
    if period is ActivityPeriod.day:
        return day, day
    if period is ActivityPeriod.week:
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def _report_scope(
    caller: Caller, org_unit: str | None, staff_id: str | None
) -> tuple[str | None, str | None]:
    """(unit, staff) the caller's activity report is narrowed to."""
    if all_seeing(caller):
        return org_unit, staff_id
    if is_head(caller):
        unit = org_unit or caller.org_unit
        if not caller.within(unit):
            raise Forbidden(f"you head {caller.org_unit}; {unit} is outside it")
        return unit, staff_id
    if staff_id is not None and staff_id != caller.subject:
        raise Forbidden("you read your own activity; heads read their team's")
    return org_unit, caller.subject


def _book_counts(
    session: Session, staff_ids: Sequence[str] | None, unit: str | None, today: date
) -> dict[str, tuple[int, int]]:
    """Per owner, (customers owned, of them overdue today)."""
    c = CARE.c
    where: list[ColumnElement[bool]] = [c.owner_id.is_not(None), live()]
    if staff_ids is not None:
        where.append(one_of(session, c.owner_id, staff_ids))
    if unit is not None:
        where.append(in_subtree(c.org_unit, unit))
    late = func.sum(case((c.next_due_on < today, 1), else_=0))
    rows = session.execute(
        select(c.owner_id, func.count(), late)
        .select_from(CARE.join(customer_refs, customer_refs.c.customer_id == c.customer_id))
        .where(*where)
        .group_by(c.owner_id)
    ).all()
    return {r[0]: (int(r[1]), int(r[2] or 0)) for r in rows}


def _plans_of(
    session: Session, first: date, last: date, staff_ids: Sequence[str] | None, unit: str | None
) -> dict[str, tuple[int, int, EveningActuals]]:
    """Per staff member, (day plans saved, evening reviews given, the reviews' counts summed)."""
    p = PLANS.c
    where: list[ColumnElement[bool]] = [p.plan_date >= first, p.plan_date <= last]
    if staff_ids is not None:
        where.append(one_of(session, p.staff_id, staff_ids))
    if unit is not None:
        where.append(in_subtree(p.org_unit, unit))
    out: dict[str, tuple[int, int, EveningActuals]] = {}
    for staff, evening in session.execute(select(p.staff_id, p.evening).where(*where)).all():
        plans, reviews, summed = out.get(staff, (0, 0, EveningActuals()))
        if evening:
            summed = _add_actuals(summed, EveningReview.model_validate(evening).actuals)
            reviews += 1
        out[staff] = (plans + 1, reviews, summed)
    return out


def _add_actuals(a: EveningActuals, b: EveningActuals) -> EveningActuals:
    return EveningActuals.model_construct(
        **{name: getattr(a, name) + getattr(b, name) for name in EveningActuals.model_fields}
    )


def _outputs(
    session: Session, first: date, last: date, staff_ids: Sequence[str] | None, unit: str | None
) -> dict[str, Outputs]:
    """Per staff member, what followed from their work in the period: walk-in customers they
    identified at the counter (柜员识别, the teller register), and the leads and sales they
    recorded after marketing events (with the sales' amount)."""
    found: dict[str, Outputs] = {}
    t = TELLER_LEADS.c
    where: list[ColumnElement[bool]] = [t.identified_on >= first, t.identified_on <= last]
    if staff_ids is not None:
        where.append(one_of(session, t.teller_id, staff_ids))
    if unit is not None:
        where.append(in_subtree(t.org_unit, unit))
    for staff, count in session.execute(
        select(t.teller_id, func.count()).where(*where).group_by(t.teller_id)
    ).all():
        found[staff] = Outputs(int(count), 0, 0, ZERO)
    o, e = OUTCOMES.c, MARKETING_EVENTS.c
    where = [o.recorded_at >= day_start(first), o.recorded_at < day_start(last + timedelta(1))]
    if staff_ids is not None:
        where.append(one_of(session, o.recorded_by, staff_ids))
    if unit is not None:
        where.append(in_subtree(e.org_unit, unit))
    sale = o.kind == "sale"
    rows = session.execute(
        select(
            o.recorded_by,
            func.sum(case((sale, 0), else_=1)),
            func.sum(case((sale, 1), else_=0)),
            func.sum(case((sale, o.amount), else_=None)),
        )
        .join(MARKETING_EVENTS, e.id == o.event_id)
        .where(*where)
        .group_by(o.recorded_by)
    ).all()
    for staff, leads, sales, amount in rows:
        identified = found.get(staff, Outputs(0, 0, 0, ZERO)).leads_identified
        found[staff] = Outputs(identified, int(leads or 0), int(sales or 0), amount or ZERO)
    return found


def activity_report(
    session: Session,
    caller: Caller,
    org_unit: str | None,
    staff_id: str | None,
    period: ActivityPeriod,
    day: date,
    today: date | None = None,
) -> ActivityReport:
    """Activity volume and output per employee over the period holding ``day``: contacts by
    channel, customers contacted, due contacts met, the book and its overdue customers now,
    opportunities noted, day plans and the evening reviews' counts."""
    today = today or business_today()
    unit, staff = _report_scope(caller, org_unit, staff_id)
    first, last = period_days(period, day)
    staff_ids = [staff] if staff is not None else None
    counts = activity_counts(session, first, last, staff_ids, unit, policy_for(last))
    books = _book_counts(session, staff_ids, unit, today)
    plans = _plans_of(session, first, last, staff_ids, unit)
    outputs = _outputs(session, first, last, staff_ids, unit)
    everyone = sorted(set(counts) | set(books) | set(plans) | set(outputs) | set(staff_ids or ()))
    rows = [_row(s, counts.get(s), books.get(s), plans.get(s), outputs.get(s)) for s in everyone]
    return ActivityReport(
        org_unit=unit,
        period=period,
        start=first,
        end=last,
        as_of=today,
        rows=rows,
        total=_total(rows),
    )


def _row(
    staff_id: str,
    counts: ActivityCounts | None,
    book: tuple[int, int] | None,
    plans: tuple[int, int, EveningActuals] | None,
    outputs: Outputs | None,
) -> ActivityRow:
    counts = counts or empty_counts()
    owned, late = book or (0, 0)
    saved, reviews, reported = plans or (0, 0, EveningActuals())
    made = outputs or Outputs(0, 0, 0, ZERO)
    channels = {name: counts.by_channel.get(name, 0) for name in CHANNELS}
    return ActivityRow(
        staff_id=staff_id,
        visits=counts.visits,
        **channels,
        customers_contacted=counts.customers_contacted,
        due_met=counts.due_met,
        overdue_now=late,
        book=owned,
        opportunities=counts.opportunities,
        leads_identified=made.leads_identified,
        event_leads=made.event_leads,
        event_sales=made.event_sales,
        sales_amount=made.sales_amount,
        day_plans=saved,
        evening_reviews=reviews,
        reported=reported,
    )


_SUMMED = (
    "visits",
    *CHANNELS,
    "customers_contacted",
    "due_met",
    "overdue_now",
    "book",
    "opportunities",
    "leads_identified",
    "event_leads",
    "event_sales",
    "sales_amount",
    "day_plans",
    "evening_reviews",
)


def _total(rows: Iterable[ActivityRow]) -> ActivityRow:
    rows = list(rows)
    reported = EveningActuals()
    for row in rows:
        reported = _add_actuals(reported, row.reported)
    sums = {name: sum(getattr(r, name) for r in rows) for name in _SUMMED}
    return ActivityRow(staff_id="total", reported=reported, **sums)


ACTIVITY_COLUMNS: list[tuple[str, str]] = [
    ("staff_id", "staff_id (员工号)"),
    ("visits", "contacts (维护次数)"),
    ("in_person", "in_person (上门拜访)"),
    ("phone", "phone (电话)"),
    ("sms", "sms (短信)"),
    ("letter", "letter (信函)"),
    ("event", "event (活动)"),
    ("customers_contacted", "customers_contacted (联系客户数)"),
    ("due_met", "due_contacts_met (到期维护完成)"),
    ("overdue_now", "overdue_now (当前逾期未维护)"),
    ("book", "customers_owned (管户数)"),
    ("opportunities", "opportunities (营销机会)"),
    ("leads_identified", "leads_identified (柜员识别客户)"),
    ("event_leads", "event_leads (活动线索)"),
    ("event_sales", "event_sales (活动成交)"),
    ("sales_amount", "sales_amount (成交金额)"),
    ("day_plans", "day_plans (日工作计划)"),
    ("evening_reviews", "evening_reviews (夕会回顾)"),
    ("reported.visits", "reported_visits (自报拜访)"),
    ("reported.calls", "reported_calls (自报电话)"),
    ("reported.messages", "reported_messages (自报短信)"),
    ("reported.customers_contacted", "reported_customers (自报联系客户)"),
    ("reported.opportunities", "reported_opportunities (自报营销机会)"),
    ("reported.products_sold", "reported_products_sold (自报产品销售)"),
    ("reported.new_customers", "reported_new_customers (自报新增客户)"),
]


def _cell(row: ActivityRow, name: str) -> str:
    if name.startswith("reported."):
        return csv_cell(getattr(row.reported, name.removeprefix("reported.")))
    return csv_cell(getattr(row, name))


def activity_csv(report: ActivityReport) -> str:
    """The report as CSV for Excel: a row per employee and the total."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([label for _, label in ACTIVITY_COLUMNS])
    for row in [*report.rows, report.total]:
        writer.writerow([_cell(row, name) for name, _ in ACTIVITY_COLUMNS])
    return BOM + buffer.getvalue()


def activity_filename(report: ActivityReport) -> str:
    return f"activity-{report.period.value}-{report.start.isoformat()}.csv"
