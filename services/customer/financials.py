"""Financial snapshots from core banking and the tiers they decide (客户细分).

A snapshot is what core banking reported for one customer on one business date; the history is
kept. The newest snapshot decides the customer's tiers under the tier policy in force on its
date, and every tier that changes is announced with ``customer.tier_changed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.db import count_rows, utcnow
from crmkit.errors import Forbidden, NotFound, PolicyViolation
from crmkit.identity import age_on
from services.customer import access, events
from services.customer.context import CustomerContext
from services.customer.models import Customer, FinancialSnapshot
from services.customer.repo import load_readable
from services.customer.schemas import SnapshotIn
from services.customer.service import log_change
from services.customer.tier_policy import NoPolicyInForce
from services.customer.tiers import TierAssessment, TierChange, TierInputs, assess_tiers

_FIGURES = (
    "deposits",
    "loans",
    "personal_loans",
    "aum",
    "card_annual_spend",
    "custody_margin",
    "overdue_amount",
    "net_interest_contribution",
    "fee_income",
)


@dataclass(frozen=True)
class SnapshotOutcome:
    customer: Customer
    snapshot: FinancialSnapshot
    changed: bool
    tier_changes: list[TierChange]


def record_snapshot(
    session: Session, ctx: CustomerContext, customer_id: str, snap: SnapshotIn, caller: Caller
) -> SnapshotOutcome:
    """Keep core banking's figures for a business date; re-tier on the newest. One transaction."""
    if not access.may_record_financials(caller):
        raise Forbidden("only core banking's feed or operations staff record financial figures")
    customer = session.get(Customer, customer_id)
    if customer is None or customer.merged_into is not None:
        raise NotFound(f"no customer {customer_id}")
    try:
        outcome = apply_snapshot(session, ctx, customer, snap, caller.subject)
    except NoPolicyInForce as exc:
        session.rollback()
        raise PolicyViolation(
            str(exc), errors=[{"field": "business_date", "reason": "no tier policy in force"}]
        ) from exc
    session.commit()
    return outcome


def apply_snapshot(
    session: Session, ctx: CustomerContext, customer: Customer, snap: SnapshotIn, actor: str
) -> SnapshotOutcome:
    """Upsert the snapshot and re-tier, inside the caller's transaction (API and import)."""
    values = _values(snap)
    snapshot = session.get(FinancialSnapshot, (customer.id, snap.business_date))
    if snapshot is not None and all(getattr(snapshot, k) == v for k, v in values.items()):
        return SnapshotOutcome(customer, snapshot, False, [])
    if snapshot is None:
        snapshot = FinancialSnapshot(customer_id=customer.id, business_date=snap.business_date)
        session.add(snapshot)
    for name, value in values.items():
        setattr(snapshot, name, value)
    snapshot.recorded_at = utcnow()
    session.flush()
    ctx.recorder.record(
        session,
        events.CUSTOMER_FINANCIALS_UPDATED,
        {
            "customer_id": customer.id,
            "business_date": snap.business_date.isoformat(),
            **{k: f"{values[k]:.2f}" for k in _FIGURES},
            "card_level": values["card_level"],
            "products": values["products"],
        },
        key=customer.id,
        actor=actor,
    )
    newest = session.execute(
        select(func.max(FinancialSnapshot.business_date)).where(
            FinancialSnapshot.customer_id == customer.id
        )
    ).scalar_one()
    changes: list[TierChange] = []
    if newest == snap.business_date:
        changes = retier(session, ctx, customer, snapshot, actor)
    return SnapshotOutcome(customer, snapshot, True, changes)


def _values(snap: SnapshotIn) -> dict[str, Any]:
    values: dict[str, Any] = {k: getattr(snap, k) for k in _FIGURES}
    values["card_level"] = snap.card_level.value if snap.card_level else None
    values["products"] = sorted({p.value for p in snap.products})
    values["source"] = snap.source
    return values


def tier_inputs(customer: Customer, snapshot: FinancialSnapshot) -> TierInputs:
    age = age_on(customer.birth_date, snapshot.business_date) if customer.birth_date else None
    return TierInputs(
        kind=customer.kind,
        age=age,
        deposits=snapshot.deposits,
        loans=snapshot.loans,
        personal_loans=snapshot.personal_loans,
        aum=snapshot.aum,
        card_annual_spend=snapshot.card_annual_spend,
        custody_margin=snapshot.custody_margin,
        card_level=snapshot.card_level,
        products=frozenset(snapshot.products or []),
    )


def stored_tiers(customer: Customer) -> dict[str, str | None]:
    """The customer's current tiers as ``TierAssessment.dimension_values`` spells them."""
    if customer.tier_policy_version is None:
        return {}
    return {
        "value_tier": customer.value_tier,
        "wealth_layer": customer.wealth_layer,
        "vip_level": customer.vip_level,
        "potential_vip": customer.potential_vip,
        "product_use_types": ",".join(sorted(customer.product_use_types or [])) or None,
        "invalid": "true" if customer.invalid else "false",
    }


def retier(
    session: Session,
    ctx: CustomerContext,
    customer: Customer,
    snapshot: FinancialSnapshot,
    actor: str,
) -> list[TierChange]:
    """Assess the customer's tiers on ``snapshot`` under the policy in force on its date."""
    policy = ctx.policies.effective_on(snapshot.business_date)
    assessment = assess_tiers(tier_inputs(customer, snapshot), policy)
    changes = assessment.changes_since(stored_tiers(customer))
    _store(customer, assessment, snapshot.business_date)
    if not changes:
        return []
    log_change(
        session,
        customer,
        "tiers",
        actor,
        {c.dimension: {"old": c.old, "new": c.new, "reason": c.reason} for c in changes},
    )
    ctx.recorder.record(
        session,
        events.CUSTOMER_TIER_CHANGED,
        {
            "customer_id": customer.id,
            "policy_version": assessment.policy_version,
            "as_of": snapshot.business_date.isoformat(),
            "changes": [
                {"dimension": c.dimension, "old": c.old, "new": c.new, "reason": c.reason}
                for c in changes
            ],
            "value_tier": customer.value_tier,
            "wealth_layer": customer.wealth_layer,
            "vip_level": customer.vip_level,
        },
        key=customer.id,
        actor=actor,
    )
    return changes


def _store(customer: Customer, assessment: TierAssessment, as_of: date) -> None:
    customer.value_tier = assessment.value_tier.value
    customer.wealth_layer = assessment.wealth_layer
    customer.vip_level = assessment.vip_level.value if assessment.vip_level else None
    customer.potential_vip = assessment.potential_vip.value if assessment.potential_vip else None
    customer.product_use_types = sorted(t.value for t in assessment.product_use_types)
    customer.invalid = assessment.invalid
    customer.tier_policy_version = assessment.policy_version
    customer.tiers_as_of = as_of


def list_snapshots(
    session: Session,
    caller: Caller,
    customer_id: str,
    since: date | None,
    until: date | None,
    limit: int,
    offset: int,
) -> tuple[list[FinancialSnapshot], int]:
    """A customer's snapshot history, newest first."""
    load_readable(session, caller, customer_id)
    query = select(FinancialSnapshot).where(FinancialSnapshot.customer_id == customer_id)
    if since is not None:
        query = query.where(FinancialSnapshot.business_date >= since)
    if until is not None:
        query = query.where(FinancialSnapshot.business_date <= until)
    total = count_rows(session, query)
    rows = session.scalars(
        query.order_by(FinancialSnapshot.business_date.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total
