"""Assignment rules as data, and runs that give unowned customers an owner by them.

The policy (``policy/rules/<effective date>.json``) is an ordered list of rules: the first rule
whose conditions a customer meets decides which roles may hold it. The holder is looked for in
the customer's own unit first, then up the org tree (proximity), among active staff of those
roles (of the customer's business line where the rule says so) with room under their capacity,
the least loaded first. VIP members never go to the roles the policy's constraints exclude. A
customer whose deciding rule finds nobody is left unplaced and reported, not given to a role the
rule did not name.

A run is planned in memory (one query for the customers, one for the staff) and applied in chunks:
each chunk's ownerships and ``ownership.assigned`` events in one transaction, inserted in bulk.
The one-owner index still guards each customer: a chunk that meets an owner set meanwhile is
done again without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmkit.db import in_subtree, utcnow
from crmkit.heap import gc_paused
from crmkit.outbox import EventRecorder, insert_rows
from crmkit.policy import load_policy_file
from services.assignment import access, events
from services.assignment.models import Base, CustomerProfile, Ownership, Staff, customer_refs
from services.assignment.service import book_sizes

POLICY_DIR = Path(__file__).with_name("policy") / "rules"
OWNERSHIPS = Base.metadata.tables[Ownership.__tablename__]
PROFILES = Base.metadata.tables[CustomerProfile.__tablename__]
CHUNK = 2000
_ATTEMPTS = 3


class RulePolicyError(ValueError):
    """A rule policy file that cannot be used."""


# -- the policy ---------------------------------------------------------------------------------
class Condition(BaseModel):
    """What a customer must meet: every condition given (an empty one always holds)."""

    model_config = ConfigDict(extra="forbid")

    any_of: list[Condition] | None = None
    kind_in: list[str] | None = None
    value_tier_in: list[str] | None = None
    wealth_layer_in: list[str] | None = None
    vip_level_in: list[str] | None = None
    products_any: list[str] | None = None
    loans_at_least: Decimal | None = None
    deposits_at_least: Decimal | None = None
    # In a group 集团客户 (a member or the group's parent) when true, in none when false.
    group: bool | None = None

    def compiled(self) -> Callable[[Facts], bool]:
        """The condition as one function of the facts (a run tests every customer)."""
        tests: list[Callable[[Facts], bool]] = []
        if self.any_of is not None:
            alternatives = [x.compiled() for x in self.any_of]
            tests.append(lambda c: any(t(c) for t in alternatives))
        for name in ("kind", "value_tier", "wealth_layer", "vip_level"):
            allowed = getattr(self, f"{name}_in")
            if allowed is not None:
                tests.append(_member(name, frozenset(allowed)))
        if self.products_any is not None:
            wanted = frozenset(self.products_any)
            tests.append(lambda c: bool(wanted & c.products))
        for name in ("loans", "deposits"):
            floor = getattr(self, f"{name}_at_least")
            if floor is not None:
                tests.append(_at_least(name, floor))
        if self.group is not None:
            grouped = self.group
            tests.append(lambda c: c.group is grouped)
        if not tests:
            return lambda c: True
        if len(tests) == 1:
            return tests[0]
        return lambda c: all(t(c) for t in tests)

    def holds(self, c: Facts) -> bool:
        if self.any_of is not None and not any(x.holds(c) for x in self.any_of):
            return False
        if self.kind_in is not None and c.kind not in self.kind_in:
            return False
        if self.value_tier_in is not None and c.value_tier not in self.value_tier_in:
            return False
        if self.wealth_layer_in is not None and c.wealth_layer not in self.wealth_layer_in:
            return False
        if self.vip_level_in is not None and c.vip_level not in self.vip_level_in:
            return False
        if self.products_any is not None and not set(self.products_any) & c.products:
            return False
        if self.loans_at_least is not None and (c.loans or 0) < self.loans_at_least:
            return False
        if self.group is not None and c.group is not self.group:
            return False
        return not (
            self.deposits_at_least is not None and (c.deposits or 0) < self.deposits_at_least
        )


def _member(name: str, allowed: frozenset[str]) -> Callable[[Facts], bool]:
    return lambda c: getattr(c, name) in allowed


def _at_least(name: str, floor: Decimal) -> Callable[[Facts], bool]:
    return lambda c: (getattr(c, name) or 0) >= floor


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    when: Condition
    roles: list[str] = Field(min_length=1)
    same_line: bool = False
    source: str


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid")

    never_for_vip: list[str] = Field(default_factory=list)
    vip_note: str | None = None


class RulePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    effective_from: date
    description: str
    constraints: Constraints
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _sound(self) -> RulePolicy:
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        unknown = {role for r in self.rules for role in r.roles} - access.BOOK_ROLES
        if unknown:
            raise ValueError(f"roles that hold no book: {', '.join(sorted(unknown))}")
        return self


@cache
def policies(directory: Path = POLICY_DIR) -> tuple[RulePolicy, ...]:
    found = [
        load_policy_file(path, RulePolicy, "rule policy", RulePolicyError)
        for path in sorted(directory.glob("*.json"))
    ]
    if not found:
        raise RulePolicyError(f"no rule policy in {directory}")
    return tuple(sorted(found, key=lambda p: p.effective_from))


def policy_on(day: date, directory: Path = POLICY_DIR) -> RulePolicy:
    """The policy in force on ``day`` (the latest effective on or before it)."""
    in_force = [p for p in policies(directory) if p.effective_from <= day]
    if not in_force:
        raise RulePolicyError(f"no rule policy in force on {day}")
    return in_force[-1]


# -- planning -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules read of a customer."""

    customer_id: str
    org_unit: str
    business_line: str
    kind: str
    value_tier: str | None = None
    wealth_layer: str | None = None
    vip_level: str | None = None
    loans: Decimal | None = None
    deposits: Decimal | None = None
    products: frozenset[str] = frozenset()
    group: bool = False  # a member of a group 集团客户 or a group's parent


@dataclass(slots=True)
class _Slot:
    staff_id: str
    org_unit: str
    line: str | None
    room: int  # places left under the capacity (a large number when there is none)
    load: int  # customers held and planned


@dataclass(frozen=True, slots=True)
class Placement:
    customer_id: str
    rule: str | None
    staff_id: str | None
    org_unit: str | None
    reason: str


@dataclass
class Plan:
    policy: RulePolicy
    placements: list[Placement] = field(default_factory=list)

    @property
    def placed(self) -> list[Placement]:
        return [p for p in self.placements if p.staff_id is not None]

    def by_rule(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.placed:
            key = p.rule or "none"
            out[key] = out.get(key, 0) + 1
        return out


_UNLIMITED = 10**9


@cache
def ancestors(org_unit: str) -> tuple[str, ...]:
    """The unit and the units above it, nearest first."""
    parts = org_unit.rstrip("/").split("/")
    return tuple("/".join(parts[:n]) for n in range(len(parts), 1, -1))


class Planner:
    """Places customers with staff by a policy, keeping each staff member's load as it goes."""

    def __init__(self, policy: RulePolicy, staff: Iterable[tuple[Staff, int]]) -> None:
        self.policy = policy
        self._rules = [(rule, rule.when.compiled()) for rule in policy.rules]
        self._never_for_vip = frozenset(policy.constraints.never_for_vip)
        self._slots: dict[tuple[str, str], list[_Slot]] = {}
        for member, held in staff:
            room = _UNLIMITED if member.capacity is None else member.capacity - held
            slot = _Slot(member.id, member.org_unit, member.business_line, room, held)
            for role in member.roles:
                self._slots.setdefault((member.org_unit, role), []).append(slot)

    def place(self, c: Facts) -> Placement:
        rule = next((r for r, applies in self._rules if applies(c)), None)
        if rule is None:
            return Placement(c.customer_id, None, None, None, "no rule applies")
        roles = [r for r in rule.roles if not (c.vip_level and r in self._never_for_vip)]
        for unit in ancestors(c.org_unit):
            for role in roles:
                best: _Slot | None = None
                for slot in self._slots.get((unit, role), ()):
                    if slot.room <= 0 or (rule.same_line and slot.line != c.business_line):
                        continue
                    if best is None or (slot.load, slot.staff_id) < (best.load, best.staff_id):
                        best = slot
                if best is not None:
                    best.room -= 1
                    best.load += 1
                    return Placement(
                        c.customer_id, rule.id, best.staff_id, best.org_unit, f"rule {rule.id}"
                    )
        wanted = ", ".join(roles) or "none allowed"
        return Placement(
            c.customer_id,
            rule.id,
            None,
            None,
            f"rule {rule.id}: no active {wanted} with room in {c.org_unit} or above",
        )


def facts_query() -> Select[Any]:
    """What the rules read of customers: their copy joined with their profile (if any), and
    whether they are in a group: a member (``group_id`` set) or a parent (some profile names it
    as its group; ``group_id`` is indexed)."""
    refs, profiles = customer_refs.c, PROFILES.c
    members = PROFILES.alias("group_members")
    parent = exists().where(members.c.group_id == refs.customer_id).correlate(customer_refs)
    grouped = or_(profiles.group_id.is_not(None), parent)
    return select(
        refs.customer_id,
        refs.org_unit,
        refs.business_line,
        refs.kind,
        profiles.value_tier,
        profiles.wealth_layer,
        profiles.vip_level,
        profiles.loans,
        profiles.deposits,
        profiles.products,
        grouped,
    ).outerjoin(PROFILES, profiles.customer_id == refs.customer_id)


def facts_of(row: Sequence[Any]) -> Facts:
    """A row of :func:`facts_query` as facts."""
    return Facts(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        frozenset(row[9]) if row[9] else frozenset(),
        bool(row[10]),
    )


def unowned_customers(session: Session, scope: str, limit: int | None) -> list[Facts]:
    """Customers of ``scope`` (not closed) without an owner, with their profiles, by id."""
    refs = customer_refs.c
    open_span = exists().where(
        and_(Ownership.customer_id == refs.customer_id, Ownership.ended_at.is_(None))
    )
    query = (
        facts_query()
        .where(~open_span, refs.status != "closed", in_subtree(refs.org_unit, scope))
        .order_by(refs.customer_id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [facts_of(row) for row in session.execute(query).all()]


def staff_in(session: Session, scope: str) -> list[tuple[Staff, int]]:
    """Active staff of ``scope`` who may hold a book, with the number of customers they hold."""
    query = select(Staff).where(Staff.status == "active")
    query = query.where(in_subtree(Staff.org_unit, scope))
    members = [s for s in session.scalars(query) if access.BOOK_ROLES.intersection(s.roles)]
    held = book_sizes(session, [s.id for s in members])
    return [(s, held.get(s.id, 0)) for s in members]


def plan(session: Session, scope: str, day: date, limit: int | None = None) -> Plan:
    policy = policy_on(day)
    planner = Planner(policy, staff_in(session, scope))
    with gc_paused():  # every customer's facts and placement live until the plan is done
        customers = unowned_customers(session, scope, limit)
        return Plan(policy, [planner.place(c) for c in customers])


# -- applying -----------------------------------------------------------------------------------
def apply(
    sessions: Any,
    recorder: EventRecorder,
    placements: Sequence[Placement],
    actor: str,
    version: str,
) -> int:
    """Give each placed customer its owner, a chunk per transaction; returns how many took.

    A customer that got an owner meanwhile is left as it is (the run only fills gaps).
    """
    todo = [p for p in placements if p.staff_id is not None]
    done = 0
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        for attempt in range(1, _ATTEMPTS + 1):
            with gc_paused(), sessions() as session:
                try:
                    _write(session, recorder, chunk, actor, version)
                    session.commit()
                    done += len(chunk)
                    break
                except IntegrityError:
                    session.rollback()
                    if attempt == _ATTEMPTS:
                        raise
                    owned = _owned(session, [p.customer_id for p in chunk])
                    chunk = [p for p in chunk if p.customer_id not in owned]
    return done


def _owned(session: Session, customer_ids: list[str]) -> set[str]:
    return set(
        session.scalars(
            select(Ownership.customer_id).where(
                Ownership.customer_id.in_(customer_ids), Ownership.ended_at.is_(None)
            )
        )
    )


def _write(
    session: Session,
    recorder: EventRecorder,
    chunk: Sequence[Placement],
    actor: str,
    version: str,
) -> None:
    now = utcnow()
    effective = now.isoformat()
    rows: list[dict[str, Any]] = []
    for p in chunk:
        assert p.staff_id is not None and p.org_unit is not None
        rows.append(
            {
                "customer_id": p.customer_id,
                "staff_id": p.staff_id,
                "org_unit": p.org_unit,
                "reason": "rule",
                "note": f"rule {p.rule} of policy {version}",
                "started_at": now,
                "started_by": actor,
            }
        )
        recorder.write(
            session,
            recorder.prepare(
                events.OWNERSHIP_ASSIGNED,
                {
                    "customer_id": p.customer_id,
                    "staff_id": p.staff_id,
                    "role": "owner",
                    "org_unit": p.org_unit,
                    "effective_at": effective,
                    "reason": "rule",
                },
                key=p.customer_id,
                actor=actor,
            ),
        )
    insert_rows(session, OWNERSHIPS, rows)
