"""Tier upgrades do not migrate customers by force 升级不强制迁移: a proposal, the customer's
choice, and the income attribution 业绩归属 kept with the employee who first developed the customer.

When ``customer.tier_changed`` reports a rise (value tier general < middle < high, wealth layer
layer_4 < layer_3 < layer_2 < layer_1, VIP level gold < platinum < diamond; from none counts) of
a customer that has an owner, a proposal is raised, naming the maintainer the assignment rules
suggest for the customer's new tiers. Nothing moves until an administrator or a head of the
customer's subtree records the customer's choice: ``stay`` keeps the owner, ``move`` transfers
the customer (reason ``customer_choice``). Either way the income stays attributed to the first
developer.

The attribution is derived lazily, since ownership is written in several places (assignments,
claims, rule runs, handovers): the earliest ownership span that began ``marketed`` or ``claimed``,
else the earliest at all. It is stored the first time it is needed (a proposal is raised, a choice
recorded, someone reads it) and never changed afterwards.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.db import count_rows, in_subtree, utcnow
from crmkit.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from crmkit.events import Envelope
from crmkit.outbox import EventRecorder
from services.assignment import access, rules, service
from services.assignment.models import Base, Ownership, Staff, customer_refs
from services.assignment.models_upgrades import Attribution, UpgradeProposal
from services.assignment.schemas import AssignmentIn, AssignmentMode, OwnershipReason
from services.assignment.schemas_upgrades import Choice, ChoiceIn, ProposalStatus

ATTRIBUTIONS = Base.metadata.tables[Attribution.__tablename__]
PROPOSALS_PATH = "/api/v1/upgrade-proposals"
OPEN = ProposalStatus.open.value

# Each tier dimension's values, lowest first.
ORDERS: dict[str, tuple[str, ...]] = {
    "value_tier": ("general", "middle", "high"),
    "wealth_layer": ("layer_4", "layer_3", "layer_2", "layer_1"),
    "vip_level": ("gold", "platinum", "diamond"),
}
# Ownership reasons by which a staff member develops a customer (谁营销谁维护).
DEVELOPED = frozenset({OwnershipReason.marketed.value, OwnershipReason.claimed.value})
# Who reads the attribution of a customer of their subtree.
_ATTRIBUTION_READERS = access.MANAGERS | {access.ROLE_AUDITOR}


# -- the consumer -------------------------------------------------------------------------------
def is_rise(dimension: str, old: str | None, new: str | None) -> bool:
    """A tier rose: ``new`` ranks above ``old`` in its dimension (any value above none)."""
    order = ORDERS.get(dimension)
    if order is None or new not in order:
        return False
    return old is None or (old in order and order.index(new) > order.index(old))


def on_tier_changed(session: Session, event: Envelope) -> None:
    """React to ``customer.tier_changed`` in the consumer's transaction: raise a proposal when a
    tier of an owned customer rose and none is open for it (rows are only added, not committed;
    a redelivered event is dropped by the inbox before it gets here)."""
    data = event.data
    customer_id: str = data["customer_id"]
    rises = [
        {
            "dimension": c["dimension"],
            "old": c.get("old"),
            "new": c.get("new"),
            "reason": c.get("reason"),
        }
        for c in data.get("changes") or []
        if is_rise(c["dimension"], c.get("old"), c.get("new"))
    ]
    if not rises:
        return
    owner = service.current_owner(session, customer_id)
    if owner is None:  # nobody to migrate from: the assignment rules place it
        return
    if open_proposal(session, customer_id) is not None:
        return
    attribution(session, customer_id)  # kept before anything can move
    unit = service.customer_unit(session, customer_id) or owner.org_unit
    tiers = {name: data.get(name) for name in ORDERS}
    policy, placement = suggest(session, customer_id, tiers, _day(data), owner.staff_id)
    rule = (
        next((r for r in policy.rules if r.id == placement.rule), None)
        if policy is not None and placement is not None
        else None
    )
    roles = list(rule.roles) if rule is not None else []
    if rule is not None and policy is not None and tiers.get("vip_level"):
        roles = [r for r in roles if r not in policy.constraints.never_for_vip]
    session.add(
        UpgradeProposal(
            id=str(uuid.uuid4()),
            customer_id=customer_id,
            org_unit=unit,
            from_staff_id=owner.staff_id,
            changes=rises,
            tier_policy_version=str(data.get("policy_version") or ""),
            event_id=str(event.id),
            rule_policy_version=policy.version if policy is not None else None,
            suggested_rule=rule.id if rule is not None else None,
            suggested_roles=roles,
            suggested_staff_id=placement.staff_id if placement is not None else None,
            status=OPEN,
            created_at=utcnow(),
        )
    )
    session.flush()


def _day(data: dict[str, Any]) -> date:
    try:
        return date.fromisoformat(str(data.get("as_of")))
    except ValueError:
        return utcnow().date()


def open_proposal(session: Session, customer_id: str) -> UpgradeProposal | None:
    return session.scalars(
        select(UpgradeProposal).where(
            UpgradeProposal.customer_id == customer_id, UpgradeProposal.status == OPEN
        )
    ).first()


# -- the suggestion -----------------------------------------------------------------------------
def suggest(
    session: Session, customer_id: str, tiers: dict[str, Any], day: date, owner_id: str
) -> tuple[rules.RulePolicy | None, rules.Placement | None]:
    """The rule that decides the customer by its new tiers, and the staff member (other than the
    owner) it would go to now, by the assignment rules in force on ``day`` (else today)."""
    policy: rules.RulePolicy | None = None
    for when in (day, utcnow().date()):
        try:
            policy = rules.policy_on(when)
            break
        except rules.RulePolicyError:
            continue
    facts = _facts(session, customer_id)
    if policy is None or facts is None:
        return policy, None
    facts = dataclasses.replace(facts, **tiers)
    units = rules.ancestors(facts.org_unit)
    members = [
        s
        for s in session.scalars(
            select(Staff).where(
                Staff.status == "active", Staff.org_unit.in_(units), Staff.id != owner_id
            )
        )
        if access.BOOK_ROLES.intersection(s.roles)
    ]
    held = service.book_sizes(session, [s.id for s in members])
    planner = rules.Planner(policy, [(s, held.get(s.id, 0)) for s in members])
    return policy, planner.place(facts)


def _facts(session: Session, customer_id: str) -> rules.Facts | None:
    row = session.execute(
        rules.facts_query().where(customer_refs.c.customer_id == customer_id)
    ).first()
    return None if row is None else rules.facts_of(row)


# -- income attribution -------------------------------------------------------------------------
def attribution(session: Session, customer_id: str) -> Attribution | None:
    """The customer's attribution: stored, or derived from its ownership history and stored in
    the session's transaction (the caller commits); ``None`` when it never had an owner."""
    found = session.get(Attribution, customer_id)
    if found is not None:
        return found
    derived = _derive(session, customer_id)
    return None if derived is None else _store(session, derived)


def _store(session: Session, record: Attribution) -> Attribution:
    """Insert unless stored meanwhile (a concurrent reader or the consumer): never an integrity
    error, which the consumer would take for a redelivered event."""
    dialect = session.get_bind().dialect.name
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    values = {c.name: getattr(record, c.key) for c in ATTRIBUTIONS.columns}
    session.execute(insert_(ATTRIBUTIONS).values(values).on_conflict_do_nothing())
    stored = session.get(Attribution, record.customer_id)
    assert stored is not None
    return stored


def _derive(session: Session, customer_id: str) -> Attribution | None:
    """The earliest span that began ``marketed`` or ``claimed``, else the earliest at all."""
    spans = service.owner_history(session, customer_id)
    if not spans:
        return None
    first = next((s for s in spans if s.reason in DEVELOPED), spans[0])
    return Attribution(
        customer_id=customer_id,
        staff_id=first.staff_id,
        org_unit=first.org_unit,
        reason=first.reason,
        developed_at=first.started_at,
        recorded_at=utcnow(),
    )


def read_attribution(session: Session, customer_id: str, caller: Caller) -> Attribution:
    """The attribution of a customer, for administrators, the heads and auditors of its subtree,
    its owner and the staff member it names. One derived from a span that began ``marketed`` or
    ``claimed`` is stored; one from another span is shown but not stored yet (a later marketer or
    claimant may still be its developer) until a proposal needs it."""
    unit = service.customer_unit(session, customer_id)
    if unit is None:
        raise NotFound(f"no customer {customer_id} in your scope")
    owner = service.current_owner(session, customer_id)
    record = session.get(Attribution, customer_id) or _derive(session, customer_id)
    allowed = (
        caller.has_role(ROLE_ADMIN)
        or (caller.has_role(*_ATTRIBUTION_READERS) and caller.within(unit))
        or (owner is not None and owner.staff_id == caller.subject)
        or (record is not None and record.staff_id == caller.subject)
    )
    if not allowed:
        raise NotFound(f"no customer {customer_id} in your scope")
    if record is None:
        raise NotFound(f"customer {customer_id} has never had an owner: nobody developed it yet")
    if record in session or record.reason not in DEVELOPED:
        return record
    stored = _store(session, record)
    session.commit()
    return stored


# -- proposals ----------------------------------------------------------------------------------
def _owned_by(staff_id: str) -> Any:
    return exists().where(
        and_(
            Ownership.customer_id == UpgradeProposal.customer_id,
            Ownership.ended_at.is_(None),
            Ownership.staff_id == staff_id,
        )
    )


def _visible(session: Session, proposal: UpgradeProposal, caller: Caller) -> bool:
    if caller.has_role(ROLE_ADMIN) or proposal.from_staff_id == caller.subject:
        return True
    unit = service.customer_unit(session, proposal.customer_id) or proposal.org_unit
    if access.may_manage(caller, unit) or access.may_manage(caller, proposal.org_unit):
        return True
    owner = service.current_owner(session, proposal.customer_id)
    return owner is not None and owner.staff_id == caller.subject


def load_proposal(session: Session, proposal_id: str, caller: Caller) -> UpgradeProposal:
    """A proposal the caller may read: on a customer of a subtree they head, or one they own or
    owned when it was raised (all for administrators)."""
    proposal = session.get(UpgradeProposal, proposal_id)
    if proposal is None or not _visible(session, proposal, caller):
        raise NotFound(f"no upgrade proposal {proposal_id}")
    return proposal


def list_proposals(
    session: Session,
    caller: Caller,
    status: str | None,
    customer_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[UpgradeProposal], int]:
    """The proposals the caller may read, oldest first."""
    query = select(UpgradeProposal)
    if not caller.has_role(ROLE_ADMIN):
        scope = (UpgradeProposal.from_staff_id == caller.subject) | _owned_by(caller.subject)
        if caller.has_role(*access.MANAGERS):
            scope = scope | in_subtree(UpgradeProposal.org_unit, caller.org_unit)
        query = query.where(scope)
    if status:
        query = query.where(UpgradeProposal.status == status)
    if customer_id:
        query = query.where(UpgradeProposal.customer_id == customer_id)
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(UpgradeProposal.created_at, UpgradeProposal.id).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


def record_choice(
    session: Session, recorder: EventRecorder, proposal_id: str, body: ChoiceIn, caller: Caller
) -> UpgradeProposal:
    """Record the customer's choice (administrators, heads of the customer's subtree): ``stay``
    closes the proposal, ``move`` transfers the customer to ``to_staff_id`` (else the suggested
    maintainer). The income attribution stays with the first developer either way."""
    proposal = load_proposal(session, proposal_id, caller)
    unit = service.customer_unit(session, proposal.customer_id) or proposal.org_unit
    if not access.may_manage(caller, unit):
        raise Forbidden(f"you may not record choices for customers of {unit}")
    _check_open(proposal)
    # Locked, read again: of two choices at once the second waits, then finds it closed.
    proposal = session.scalars(
        select(UpgradeProposal)
        .where(UpgradeProposal.id == proposal_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    _check_open(proposal)
    attribution(session, proposal.customer_id)  # stored before the owner changes
    proposal.choice, proposal.note = body.choice.value, body.note
    proposal.decided_at, proposal.decided_by = utcnow(), caller.subject
    if body.choice is Choice.stay:
        proposal.status = ProposalStatus.stayed.value
        session.commit()
        return proposal
    target = body.to_staff_id or proposal.suggested_staff_id
    if target is None:
        session.rollback()
        raise ValidationFailed(
            "name the new maintainer: the rules suggested nobody",
            errors=[{"field": "to_staff_id", "reason": "required to move"}],
        )
    owner = service.current_owner(session, proposal.customer_id)
    if owner is None:
        session.rollback()
        raise Conflict(
            f"customer {proposal.customer_id} has no owner now; assign it instead",
            current_owner=None,
        )
    proposal.status = ProposalStatus.moved.value
    proposal.to_staff_id = target
    assignment = AssignmentIn(
        customer_id=proposal.customer_id,
        mode=AssignmentMode.transfer,
        staff_id=target,
        from_staff_id=owner.staff_id,
        reason=OwnershipReason.customer_choice,
        note=body.note,
    )
    try:  # commits the choice with the transfer and its event
        service.change_owner(
            session,
            recorder,
            assignment,
            caller.subject,
            may_take=lambda s: access.may_manage(caller, s.org_unit),
        )
    except DomainError:
        session.rollback()
        raise
    return proposal


def _check_open(proposal: UpgradeProposal) -> None:
    if proposal.status != OPEN:
        raise Conflict(
            f"upgrade proposal {proposal.id} is {proposal.status}; the choice is recorded",
            proposal_status=proposal.status,
        )
