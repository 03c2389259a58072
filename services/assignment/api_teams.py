"""Routes of the teams 团队维护 of the assignment service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from crmkit.auth import CurrentCaller
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.assignment import teams
from services.assignment.schemas_teams import (
    DesignationClosed,
    DesignationCloseIn,
    DesignationIn,
    DesignationOut,
    GroupLeaderIn,
    GroupLeaderOut,
    TeamCase,
    TeamIn,
    TeamOut,
    ViolationOut,
)

router = APIRouter(prefix="/api/v1", tags=["teams"])


@router.get("/teams/violations", response_model=Page[ViolationOut])
def list_violations(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: str | None = None,
    case: TeamCase | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ViolationOut]:
    """Customers of your scope that need a team (by one or more cases) and lack a compliant one,
    with the cases and what is missing, by unit."""
    rows, total = teams.violations(session, caller, org_unit, case, limit, offset)
    return Page(items=rows, total=total, limit=limit, offset=offset)


@router.post(
    "/teams/designations", status_code=status.HTTP_201_CREATED, response_model=DesignationOut
)
def post_designation(
    body: DesignationIn, caller: CurrentCaller, session: SessionDep
) -> DesignationOut:
    """Name a customer as needing a team (line departments, auditors, administrators)."""
    return DesignationOut.model_validate(teams.designate(session, body, caller))


@router.post("/teams/designations/{designation_id}/close", response_model=DesignationClosed)
def close_designation(
    designation_id: str,
    body: DesignationCloseIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> DesignationClosed:
    """Close a designation, with the reason (those who may designate the customer). When the
    customer then meets no case, its team is dissolved: each member is released
    (``ownership.released``, role ``team_member``)."""
    recorder = get_runtime(request).recorder
    designation, cases, released = teams.close_designation(
        session, recorder, designation_id, body, caller
    )
    return DesignationClosed.model_validate(
        {
            **DesignationOut.model_validate(designation).model_dump(),
            "cases": cases,
            "released": released,
        }
    )


@router.post("/teams/groups/{group_id}/leader", response_model=GroupLeaderOut)
def post_group_leader(
    group_id: str, body: GroupLeaderIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> GroupLeaderOut:
    """Make one accountable leader 挂钩领导 the leader of a group's parent and of every member
    (every member of a group gets the same leader), in one transaction: administrators and heads
    whose subtree holds the whole group. Each customer given the leader publishes
    ``ownership.assigned``, each leader replaced ``ownership.released`` (role ``team_member``)."""
    return teams.set_group_leader(session, get_runtime(request).recorder, group_id, body, caller)


@router.get("/teams/{customer_id}", response_model=TeamOut)
def get_team(customer_id: str, caller: CurrentCaller, session: SessionDep) -> TeamOut:
    """The customer's team, the cases by which it needs one and what it lacks."""
    return teams.read_team(session, customer_id, caller)


@router.put("/teams/{customer_id}", response_model=TeamOut)
def put_team(
    customer_id: str, body: TeamIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> TeamOut:
    """Set the whole team: the owner as first responsible, the members, a senior lead and an
    accountable leader where the policy requires them (administrators, heads of the subtree)."""
    return teams.set_team(session, get_runtime(request).recorder, customer_id, body, caller)
