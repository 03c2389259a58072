"""Routes of the upgrade proposals 升级不强制迁移 and income attribution of the assignment
service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from crmkit.auth import CurrentCaller
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.assignment import upgrades
from services.assignment.schemas_upgrades import (
    AttributionOut,
    ChoiceIn,
    ProposalOut,
    ProposalStatus,
)

router = APIRouter(prefix="/api/v1", tags=["upgrades"])


@router.get("/upgrade-proposals/attributions/{customer_id}", response_model=AttributionOut)
def get_attribution(customer_id: str, caller: CurrentCaller, session: SessionDep) -> AttributionOut:
    """Who first developed the customer, to whom its income stays attributed (administrators,
    heads and auditors of its subtree, its owner, the staff member named)."""
    return AttributionOut.model_validate(upgrades.read_attribution(session, customer_id, caller))


@router.get("/upgrade-proposals", response_model=Page[ProposalOut])
def list_proposals(
    caller: CurrentCaller,
    session: SessionDep,
    status_: Annotated[ProposalStatus | None, Query(alias="status")] = None,
    customer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ProposalOut]:
    """Proposals on customers of a subtree you head (all for administrators), and those on
    customers you own or owned when they were raised, oldest first."""
    rows, total = upgrades.list_proposals(
        session, caller, status_.value if status_ else None, customer_id, limit, offset
    )
    return Page(
        items=[ProposalOut.model_validate(p) for p in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/upgrade-proposals/{proposal_id}", response_model=ProposalOut)
def get_proposal(proposal_id: str, caller: CurrentCaller, session: SessionDep) -> ProposalOut:
    return ProposalOut.model_validate(upgrades.load_proposal(session, proposal_id, caller))


@router.post("/upgrade-proposals/{proposal_id}/choice", response_model=ProposalOut)
def record_choice(
    proposal_id: str, body: ChoiceIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> ProposalOut:
    """Record the customer's choice (administrators, heads of the customer's subtree): ``stay``
    keeps the owner, ``move`` transfers the customer; 409 once the choice is recorded."""
    proposal = upgrades.record_choice(
        session, get_runtime(request).recorder, proposal_id, body, caller
    )
    return ProposalOut.model_validate(proposal)
