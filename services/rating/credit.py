"""Credit-limit proposals 授信额度测算与申报: the calculation of a customer's comprehensive limit
综合授信 from its confirmed grade, its figures, collaterals and guarantors, with the staff's
adjustment for the guarantees beside the computed figure, sub-limits per product, and the VIP
pricing hint; then the proposal waits for review (its deadline set by the approval rules).

A proposal whose guarantors or collaterals differ from those of the customer's previous limit
is a change of guarantees: a re-rating is proposed.

:func:`propose` flushes but does not commit: a rating campaign calls it in its own transaction;
the route commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crmkit.auth import Caller
from crmkit.clock import business_today
from crmkit.db import utcnow
from crmkit.errors import Conflict, NotFound, ValidationFailed
from crmkit.outbox import EventRecorder
from services.rating import approvals, rerating
from services.rating.events import CREDIT_LIMIT_PROPOSED
from services.rating.limits import (
    Collateral,
    Guarantor,
    LimitFormula,
    LimitInputError,
    LimitResult,
    formula_for,
    pricing_hint,
)
from services.rating.models import Assessment, CreditLimit, CreditLimitStep, CustomerFigures
from services.rating.ratings import (
    CONFIRMED,
    current_grade,
    customer_ref,
    customer_unit,
    require_reader,
)

PROPOSED = "proposed"
_ZERO = Decimal("0.00")
_CENT = Decimal("0.01")


# -- checks ------------------------------------------------------------------------------------
def _confirmed_assessment(
    session: Session, customer_id: str, assessment_id: str
) -> tuple[Assessment, str]:
    """The customer's confirmed assessment in force and its grade, which the proposal must name
    (409 otherwise)."""
    assessment = session.get(Assessment, assessment_id)
    if assessment is None or assessment.customer_id != customer_id:
        raise Conflict(f"assessment {assessment_id} is not an assessment of customer {customer_id}")
    grade = assessment.final_grade
    if assessment.status != CONFIRMED or grade is None:
        raise Conflict(
            f"assessment {assessment_id} is {assessment.status}; a limit rests on a confirmed"
            " grade",
            status_now=assessment.status,
        )
    in_force = current_grade(session, customer_id)
    if in_force is not None and in_force.id != assessment.id:
        raise Conflict(
            f"a newer grade is in force for customer {customer_id}: assessment {in_force.id}",
            grade_in_force=in_force.id,
        )
    if assessment.valid_until is not None and assessment.valid_until < business_today():
        raise Conflict(
            f"the grade of assessment {assessment_id} expired on {assessment.valid_until};"
            " re-rate the customer first"
        )
    return assessment, grade


def _adjusted_total(
    result: LimitResult, adjustment: Decimal, reason: str | None
) -> tuple[Decimal, str | None]:
    """The total after the staff's adjustment for the guarantees: a non-zero adjustment needs
    its reason, and the total may not fall below zero."""
    adjustment = adjustment.quantize(_CENT)
    if adjustment != 0 and not (reason and reason.strip()):
        raise ValidationFailed(
            "an adjustment of the computed limit needs its reason",
            errors=[{"field": "adjustment_reason", "reason": "required with an adjustment"}],
        )
    total = result.total_amount + adjustment
    if total < 0:
        raise ValidationFailed(
            f"the adjustment {adjustment} takes the limit {result.total_amount} below zero",
            errors=[{"field": "adjustment_amount", "reason": "total may not be negative"}],
        )
    return total, (reason.strip() if adjustment != 0 and reason else None)


def _checked_sub_limits(
    sub_limits: Sequence[Mapping[str, Any]], total: Decimal
) -> list[dict[str, Any]]:
    """Sub-limits per product, each positive, adding up to no more than the total."""
    stored: list[dict[str, Any]] = []
    for entry in sub_limits:
        amount = Decimal(str(entry["amount"])).quantize(_CENT)
        if amount <= 0:
            raise ValidationFailed(
                "a sub-limit is a positive amount",
                errors=[{"field": "sub_limits", "reason": f"{entry['product']}: not positive"}],
            )
        stored.append({**entry, "amount": f"{amount:.2f}"})
    products = [entry["product"] for entry in stored]
    if len(set(products)) != len(products):
        raise ValidationFailed(
            "a product has one sub-limit",
            errors=[{"field": "sub_limits", "reason": "products repeat"}],
        )
    allotted = sum((Decimal(entry["amount"]) for entry in stored), _ZERO)
    if allotted > total:
        raise ValidationFailed(
            f"the sub-limits add up to {allotted:.2f}, more than the total limit {total:.2f}",
            errors=[{"field": "sub_limits", "reason": "sum exceeds the total limit"}],
        )
    return stored


# -- inputs ------------------------------------------------------------------------------------
def limit_inputs(
    formula: LimitFormula,
    assessment: Assessment,
    figures: CustomerFigures | None,
    entered: Mapping[str, object],
) -> dict[str, object]:
    """The formula's inputs: what the manager entered, else the assessment's inputs of the same
    name (income, net assets), else for existing debt this bank's loan balance."""
    used: dict[str, object] = {}
    for code in formula.input_codes:
        value = entered.get(code)
        if value is None or value == "":
            value = assessment.inputs.get(code)
        if value is None and code == formula.policy.existing_debt.input and figures is not None:
            value = figures.loans
        if value is not None:
            used[code] = value
    return used


def _guarantors_with_grades(session: Session, guarantors: Sequence[Guarantor]) -> list[Guarantor]:
    """A guarantor who is a rated customer of the bank bears by its confirmed grade here."""
    out: list[Guarantor] = []
    for guarantor in guarantors:
        if guarantor.customer_id:
            in_force = current_grade(session, guarantor.customer_id)
            if in_force is not None and in_force.final_grade is not None:
                guarantor = Guarantor(
                    guarantor.name,
                    guarantor.amount,
                    guarantor.net_assets,
                    in_force.final_grade,
                    guarantor.customer_id,
                )
        out.append(guarantor)
    return out


def _collateral_dict(collateral: Collateral, formula: LimitFormula) -> dict[str, str]:
    return {
        "type": collateral.type,
        "appraised_value": f"{collateral.appraised_value:.2f}",
        "pledge_rate": str(formula.pledge_rate(collateral.type)),
        "description": collateral.description,
    }


def _guarantor_dict(guarantor: Guarantor) -> dict[str, str | None]:
    return {
        "name": guarantor.name,
        "customer_id": guarantor.customer_id,
        "amount": f"{guarantor.amount:.2f}",
        "net_assets": f"{guarantor.net_assets:.2f}",
        "grade": guarantor.grade,
    }


def _guarantee_set(collaterals: list[dict[str, Any]], guarantors: list[dict[str, Any]]) -> Any:
    """What makes the guarantees: the collaterals' types and values, the guarantors and their
    amounts (descriptions and standing aside)."""
    return (
        sorted((c["type"], c["appraised_value"]) for c in collaterals),
        sorted((g.get("customer_id") or "", g["name"], g["amount"]) for g in guarantors),
    )


def _previous_limit(session: Session, customer_id: str) -> CreditLimit | None:
    return session.scalars(
        select(CreditLimit)
        .where(CreditLimit.customer_id == customer_id)
        .order_by(CreditLimit.proposed_at.desc(), CreditLimit.id.desc())
        .limit(1)
    ).first()


# -- the proposal ------------------------------------------------------------------------------
def propose(
    session: Session,
    recorder: EventRecorder,
    *,
    customer_id: str,
    assessment_id: str,
    inputs: Mapping[str, object],
    collaterals: Sequence[Collateral],
    guarantors: Sequence[Guarantor],
    sub_limits: Sequence[Mapping[str, Any]],
    revolving: bool,
    term_months: int,
    adjustment_amount: Decimal,
    adjustment_reason: str | None,
    investigation_report: str,
    risk_analysis: str,
    actor: str,
    campaign_id: str | None = None,
) -> CreditLimit:
    """Calculate the customer's limit with the formula in force for its kind and its confirmed
    grade, store it ``proposed`` with its first step and the review deadline, record
    ``credit_limit.proposed``, and propose a re-rating when the guarantees changed. Flushes;
    the caller commits."""
    ref = customer_ref(session, customer_id)
    assessment, grade = _confirmed_assessment(session, customer_id, assessment_id)
    if term_months < 1:
        raise ValidationFailed(
            "the term is at least one month",
            errors=[{"field": "term_months", "reason": "at least 1"}],
        )
    formula = formula_for(ref.kind, business_today())
    figures = session.get(CustomerFigures, customer_id)
    used = limit_inputs(formula, assessment, figures, inputs)
    backers = _guarantors_with_grades(session, guarantors)
    try:
        result = formula.calculate(grade, used, collaterals, backers)
        collateral_rows = [_collateral_dict(c, formula) for c in collaterals]
    except LimitInputError as exc:
        raise ValidationFailed(
            f"{exc.field}: {exc.reason}", errors=[{"field": exc.field, "reason": exc.reason}]
        ) from None
    if result.missing:
        raise ValidationFailed(
            f"inputs missing for the limit: {', '.join(result.missing)}",
            errors=[{"field": f"inputs.{code}", "reason": "missing"} for code in result.missing],
            missing=list(result.missing),
        )
    total, reason = _adjusted_total(result, adjustment_amount, adjustment_reason)
    stored_sub_limits = _checked_sub_limits(sub_limits, total)
    guarantor_rows = [_guarantor_dict(g) for g in backers]
    previous = _previous_limit(session, customer_id)
    now = utcnow()
    limit = CreditLimit(
        id=str(uuid.uuid4()),
        customer_id=customer_id,
        kind=ref.kind,
        org_unit=ref.org_unit,
        business_line=ref.business_line,
        assessment_id=assessment.id,
        grade=grade,
        formula_id=result.formula_id,
        formula_version=result.version,
        status=PROPOSED,
        inputs={code: str(value) for code, value in used.items()},
        calculation=list(result.lines),
        collaterals=collateral_rows,
        guarantors=guarantor_rows,
        sub_limits=stored_sub_limits,
        credit_amount=result.credit_amount,
        guaranteed_amount=result.guaranteed_amount,
        secured_amount=result.secured_amount,
        adjustment_amount=adjustment_amount.quantize(_CENT),
        adjustment_reason=reason,
        total_amount=total,
        revolving=revolving,
        term_months=term_months,
        pricing=pricing_hint(figures.vip_level if figures is not None else None),
        investigation_report=investigation_report,
        risk_analysis=risk_analysis,
        campaign_id=campaign_id,
        proposed_by=actor,
        proposed_at=now,
        step_due_at=approvals.step_due("review", now),
    )
    session.add(limit)
    session.flush()
    session.add(CreditLimitStep(credit_limit_id=limit.id, step="propose", actor=actor, at=now))
    _record_proposed(session, recorder, limit)
    if previous is not None and _guarantee_set(
        previous.collaterals, previous.guarantors
    ) != _guarantee_set(collateral_rows, guarantor_rows):
        rerating.on_inputs_changed(session, customer_id, "guarantees")
    session.flush()
    return limit


def _record_proposed(session: Session, recorder: EventRecorder, limit: CreditLimit) -> None:
    recorder.record(
        session,
        CREDIT_LIMIT_PROPOSED,
        {
            "customer_id": limit.customer_id,
            "credit_limit_id": limit.id,
            "assessment_id": limit.assessment_id,
            "grade": limit.grade,
            "org_unit": limit.org_unit,
            "credit_amount": f"{limit.credit_amount:.2f}",
            "guaranteed_amount": f"{limit.guaranteed_amount:.2f}",
            "secured_amount": f"{limit.secured_amount:.2f}",
            "adjustment_amount": f"{limit.adjustment_amount:.2f}",
            "total_amount": f"{limit.total_amount:.2f}",
            "revolving": limit.revolving,
            "term_months": limit.term_months,
            "step_due_at": limit.step_due_at.isoformat().replace("+00:00", "Z")
            if limit.step_due_at is not None
            else None,
            "proposed_by": limit.proposed_by,
        },
        key=limit.customer_id,
        actor=limit.proposed_by,
    )


# -- reading -----------------------------------------------------------------------------------
def load_limit(session: Session, credit_limit_id: str, caller: Caller) -> CreditLimit:
    """A credit limit the caller may read."""
    limit = session.get(CreditLimit, credit_limit_id)
    if limit is None:
        raise NotFound(f"no credit limit {credit_limit_id}")
    unit = customer_unit(session, limit.customer_id, limit.org_unit)
    require_reader(session, caller, limit.customer_id, unit)
    return limit


def list_limits(
    session: Session, caller: Caller, customer_id: str, limit: int, offset: int
) -> tuple[list[CreditLimit], int]:
    """A customer's credit limits, newest first, for a caller who may read them."""
    ref = customer_ref(session, customer_id)
    require_reader(session, caller, customer_id, ref.org_unit)
    where = CreditLimit.customer_id == customer_id
    total = session.scalar(select(func.count()).select_from(CreditLimit).where(where)) or 0
    rows = session.scalars(
        select(CreditLimit)
        .where(where)
        .order_by(CreditLimit.proposed_at.desc(), CreditLimit.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total
