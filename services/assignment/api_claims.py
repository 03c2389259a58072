"""Routes of the claims 认领 of the assignment service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.assignment import claims
from services.assignment.schemas_claims import ClaimIn, ClaimOut, ClaimStatus, DecisionIn

router = APIRouter(prefix="/api/v1", tags=["claims"])


@router.post(
    "/claims",
    status_code=status.HTTP_201_CREATED,
    response_model=ClaimOut,
    responses={202: {"model": ClaimOut, "description": "Contested: waits for a head"}},
)
def post_claim(
    body: ClaimIn, caller: CurrentCaller, session: SessionDep, request: Request, response: Response
) -> ClaimOut:
    """Claim a customer you know: 201 granted (you own it now) when it had no owner and no claim
    pending, else 202 contested (a head of the customer's subtree decides)."""
    claim = claims.create_claim(session, get_runtime(request).recorder, body, caller)
    if claim.status != ClaimStatus.granted.value:
        response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"{claims.CLAIMS_PATH}/{claim.id}"
    return ClaimOut.model_validate(claim)


@router.get("/claims", response_model=Page[ClaimOut])
def list_claims(
    caller: CurrentCaller,
    session: SessionDep,
    status_: Annotated[ClaimStatus | None, Query(alias="status")] = None,
    customer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ClaimOut]:
    """Your claims, and heads' and administrators' those of their subtree, oldest first."""
    rows, total = claims.list_claims(
        session, caller, status_.value if status_ else None, customer_id, limit, offset
    )
    return Page(
        items=[ClaimOut.model_validate(c) for c in rows], total=total, limit=limit, offset=offset
    )


@router.get("/claims/{claim_id}", response_model=ClaimOut)
def get_claim(claim_id: str, caller: CurrentCaller, session: SessionDep) -> ClaimOut:
    return ClaimOut.model_validate(claims.load_claim(session, claim_id, caller))


@router.post("/claims/{claim_id}/decide", response_model=ClaimOut)
def decide_claim(
    claim_id: str, body: DecisionIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> ClaimOut:
    """Grant or refuse a contested claim (administrators, heads of the customer's subtree)."""
    claim = claims.decide(session, get_runtime(request).recorder, claim_id, body, caller)
    return ClaimOut.model_validate(claim)
