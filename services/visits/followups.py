"""Follow-up plans 维护计划: each customer's next contact due, derived from the plan for its tier
in force, the owner's assessment of its importance and its last contact; reminders.

The plan is data (``policy/followups/<effective date>.json``): each tier dimension names a plan
(an interval and a channel), the most frequent plan of those that apply wins, and the importance
multiplies the interval. The next contact is due one interval after the last contact; a customer
never contacted counts from the day its current owner took it; a customer with neither an owner
nor a contact keeps the due date it was first given (the day it was first seen here plus the
interval) — it still appears, by branch, in the overdue lists. A post-sale follow-up, a risk
flag or a customer event brings the date forward (never back); that earlier date stands until
a contact is made. Closed and merged customers have no contact due.

The derivation itself (:func:`next_due`) is a pure function of plain values over intervals
compiled once per policy, so that the whole book is derived again in chunks (:func:`derive_all`,
after a policy change) without ORM objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from sqlalchemy import (
    Column,
    ColumnElement,
    Date,
    MetaData,
    Select,
    String,
    Table,
    and_,
    bindparam,
    exists,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from crmkit.clock import BUSINESS_TZ, business_today
from crmkit.db import UtcDateTime, utcnow
from crmkit.outbox import insert_rows, recorder_of
from crmkit.policy import load_policy_file
from crmkit.runtime import ServiceRuntime
from services.visits import events
from services.visits.models import CustomerCare, customer_refs, owner_refs
from services.visits.models_workday import CareContact, GreetingReminder
from services.visits.settings import VisitsSettings

POLICY_DIR = Path(__file__).with_name("policy") / "followups"
CARE = CustomerCare.metadata.tables[CustomerCare.__tablename__]
GREETINGS = CustomerCare.metadata.tables[GreetingReminder.__tablename__]
CYCLE = "cycle"
GREETING = "greeting"
EXTRA_REASONS = ("post_sale", "risk", "event")
# Customers with no contact due: closed ones, and records merged into another.
CLOSED = "closed"
NO_PLAN_STATUSES = frozenset({CLOSED, "merged"})
OWNER = "owner"
DERIVE_CHUNK = 5000
REMIND_CHUNK = 500


class FollowupPolicyError(ValueError):
    """A follow-up policy file that cannot be used."""


# -- the policy ---------------------------------------------------------------------------------
class Channel(StrEnum):
    """How a contact is made 联系方式."""

    in_person = "in_person"  # 上门拜访
    phone = "phone"  # 电话
    sms = "sms"  # 短信
    letter = "letter"  # 信函
    event = "event"  # 活动


class ContactPlan(BaseModel):
    """A contact cycle: every ``interval_days`` by ``channel``; ``greetings``: holiday greetings
    too; ``agenda_weight``: what the plan adds to the agenda score."""

    model_config = ConfigDict(extra="forbid")

    name: str
    interval_days: int = Field(ge=1, le=3660)
    channel: Channel
    greetings: bool = False
    agenda_weight: int = Field(ge=0)


class ExtraContact(BaseModel):
    """A contact beyond the cycle, due within ``within_days`` of what caused it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    within_days: int = Field(ge=0, le=366)
    channel: Channel


class Holiday(BaseModel):
    """A holiday for greetings: a fixed ``month_day`` ("10-01"), or its ``dates`` year by year
    (the lunar holidays)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+$", max_length=40)
    name: str
    month_day: str | None = Field(default=None, pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
    dates: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_way(self) -> Holiday:
        if (self.month_day is None) == (not self.dates):
            raise ValueError(f"holiday {self.id}: give either month_day or dates")
        return self

    def between(self, first: date, last: date) -> list[date]:
        """The days of this holiday from ``first`` to ``last`` (both included)."""
        if self.month_day is None:
            return [d for d in self.dates if first <= d <= last]
        month, day = (int(part) for part in self.month_day.split("-"))
        found = []
        for year in range(first.year, last.year + 1):
            try:
                on = date(year, month, day)
            except ValueError:  # 02-29 outside a leap year
                continue
            if first <= on <= last:
                found.append(on)
        return found


class Greetings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days_ahead: int = Field(ge=0, le=60)
    channel: Channel
    holidays: list[Holiday]


class AgendaWeights(BaseModel):
    """The daily agenda's score (see :func:`services.visits.agenda.score`)."""

    model_config = ConfigDict(extra="forbid")

    overdue_day: int = Field(ge=0)
    overdue_days_cap: int = Field(ge=0)
    open_complaint: int = Field(ge=0)
    open_complaints_cap: int = Field(ge=0)
    risk: dict[str, int]
    limit_expiring: int = Field(ge=0)
    limit_expiring_within_days: int = Field(ge=0)
    reason: dict[str, int]
    importance: dict[str, int]


class TierPlans(BaseModel):
    """Per tier dimension, the plan of each value."""

    model_config = ConfigDict(extra="forbid")

    value_tier: dict[str, str]
    wealth_layer: dict[str, str]
    vip_level: dict[str, str]


class FollowupPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^followups$")
    version: str = Field(max_length=20)
    effective_from: date
    description: str
    plans: dict[str, ContactPlan] = Field(min_length=1)
    tiers: TierPlans
    default_plan: str
    importance: dict[str, Decimal]
    extra: dict[str, ExtraContact]
    due_met_window_days: int = Field(ge=0)
    greetings: Greetings
    agenda: AgendaWeights
    _compiled: CompiledPlan | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _sound(self) -> FollowupPolicy:
        named = {self.default_plan}
        for dimension in (self.tiers.value_tier, self.tiers.wealth_layer, self.tiers.vip_level):
            named.update(dimension.values())
        unknown = named - set(self.plans)
        if unknown:
            raise ValueError(f"plans named but not defined: {', '.join(sorted(unknown))}")
        if set(self.extra) != set(EXTRA_REASONS):
            raise ValueError(f"extra must define exactly: {', '.join(EXTRA_REASONS)}")
        if "normal" not in self.importance or any(f <= 0 for f in self.importance.values()):
            raise ValueError("importance needs a positive factor for normal and every level")
        if set(self.agenda.reason) != {CYCLE, *EXTRA_REASONS}:
            raise ValueError("agenda.reason must weigh cycle and every extra reason")
        return self

    def greeting_tiers(self) -> tuple[list[str], list[str], list[str]]:
        """The value tiers, wealth layers and VIP levels whose plan sends holiday greetings."""
        greets = {key for key, plan in self.plans.items() if plan.greetings}
        return (
            [v for v, p in self.tiers.value_tier.items() if p in greets],
            [v for v, p in self.tiers.wealth_layer.items() if p in greets],
            [v for v, p in self.tiers.vip_level.items() if p in greets],
        )


@cache
def policies(directory: Path = POLICY_DIR) -> tuple[FollowupPolicy, ...]:
    found = [
        load_policy_file(path, FollowupPolicy, "follow-up policy", FollowupPolicyError)
        for path in sorted(directory.glob("*.json"))
    ]
    if not found:
        raise FollowupPolicyError(f"no follow-up policy in {directory}")
    return tuple(sorted(found, key=lambda p: p.effective_from))


def policy_on(day: date, directory: Path = POLICY_DIR) -> FollowupPolicy:
    """The policy in force on ``day`` (the latest effective on or before it)."""
    in_force = [p for p in policies(directory) if p.effective_from <= day]
    if not in_force:
        raise FollowupPolicyError(f"no follow-up policy in force on {day}")
    return in_force[-1]


# -- the derivation -----------------------------------------------------------------------------
TierKey = tuple[str | None, str | None, str | None, str | None]


class CompiledPlan:
    """A policy's intervals per (value tier, wealth layer, VIP level, importance), worked out
    once: deriving a customer's due date is then one dictionary lookup and one addition."""

    def __init__(self, policy: FollowupPolicy) -> None:
        self.policy = policy
        self.version = policy.version
        self.steps: dict[TierKey, timedelta] = {}
        self._plans: dict[tuple[str | None, str | None, str | None], tuple[str, ContactPlan]] = {}
        tiers = policy.tiers
        for value_tier in (None, *tiers.value_tier):
            for wealth_layer in (None, *tiers.wealth_layer):
                for vip_level in (None, *tiers.vip_level):
                    for importance in (None, *policy.importance):
                        self.step((value_tier, wealth_layer, vip_level, importance))

    def plan_for(
        self, value_tier: str | None, wealth_layer: str | None, vip_level: str | None
    ) -> tuple[str, ContactPlan]:
        """The plan that applies: of the plans the tiers name, the most frequent (the shortest
        interval; on a tie, value tier before wealth layer before VIP level); the default plan
        when no tier names one."""
        found = self._plans.get((value_tier, wealth_layer, vip_level))
        if found is None:
            found = self._plans[(value_tier, wealth_layer, vip_level)] = self._plan_for(
                value_tier, wealth_layer, vip_level
            )
        return found

    def _plan_for(
        self, value_tier: str | None, wealth_layer: str | None, vip_level: str | None
    ) -> tuple[str, ContactPlan]:
        tiers = self.policy.tiers
        named = [
            key
            for key in (
                tiers.value_tier.get(value_tier or ""),
                tiers.wealth_layer.get(wealth_layer or ""),
                tiers.vip_level.get(vip_level or ""),
            )
            if key is not None
        ]
        if not named:
            named = [self.policy.default_plan]
        key = min(named, key=lambda k: self.policy.plans[k].interval_days)
        return key, self.policy.plans[key]

    def interval_days(self, key: TierKey) -> int:
        """The plan's interval times the importance factor, rounded half up, at least a day."""
        _, plan = self.plan_for(key[0], key[1], key[2])
        factors = self.policy.importance
        factor = factors.get(key[3] or "normal", factors["normal"])
        days = (Decimal(plan.interval_days) * factor).quantize(Decimal(1), ROUND_HALF_UP)
        return max(1, int(days))

    def step(self, key: TierKey) -> timedelta:
        """The interval for ``key`` (computed and kept the first time an unknown value shows)."""
        found = self.steps.get(key)
        if found is None:
            found = self.steps[key] = timedelta(days=self.interval_days(key))
        return found


def compiled(policy: FollowupPolicy) -> CompiledPlan:
    """The policy's compiled plan (worked out on first use and kept with the policy)."""
    found = policy._compiled
    if found is None:
        found = policy._compiled = CompiledPlan(policy)
    return found


def compiled_on(day: date) -> CompiledPlan:
    return compiled(policy_on(day))


def next_due(
    plan: CompiledPlan,
    value_tier: str | None,
    wealth_layer: str | None,
    vip_level: str | None,
    importance: str | None,
    last_contact: date | None,
    known_since: date | None,
    pending: tuple[date, str] | None = None,
) -> tuple[date, str] | None:
    """The next contact due and why: one interval of the plan after the last contact (or, with
    none, after ``known_since``: the day the owner took the customer); ``pending``, a date set
    for a reason beyond the cycle, stands when it is earlier (or the same day). None when there
    is nothing to count from and nothing pending."""
    base = last_contact if last_contact is not None else known_since
    if base is None:
        return pending
    key = (value_tier, wealth_layer, vip_level, importance)
    step = plan.steps.get(key)
    due = base + (step if step is not None else plan.step(key))
    if pending is not None and pending[0] <= due:
        return pending
    return due, CYCLE


def business_day(at: datetime) -> date:
    """The business date (Asia/Shanghai) of an aware time."""
    return at.astimezone(BUSINESS_TZ).date()


# -- one customer -------------------------------------------------------------------------------
def _status_and_owner_since(session: Session, customer_id: str) -> tuple[str | None, date | None]:
    row = session.execute(
        select(customer_refs.c.status, owner_refs.c.since)
        .select_from(customer_refs)
        .outerjoin(
            owner_refs,
            and_(
                owner_refs.c.customer_id == customer_refs.c.customer_id,
                owner_refs.c.role == OWNER,
            ),
        )
        .where(customer_refs.c.customer_id == customer_id)
    ).first()
    if row is None:
        return None, None
    since: datetime | None = row[1]
    return row[0], business_day(since) if since is not None else None


def _pending(care: CustomerCare) -> tuple[date, str] | None:
    if care.next_due_on is not None and care.due_reason in EXTRA_REASONS:
        return care.next_due_on, care.due_reason
    return None


def refresh(session: Session, care: CustomerCare, today: date | None = None) -> None:
    """Derive ``care``'s next contact due from the plan in force (an earlier due date set for a
    reason beyond the cycle stands until a contact is made)."""
    today = today or business_today()
    status, owner_since = _status_and_owner_since(session, care.customer_id)
    if status in NO_PLAN_STATUSES:
        care.next_due_on = care.due_reason = None
        return
    plan = compiled_on(today)
    last = business_day(care.last_contact_at) if care.last_contact_at is not None else None
    pending = _pending(care)
    if last is None and owner_since is None:
        if care.next_due_on is not None:
            care.plan_version = plan.version
            return  # neither owner nor contact: the date first given stays
        owner_since = today
    derived = next_due(
        plan,
        care.value_tier,
        care.wealth_layer,
        care.vip_level,
        care.importance,
        last,
        owner_since,
        pending,
    )
    if derived is not None:
        care.next_due_on, care.due_reason = derived
    care.plan_version = plan.version


def due_extra(session: Session, care: CustomerCare, reason: str, due_on: date) -> None:
    """Bring the next contact forward for a reason beyond the cycle: ``post_sale``, ``risk`` or
    ``event``. ``due_on`` is the business day it happened; the contact is due within the
    policy's days for the reason (a post-sale follow-up 7 days, a risk visit 3). A later date
    than the one due already changes nothing."""
    if reason not in EXTRA_REASONS:
        raise ValueError(f"not a reason beyond the cycle: {reason}")
    status, _ = _status_and_owner_since(session, care.customer_id)
    if status in NO_PLAN_STATUSES:
        return
    policy = policy_on(due_on)
    target = due_on + timedelta(days=policy.extra[reason].within_days)
    current = care.next_due_on
    if current is None or target < current or (target == current and care.due_reason == CYCLE):
        care.next_due_on = target
        care.due_reason = reason
        care.plan_version = policy.version


def contact_made(session: Session, customer_id: str, at: datetime, channel: str) -> None:
    """A contact with the customer was recorded: the last contact moves, the next is derived.

    The contact satisfies whatever was pending (a post-sale, risk or event contact); it is
    logged with the due date it met, for the activity reports. A contact older than the last
    one known is logged but moves nothing."""
    care = session.get(CustomerCare, customer_id)
    if care is None:
        return
    newer = care.last_contact_at is None or at > care.last_contact_at
    session.add(
        CareContact(
            customer_id=customer_id,
            owner_id=care.owner_id,
            org_unit=care.org_unit,
            contacted_at=at,
            contact_day=business_day(at),
            channel=channel,
            due_on=care.next_due_on if newer else None,
            due_reason=care.due_reason if newer else None,
        )
    )
    if not newer:
        return
    care.last_contact_at = at
    care.last_channel = channel
    care.due_reason = None  # whatever was pending is met
    care.next_due_on = None
    refresh(session, care)
    care.updated_at = utcnow()


# -- the whole book -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Derivation:
    """What a derivation of the whole book did."""

    plan_version: str
    walked: int
    changed: int


def chunk_end(session: Session, after: str, size: int) -> str | None:
    """The id of the last customer of the chunk of ``size`` after ``after`` in id order; None
    when fewer are left (the chunk runs to the end)."""
    c = CARE.c
    return session.execute(
        select(c.customer_id)
        .where(c.customer_id > after)
        .order_by(c.customer_id)
        .offset(size - 1)
        .limit(1)
    ).scalar_one_or_none()


def _book_query(after: str, last: str | None) -> Select[Any]:
    """The care rows with ids in (``after``, ``last``], with their status and owner's start.

    Every table is bounded by the id range (not by a limit over a join): PostgreSQL then reads
    the chunk's rows of each by key, where a join under a limit let it scan the copies whole."""

    def within(column: Any) -> ColumnElement[bool]:
        above = column > after
        return above if last is None else and_(above, column <= last)

    c = CARE.c
    return (
        select(
            c.customer_id,
            customer_refs.c.status,
            c.value_tier,
            c.wealth_layer,
            c.vip_level,
            c.importance,
            c.last_contact_at,
            owner_refs.c.since,
            c.next_due_on,
            c.due_reason,
            c.plan_version,
            c.updated_at,
        )
        .select_from(CARE)
        .outerjoin(
            customer_refs,
            and_(
                customer_refs.c.customer_id == c.customer_id,
                within(customer_refs.c.customer_id),
            ),
        )
        .outerjoin(
            owner_refs,
            and_(
                owner_refs.c.customer_id == c.customer_id,
                owner_refs.c.role == OWNER,
                within(owner_refs.c.customer_id),
            ),
        )
        .where(within(c.customer_id))
        .order_by(c.customer_id)
    )


Derived = tuple[str, datetime, date | None, str | None, str | None]  # id, seen, due, reason, plan


def derive_rows(plan: CompiledPlan, rows: Sequence[Sequence[Any]], today: date) -> list[Derived]:
    """The rows of :func:`_book_query` whose due date, reason or plan version change, with
    their new values (the hot path of :func:`derive_all`: plain tuples, no ORM)."""
    version = plan.version
    steps = plan.steps
    zone = BUSINESS_TZ
    out: list[Derived] = []
    append = out.append
    for cid, status, vt, wl, vip, imp, last_at, since, due, reason, was, seen in rows:
        if status in NO_PLAN_STATUSES:
            if due is not None or reason is not None:
                append((cid, seen, None, None, was))
            continue
        pending = (due, reason) if due is not None and reason in EXTRA_REASONS else None
        if last_at is not None:
            base = last_at.astimezone(zone).date()
        elif since is not None:
            base = since.astimezone(zone).date()
        elif due is not None:
            if was != version:
                append((cid, seen, due, reason, version))
            continue  # neither owner nor contact: the date first given stays
        else:
            base = today
        key = (vt, wl, vip, imp)
        step = steps.get(key)
        new_due = base + (step if step is not None else plan.step(key))
        new_reason = CYCLE
        if pending is not None and pending[0] <= new_due:
            new_due, new_reason = pending
        if new_due != due or new_reason != reason or was != version:
            append((cid, seen, new_due, new_reason, version))
    return out


_DERIVED = Table(
    "derived_due",
    MetaData(),
    Column("customer_id", String(36)),
    Column("seen", UtcDateTime),
    Column("next_due_on", Date),
    Column("due_reason", String(20)),
    Column("plan_version", String(20)),
)


def write_derived(session: Session, derived: list[Derived]) -> None:
    """Store derived due dates (``derived`` in id order), each only where the row is as it was
    read (``updated_at``): a row a consumer changed meanwhile was derived by it already.
    PostgreSQL: the rows are copied into a temporary table and applied by one ``UPDATE … FROM``;
    SQLite: one prepared update run for every row."""
    if not derived:
        return
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "CREATE TEMPORARY TABLE IF NOT EXISTS derived_due (customer_id varchar(36), "
                "seen timestamptz, next_due_on date, due_reason varchar(20), "
                "plan_version varchar(20)) ON COMMIT DELETE ROWS"
            )
        )
        names = ("customer_id", "seen", "next_due_on", "due_reason", "plan_version")
        insert_rows(session, _DERIVED, [dict(zip(names, row, strict=True)) for row in derived])
        # The chunk's id range lets the planner read only the chunk's rows by their key.
        session.execute(
            text(
                "UPDATE customer_care AS c SET next_due_on = d.next_due_on, "
                "due_reason = d.due_reason, plan_version = d.plan_version, updated_at = :now "
                "FROM derived_due AS d "
                "WHERE c.customer_id = d.customer_id AND c.updated_at = d.seen "
                "AND c.customer_id BETWEEN :first AND :last"
            ),
            {"now": now, "first": derived[0][0], "last": derived[-1][0]},
        )
        return
    statement = (
        update(CARE)
        .where(CARE.c.customer_id == bindparam("b_id"), CARE.c.updated_at == bindparam("b_seen"))
        .values(
            next_due_on=bindparam("b_due"),
            due_reason=bindparam("b_reason"),
            plan_version=bindparam("b_plan"),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.connection().execute(
        statement,
        [
            {"b_id": cid, "b_seen": seen, "b_due": due, "b_reason": reason, "b_plan": plan}
            for cid, seen, due, reason, plan in derived
        ],
    )


def derive_all(
    session_factory: sessionmaker[Session] | Callable[[], Session],
    chunk_size: int = DERIVE_CHUNK,
    today: date | None = None,
) -> Derivation:
    """Derive every customer's next contact due again by the plan in force, ``chunk_size``
    customers a transaction, in id order (after a policy change; idempotent: a second run
    changes nothing)."""
    today = today or business_today()
    plan = compiled_on(today)
    after = ""
    walked = changed = 0
    while True:
        with session_factory() as session:
            last = chunk_end(session, after, chunk_size)
            rows = session.execute(_book_query(after, last)).all()
            if not rows:
                break
            derived = derive_rows(plan, rows, today)
            write_derived(session, derived)
            session.commit()
        walked += len(rows)
        changed += len(derived)
        after = rows[-1][0]
    return Derivation(plan.version, walked, changed)


def derived_by_another_plan(session: Session, version: str) -> bool:
    """Whether a customer with a contact due was derived by a plan other than ``version``."""
    c = CARE.c
    stale = exists().where(
        c.next_due_on.is_not(None), or_(c.plan_version.is_(None), c.plan_version != version)
    )
    return bool(session.execute(select(stale)).scalar())


# -- reminders ----------------------------------------------------------------------------------
def remind(runtime: ServiceRuntime, today: date | None = None) -> tuple[int, int]:
    """Publish ``followup.due`` for contacts coming due, and holiday greetings ahead.

    First, when the plan in force changed since the due dates were derived, the book is derived
    again. Then each customer with a contact due within ``reminder_days_ahead`` (or overdue) gets
    one reminder per due date (``reminded_for``), and each customer of a plan with greetings one
    per holiday coming within the policy's ``days_ahead``. Chunked; a second run publishes
    nothing new. Returns (due reminders, greetings) published."""
    today = today or business_today()
    settings = runtime.settings
    if not isinstance(settings, VisitsSettings):
        raise TypeError("reminders run in the visits service's runtime")
    policy = policy_on(today)
    with runtime.session_factory() as session:
        stale = derived_by_another_plan(session, policy.version)
    if stale:
        derive_all(runtime.session_factory, DERIVE_CHUNK, today)
    due = remind_due(runtime.session_factory, today, settings.reminder_days_ahead)
    greeted = remind_greetings(runtime.session_factory, today)
    return due, greeted


def remind_due(
    session_factory: sessionmaker[Session], today: date, days_ahead: int, chunk: int = REMIND_CHUNK
) -> int:
    """One ``followup.due`` per customer and due date, for dates up to ``days_ahead`` ahead."""
    c = CARE.c
    plan = compiled_on(today)
    horizon = today + timedelta(days=days_ahead)
    published = 0
    while True:
        with session_factory() as session:
            query = (
                select(
                    c.customer_id,
                    c.owner_id,
                    c.org_unit,
                    c.next_due_on,
                    c.due_reason,
                    c.value_tier,
                    c.wealth_layer,
                    c.vip_level,
                )
                .join(customer_refs, customer_refs.c.customer_id == c.customer_id)
                .where(
                    c.next_due_on <= horizon,
                    or_(c.reminded_for.is_(None), c.reminded_for != c.next_due_on),
                    customer_refs.c.status.not_in(sorted(NO_PLAN_STATUSES)),
                )
                .order_by(c.next_due_on, c.customer_id)
                .limit(chunk)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(of=CARE, skip_locked=True)
            rows = session.execute(query).all()
            if not rows:
                return published
            recorder = recorder_of(session)
            for cid, owner, unit, due_on, reason, vt, wl, vip in rows:
                channel = contact_channel(plan, reason or CYCLE, vt, wl, vip)
                payload = {
                    "customer_id": cid,
                    "owner_id": owner,
                    "org_unit": unit,
                    "due_on": due_on.isoformat(),
                    "reason": reason or CYCLE,
                    "channel": channel.value,
                    "holiday": None,
                }
                recorder.record(session, events.FOLLOWUP_DUE, payload, key=cid, actor="system")
            session.connection().execute(
                update(CARE)
                .where(CARE.c.customer_id == bindparam("b_id"))
                .values(reminded_for=bindparam("b_due")),
                [{"b_id": row[0], "b_due": row[3]} for row in rows],
            )
            session.commit()
        published += len(rows)


def contact_channel(
    plan: CompiledPlan,
    reason: str,
    value_tier: str | None,
    wealth_layer: str | None,
    vip_level: str | None,
) -> Channel:
    """How the due contact is to be made: the extra reason's channel, else the plan's."""
    if reason in EXTRA_REASONS:
        return plan.policy.extra[reason].channel
    return plan.plan_for(value_tier, wealth_layer, vip_level)[1].channel


def upcoming_holidays(policy: FollowupPolicy, today: date) -> list[tuple[Holiday, date]]:
    """The holidays from ``today`` to the greeting horizon, soonest first."""
    last = today + timedelta(days=policy.greetings.days_ahead)
    found = [(h, on) for h in policy.greetings.holidays for on in h.between(today, last)]
    return sorted(found, key=lambda pair: (pair[1], pair[0].id))


def remind_greetings(
    session_factory: sessionmaker[Session], today: date, chunk: int = REMIND_CHUNK
) -> int:
    """One greeting reminder per customer and holiday, for the customers of the plans with
    greetings, ``days_ahead`` before the holiday (kept in ``greeting_reminders``)."""
    policy = policy_on(today)
    published = 0
    for holiday, on in upcoming_holidays(policy, today):
        while True:
            with session_factory() as session:
                rows = session.execute(_greeting_query(policy, holiday.id, on, chunk)).all()
                if not rows:
                    break
                recorder = recorder_of(session)
                for cid, owner, unit in rows:
                    payload = {
                        "customer_id": cid,
                        "owner_id": owner,
                        "org_unit": unit,
                        "due_on": on.isoformat(),
                        "reason": GREETING,
                        "channel": policy.greetings.channel.value,
                        "holiday": {"id": holiday.id, "name": holiday.name},
                    }
                    recorder.record(session, events.FOLLOWUP_DUE, payload, key=cid, actor="system")
                now = utcnow()
                insert_rows(
                    session,
                    GREETINGS,
                    [
                        {"customer_id": r[0], "holiday": holiday.id, "holiday_on": on, "at": now}
                        for r in rows
                    ],
                )
                session.commit()
            published += len(rows)
    return published


def _greeting_query(policy: FollowupPolicy, holiday: str, on: date, limit: int) -> Any:
    c = CARE.c
    tiers, layers, levels = policy.greeting_tiers()
    sent = GREETINGS.c
    already = (
        exists()
        .where(sent.customer_id == c.customer_id, sent.holiday == holiday, sent.holiday_on == on)
        .correlate(CARE)
    )
    return (
        select(c.customer_id, c.owner_id, c.org_unit)
        .select_from(CARE)
        .join(customer_refs, customer_refs.c.customer_id == c.customer_id)
        .where(
            or_(c.value_tier.in_(tiers), c.wealth_layer.in_(layers), c.vip_level.in_(levels)),
            customer_refs.c.status.not_in(sorted(NO_PLAN_STATUSES)),
            not_(already),
        )
        .order_by(c.customer_id)
        .limit(limit)
    )
