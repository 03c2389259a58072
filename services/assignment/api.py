"""Routes of the assignment service: parse, call the use case, return the schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.clock import business_today
from crmkit.errors import Forbidden, NotFound
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.assignment import access, rules, service
from services.assignment.api_claims import router as claims_router
from services.assignment.api_handovers import router as handovers_router
from services.assignment.api_leads import router as leads_router
from services.assignment.api_reports import router as reports_router
from services.assignment.api_teams import router as teams_router
from services.assignment.api_upgrades import router as upgrades_router
from services.assignment.models import Ownership, Staff
from services.assignment.schemas import (
    AssignmentIn,
    AssignmentOut,
    BookEntry,
    OrgUnitIn,
    OrgUnitOut,
    OwnerOut,
    OwnershipOut,
    PlacementOut,
    RunIn,
    RunOut,
    StaffIn,
    StaffOut,
    StaffPatch,
    StaffStatus,
)

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]

org_router = APIRouter(prefix="/api/v1/org-units", tags=["org units"])
staff_router = APIRouter(prefix="/api/v1/staff", tags=["staff"])
owners_router = APIRouter(prefix="/api/v1", tags=["ownership"])


def _staff_out(staff: Staff, book_size: int) -> StaffOut:
    out = StaffOut.model_validate(staff)
    out.book_size = book_size
    return out


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


# -- org units ----------------------------------------------------------------------------------
@org_router.post("", status_code=status.HTTP_201_CREATED, response_model=OrgUnitOut)
def create_org_unit(
    body: OrgUnitIn, caller: CurrentCaller, session: SessionDep, response: Response
) -> OrgUnitOut:
    """Add a unit to the org tree (administrators); its parent must exist."""
    unit = service.create_org_unit(session, body, caller)
    response.headers["Location"] = f"{service.ORG_UNITS_PATH}{unit.path}"
    return OrgUnitOut.model_validate(unit)


@org_router.get("", response_model=Page[OrgUnitOut])
def list_org_units(
    caller: CurrentCaller,
    session: SessionDep,
    under: Annotated[str | None, Query(description="Only this unit and those below it")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[OrgUnitOut]:
    """The org tree, in path order (every staff member may read it)."""
    rows, total = service.list_org_units(session, under, limit, offset)
    return Page(
        items=[OrgUnitOut.model_validate(u) for u in rows], total=total, limit=limit, offset=offset
    )


# -- staff --------------------------------------------------------------------------------------
@staff_router.post("", status_code=status.HTTP_201_CREATED, response_model=StaffOut)
def create_staff(
    body: StaffIn,
    caller: CurrentCaller,
    session: SessionDep,
    response: Response,
    request: Request,
) -> StaffOut:
    """Add a staff member (administrators, or the heads of the unit's subtree)."""
    staff = service.create_staff(session, get_runtime(request).recorder, body, caller)
    response.headers["Location"] = f"{service.STAFF_PATH}/{staff.id}"
    _etag(response, staff.version)
    return _staff_out(staff, 0)


@staff_router.get("", response_model=Page[StaffOut])
def list_staff(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: Annotated[str | None, Query(description="This unit and those below it")] = None,
    role: str | None = None,
    status_: Annotated[StaffStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[StaffOut]:
    """Staff the caller may read, in id order, with their book sizes."""
    rows, total = service.list_staff(
        session, caller, org_unit, role, status_.value if status_ else None, limit, offset
    )
    sizes = service.book_sizes(session, [s.id for s in rows])
    return Page(
        items=[_staff_out(s, sizes.get(s.id, 0)) for s in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@staff_router.get("/{staff_id}", response_model=StaffOut)
def get_staff(
    staff_id: str, caller: CurrentCaller, session: SessionDep, response: Response
) -> StaffOut:
    staff = service.load_staff(session, staff_id, caller)
    _etag(response, staff.version)
    return _staff_out(staff, service.book_sizes(session, [staff.id]).get(staff.id, 0))


@staff_router.patch("/{staff_id}", response_model=StaffOut)
def update_staff(
    staff_id: str,
    body: StaffPatch,
    caller: CurrentCaller,
    session: SessionDep,
    response: Response,
    request: Request,
    if_match: Annotated[str | None, Header()] = None,
) -> StaffOut:
    """Change a staff record, naming the version read (If-Match or ``version``)."""
    recorder = get_runtime(request).recorder
    staff = service.update_staff(session, recorder, staff_id, body, caller, if_match)
    _etag(response, staff.version)
    return _staff_out(staff, service.book_sizes(session, [staff.id]).get(staff.id, 0))


@staff_router.get("/{staff_id}/book", response_model=Page[BookEntry])
def get_book(
    staff_id: str,
    caller: CurrentCaller,
    session: SessionDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[BookEntry]:
    """The customers a staff member owns now (their book), oldest first."""
    staff = service.load_staff(session, staff_id, caller)
    if staff.id != caller.subject and not access.may_read(caller, staff.org_unit):
        raise NotFound(f"no staff {staff_id}")
    rows, total = service.book(session, staff.id, limit, offset)
    items = [
        BookEntry(
            customer_id=span.customer_id,
            name=ref.name,
            kind=ref.kind,
            org_unit=ref.org_unit,
            reason=span.reason,
            since=span.started_at,
        )
        for span, ref in rows
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)


# -- owners -------------------------------------------------------------------------------------
def _span(span: Ownership | None) -> OwnershipOut | None:
    return OwnershipOut.model_validate(span) if span is not None else None


@owners_router.post("/assignments", response_model=AssignmentOut)
def post_assignment(
    body: AssignmentIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> AssignmentOut:
    """Assign an unowned customer, transfer it from the owner named, or release it.

    Naming what is expected (no owner, or ``from_staff_id``) makes concurrent assignments safe:
    the first wins, the others get 409 with the current owner.
    """
    recorder = get_runtime(request).recorder
    new, ended = service.assign(session, recorder, body, caller)
    return AssignmentOut(
        customer_id=body.customer_id, mode=body.mode.value, owner=_span(new), previous=_span(ended)
    )


@owners_router.post("/assignment-runs", response_model=RunOut)
def post_assignment_run(
    body: RunIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> RunOut:
    """Apply the assignment rules (policy data) to the unowned customers of a subtree.

    With ``dry_run`` (the default) nothing changes: each customer is shown with the rule that
    decided it and the staff member it would go to, or why nobody could take it.
    """
    scope = body.org_unit or caller.org_unit
    if not access.may_manage(caller, scope):
        raise Forbidden(f"you may not assign customers of {scope}")
    runtime = get_runtime(request)
    plan = rules.plan(session, scope, business_today(), body.limit)
    session.rollback()  # the plan is read; applying writes in transactions of its own
    applied = 0
    if not body.dry_run:
        applied = rules.apply(
            runtime.session_factory,
            runtime.recorder,
            plan.placements,
            caller.subject,
            plan.policy.version,
        )
    placed = len(plan.placed)
    return RunOut(
        policy_version=plan.policy.version,
        dry_run=body.dry_run,
        considered=len(plan.placements),
        placed=placed,
        unplaced=len(plan.placements) - placed,
        applied=applied,
        by_rule=plan.by_rule(),
        items=[
            PlacementOut(
                customer_id=p.customer_id,
                rule=p.rule,
                staff_id=p.staff_id,
                org_unit=p.org_unit,
                reason=p.reason,
            )
            for p in plan.placements
        ],
    )


@owners_router.get("/customers/{customer_id}/owner", response_model=OwnerOut)
def get_owner(customer_id: str, caller: CurrentCaller, session: SessionDep) -> OwnerOut:
    """The customer's owner now (``owner`` null when it has none)."""
    service.check_readable_customer(session, customer_id, caller)
    return OwnerOut(
        customer_id=customer_id, owner=_span(service.current_owner(session, customer_id))
    )


@owners_router.get("/customers/{customer_id}/owner-history", response_model=list[OwnershipOut])
def get_owner_history(
    customer_id: str, caller: CurrentCaller, session: SessionDep
) -> list[OwnershipOut]:
    """Every ownership span of the customer, oldest first, with reasons and who decided."""
    service.check_readable_customer(session, customer_id, caller)
    return [OwnershipOut.model_validate(s) for s in service.owner_history(session, customer_id)]


routers: list[APIRouter] = [
    org_router,
    staff_router,
    owners_router,
    claims_router,
    handovers_router,
    teams_router,
    upgrades_router,
    leads_router,
    reports_router,
]
