"""Routes of data governance 信息治理: probable duplicates, merges and erasure on request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from crmkit.auth import CurrentCaller
from crmkit.http import SessionDep
from crmkit.schemas import Page
from services.customer import dedup, privacy, views
from services.customer.api import ContextDep
from services.customer.schemas import CustomerOut, DuplicateGroup, ErasureIn, MergeIn

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


@router.get(
    "/duplicates",
    response_model=Page[DuplicateGroup],
    summary="Probable duplicates in the caller's scope, for review",
    description=(
        "Records sharing a name stem (legal forms and bracketed place names ignored), grouped as "
        "same_name_and_phone, same_name_and_address or similar_name. `total`, `limit` and "
        "`offset` count name stems; a stem may yield more than one group."
    ),
)
def list_duplicates(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: Annotated[str | None, Query(pattern=r"^/[A-Za-z0-9_/-]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[DuplicateGroup]:
    groups, total = dedup.probable_duplicates(session, caller, org_unit, limit, offset)
    return Page[DuplicateGroup](
        items=[
            DuplicateGroup(reason=reason, customers=views.summaries(session, members))
            for reason, members in groups
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/{customer_id}/merge",
    response_model=CustomerOut,
    summary="Merge a duplicate record into this one (the survivor)",
    responses={409: {"description": "Stale survivor version, or a record already merged"}},
)
def merge(
    customer_id: str,
    body: MergeIn,
    caller: CurrentCaller,
    session: SessionDep,
    ctx: ContextDep,
    response: Response,
) -> CustomerOut:
    survivor = dedup.merge(session, ctx, customer_id, body.duplicate_id, body.version, caller)
    response.headers["ETag"] = f'"{survivor.version}"'
    return views.to_out(session, survivor)


@router.post(
    "/{customer_id}/erasure",
    response_model=CustomerOut,
    summary="Erase a data subject's personal data on request (PIPL); history stays anonymous",
)
def erase(
    customer_id: str, body: ErasureIn, caller: CurrentCaller, session: SessionDep, ctx: ContextDep
) -> CustomerOut:
    customer = privacy.erase(session, ctx, customer_id, body.reason, body.request_reference, caller)
    return views.to_out(session, customer)
