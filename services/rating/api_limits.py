"""Routes: Credit-limit calculation and proposals 授信额度测算."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.rating import campaigns, credit, limits, ratings
from services.rating.schemas_limits import (
    CreditLimitIn,
    CreditLimitOut,
    LimitFormulaOut,
    PledgeRateOut,
)

router = APIRouter(prefix="/api/v1", tags=["credit limits"])

LIMITS_PATH = "/api/v1/credit-limits"


def _formula_out(formula: limits.LimitFormula) -> LimitFormulaOut:
    policy = formula.policy.model_dump()
    policy["pledge_rates"] = [
        PledgeRateOut(type=code, name=entry["name"], rate=entry["rate"])
        for code, entry in policy["pledge_rates"].items()
    ]
    return LimitFormulaOut.model_validate(policy)


@router.get("/limit-formulas", response_model=list[LimitFormulaOut])
def list_formulas(caller: CurrentCaller) -> list[LimitFormulaOut]:
    """Every limit formula version: capacity, net-assets ratio, grade coefficients and caps,
    pledge rates, guarantor ratios and rounding."""
    return [_formula_out(formula) for formula in limits.formulas()]


@router.post("/credit-limits", status_code=status.HTTP_201_CREATED, response_model=CreditLimitOut)
def post_credit_limit(
    body: CreditLimitIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    response: Response,
) -> CreditLimitOut:
    """Calculate and propose a customer's comprehensive limit on its confirmed grade (its owner
    or serving manager): the credit, guaranteed and secured parts step by step, the staff
    adjustment beside them, sub-limits within the total, the VIP pricing hint. It waits for
    review."""
    ratings.require_proposer(session, caller, body.customer_id)
    if body.campaign_id is not None:
        campaigns.require_running(session, body.campaign_id)
    limit = credit.propose(
        session,
        get_runtime(request).recorder,
        customer_id=body.customer_id,
        assessment_id=body.assessment_id,
        inputs=body.inputs,
        collaterals=[c.domain() for c in body.collaterals],
        guarantors=[g.domain() for g in body.guarantors],
        sub_limits=[s.model_dump() for s in body.sub_limits],
        revolving=body.revolving,
        term_months=body.term_months,
        adjustment_amount=body.adjustment_amount,
        adjustment_reason=body.adjustment_reason,
        investigation_report=body.investigation_report,
        risk_analysis=body.risk_analysis,
        actor=caller.subject,
        campaign_id=body.campaign_id,
    )
    session.commit()
    response.headers["Location"] = f"{LIMITS_PATH}/{limit.id}"
    return CreditLimitOut.model_validate(limit)


@router.get("/customers/{customer_id}/credit-limits", response_model=Page[CreditLimitOut])
def list_credit_limits(
    customer_id: str,
    caller: CurrentCaller,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[CreditLimitOut]:
    """A customer's credit limits, newest first."""
    rows, total = credit.list_limits(session, caller, customer_id, limit, offset)
    return Page(
        items=[CreditLimitOut.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/credit-limits/{credit_limit_id}", response_model=CreditLimitOut)
def get_credit_limit(
    credit_limit_id: str, caller: CurrentCaller, session: SessionDep
) -> CreditLimitOut:
    return CreditLimitOut.model_validate(credit.load_limit(session, credit_limit_id, caller))
