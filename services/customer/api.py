"""Routes of the customer service: parse, call the use case, return the schema."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.http import SessionDep
from crmkit.schemas import CustomerKind, Page
from services.customer import domain, financials, privacy, repo, service, views
from services.customer.api_imports import router as imports_router
from services.customer.api_reports import router as reports_router
from services.customer.context import CustomerContext
from services.customer.repo import CustomerFilter
from services.customer.schemas import (
    ChangeOut,
    CursorPage,
    CustomerCreate,
    CustomerOut,
    CustomerPatch,
    CustomerSummary,
    LookupIn,
    RelationshipIn,
    RelationshipOut,
    RevealIn,
    RevealOut,
    Segment,
    SnapshotIn,
    SnapshotOut,
    SnapshotResult,
    Status,
)

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


def get_context(request: Request) -> CustomerContext:
    context: CustomerContext = request.app.state.customer_context
    return context


ContextDep = Annotated[CustomerContext, Depends(get_context)]
Limit = Annotated[int, Query(ge=1, le=500)]


def _with_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerOut,
    summary="Enter a customer (客户信息采集)",
    responses={409: {"description": "A customer with this identity exists (link in the body)"}},
)
def create_customer(
    body: CustomerCreate,
    caller: CurrentCaller,
    session: SessionDep,
    ctx: ContextDep,
    response: Response,
) -> CustomerOut:
    customer = service.create_customer(session, ctx, body, caller)
    response.headers["Location"] = f"{domain.CUSTOMERS_PATH}/{customer.id}"
    _with_etag(response, customer.version)
    return views.to_out(session, customer)


@router.get(
    "",
    response_model=CursorPage[CustomerSummary],
    summary="Search customers in the caller's scope",
)
def list_customers(
    caller: CurrentCaller,
    session: SessionDep,
    kind: CustomerKind | None = None,
    segment: Segment | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    value_tier: Annotated[str | None, Query(pattern="^(high|middle|general)$")] = None,
    wealth_layer: Annotated[str | None, Query(pattern="^layer_[1-4]$")] = None,
    vip_level: Annotated[str | None, Query(pattern="^(gold|platinum|diamond)$")] = None,
    potential_vip: Annotated[str | None, Query(pattern="^(gold|platinum|diamond)$")] = None,
    org_unit: Annotated[str | None, Query(pattern=r"^/[A-Za-z0-9_/-]*$")] = None,
    market_segment: str | None = None,
    owner: Annotated[str | None, Query(description="Staff id of an owner or team member")] = None,
    lost_contact: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="Text in the name")] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> CursorPage[CustomerSummary]:
    flt = CustomerFilter(
        kind=kind.value if kind else None,
        segment=segment.value if segment else None,
        status=status_.value if status_ else None,
        value_tier=value_tier,
        wealth_layer=wealth_layer,
        vip_level=vip_level,
        potential_vip=potential_vip,
        org_unit=org_unit,
        market_segment=market_segment,
        owner=owner,
        lost_contact=lost_contact,
        q=q,
    )
    rows, next_cursor = repo.list_customers(session, caller, flt, limit, cursor)
    return CursorPage[CustomerSummary](
        items=views.summaries(session, rows), limit=limit, next_cursor=next_cursor
    )


@router.get(
    "/lost-contact",
    response_model=CursorPage[CustomerSummary],
    summary="Lost-contact customers 失联客户: no valid phone, for data repair",
)
def lost_contact(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: Annotated[str | None, Query(pattern=r"^/[A-Za-z0-9_/-]*$")] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> CursorPage[CustomerSummary]:
    flt = CustomerFilter(org_unit=org_unit, lost_contact=True)
    rows, next_cursor = repo.list_customers(session, caller, flt, limit, cursor)
    return CursorPage[CustomerSummary](
        items=views.summaries(session, rows), limit=limit, next_cursor=next_cursor
    )


@router.post(
    "/lookup",
    response_model=CustomerOut,
    summary="Find a customer by identity number (counter service); audited",
)
def look_up(
    body: LookupIn, caller: CurrentCaller, session: SessionDep, ctx: ContextDep
) -> CustomerOut:
    customer = privacy.look_up(session, ctx, caller, body.id_number, body.credit_code)
    return views.to_out(session, customer)


@router.get("/{customer_id}", response_model=CustomerOut, summary="Read one customer")
def get_customer(
    customer_id: str, caller: CurrentCaller, session: SessionDep, response: Response
) -> CustomerOut:
    customer = repo.load_readable(session, caller, customer_id)
    _with_etag(response, customer.version)
    return views.to_out(session, customer)


@router.patch(
    "/{customer_id}",
    response_model=CustomerOut,
    summary="Change master data (name the version read: If-Match or version)",
    responses={
        409: {"description": "The version given in the body is stale"},
        412: {"description": "The If-Match version is stale"},
        428: {"description": "No version named"},
    },
)
def update_customer(
    customer_id: str,
    body: CustomerPatch,
    caller: CurrentCaller,
    session: SessionDep,
    ctx: ContextDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> CustomerOut:
    customer = service.update_customer(session, ctx, customer_id, body, caller, if_match)
    _with_etag(response, customer.version)
    return views.to_out(session, customer)


@router.get(
    "/{customer_id}/changes",
    response_model=list[ChangeOut],
    summary="Who changed what and when",
)
def list_changes(customer_id: str, caller: CurrentCaller, session: SessionDep) -> list[ChangeOut]:
    return [ChangeOut.model_validate(c) for c in repo.list_changes(session, caller, customer_id)]


@router.post(
    "/{customer_id}/reveal",
    response_model=RevealOut,
    summary="Personal data in clear, for roles that may see it; every reveal is audited",
)
def reveal(
    customer_id: str, body: RevealIn, caller: CurrentCaller, session: SessionDep, ctx: ContextDep
) -> RevealOut:
    values, audit_id = privacy.reveal(
        session, ctx, customer_id, [f.value for f in body.fields], body.reason, caller
    )
    return RevealOut(customer_id=customer_id, values=values, audit_id=audit_id)


@router.put(
    "/{customer_id}/financials",
    response_model=SnapshotResult,
    summary="Record core banking's figures for a business date; the newest decides the tiers",
)
def put_financials(
    customer_id: str, body: SnapshotIn, caller: CurrentCaller, session: SessionDep, ctx: ContextDep
) -> SnapshotResult:
    outcome = financials.record_snapshot(session, ctx, customer_id, body, caller)
    return SnapshotResult(
        snapshot=SnapshotOut.model_validate(outcome.snapshot),
        tiers=views.tiers_out(outcome.customer),
        tier_changes=[
            {"dimension": c.dimension, "old": c.old, "new": c.new, "reason": c.reason}
            for c in outcome.tier_changes
        ],
    )


@router.get(
    "/{customer_id}/financials",
    response_model=Page[SnapshotOut],
    summary="The customer's snapshot history, newest first",
)
def get_financials(
    customer_id: str,
    caller: CurrentCaller,
    session: SessionDep,
    since: date | None = None,
    until: date | None = None,
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[SnapshotOut]:
    rows, total = financials.list_snapshots(
        session, caller, customer_id, since, until, limit, offset
    )
    return Page[SnapshotOut](
        items=[SnapshotOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{customer_id}/relationships",
    response_model=list[RelationshipOut],
    summary="Groups, related parties, supply chain, guarantees, payroll employer",
)
def get_relationships(
    customer_id: str, caller: CurrentCaller, session: SessionDep
) -> list[RelationshipOut]:
    return repo.list_relationships(session, customer_id, caller)


@router.post(
    "/{customer_id}/relationships",
    response_model=list[RelationshipOut],
    status_code=status.HTTP_201_CREATED,
    summary="Link this customer to another",
)
def add_relationship(
    customer_id: str, body: RelationshipIn, caller: CurrentCaller, session: SessionDep
) -> list[RelationshipOut]:
    service.add_relationship(session, customer_id, body, caller)
    return repo.list_relationships(session, customer_id, caller)


@router.delete(
    "/{customer_id}/relationships/{relationship_id}",
    response_model=list[RelationshipOut],
    summary="End a link from this customer to another (e.g. leaving its group)",
)
def end_relationship(
    customer_id: str, relationship_id: int, caller: CurrentCaller, session: SessionDep
) -> list[RelationshipOut]:
    """The relationships left; ending a ``group_member`` link publishes
    ``customer.group_changed`` with ``group_id`` null."""
    service.end_relationship(session, customer_id, relationship_id, caller)
    return repo.list_relationships(session, customer_id, caller)


# Imports first: /imports would otherwise be taken for a customer id by /{customer_id}.
routers = [imports_router, router, reports_router]
