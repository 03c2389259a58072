"""Routes of the target lists 名单制 and leads of the assignment service: service areas,
target-list entries with their distribution, stages and bidding, and the lead funnel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.csvout import CSV_MEDIA_TYPE
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.assignment import leads
from services.assignment.schemas import OrgPath
from services.assignment.schemas_leads import (
    AreaIn,
    AreaKind,
    AreaOut,
    AreaPatch,
    AwardIn,
    BidOut,
    DistributeIn,
    FunnelOut,
    LeadDetail,
    LeadIn,
    LeadOut,
    LeadPatch,
    Line,
    ListFormat,
    NoteIn,
    PostIn,
    Stage,
    StageIn,
)

router = APIRouter(prefix="/api/v1", tags=["leads"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]
CSV_LIMIT = 50_000
AREAS_PATH = "/api/v1/leads/areas"
IfMatch = Annotated[str | None, Header(description='The version read, as an ETag: "3"')]


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


# -- areas --------------------------------------------------------------------------------------
@router.post("/leads/areas", status_code=status.HTTP_201_CREATED, response_model=AreaOut)
def post_area(
    body: AreaIn, caller: CurrentCaller, session: SessionDep, response: Response
) -> AreaOut:
    """Contract a service area 片区 to a unit, its streets and estates to managers
    (administrators, heads of the unit's subtree)."""
    area = leads.create_area(session, body, caller)
    response.headers["Location"] = f"{AREAS_PATH}/{area.id}"
    _etag(response, area.version)
    return AreaOut.model_validate(leads.load_area(session, area.id))


@router.get("/leads/areas", response_model=Page[AreaOut])
def list_areas(
    caller: CurrentCaller,
    session: SessionDep,
    under: OrgPath | None = None,
    kind: AreaKind | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AreaOut]:
    rows, total = leads.list_areas(session, under, kind.value if kind else None, limit, offset)
    return Page(
        items=[AreaOut.model_validate(a) for a in rows], total=total, limit=limit, offset=offset
    )


@router.get("/leads/areas/{area_id}", response_model=AreaOut)
def get_area(
    area_id: str, caller: CurrentCaller, session: SessionDep, response: Response
) -> AreaOut:
    out = AreaOut.model_validate(leads.load_area(session, area_id))
    _etag(response, out.version)
    return out


@router.patch("/leads/areas/{area_id}", response_model=AreaOut)
def patch_area(
    area_id: str,
    body: AreaPatch,
    caller: CurrentCaller,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> AreaOut:
    """Rename an area, change its kind or contracted unit, or replace its streets and estates
    (administrators, heads of the unit's subtree), naming the version read: ``If-Match`` (412
    when stale) or ``version`` (409); neither, 428. A street or estate an entry names stays
    (409 with ``in_use``)."""
    area = leads.update_area(session, area_id, body, caller, if_match)
    _etag(response, area.version)
    return AreaOut.model_validate(leads.load_area(session, area.id))


# -- entries ------------------------------------------------------------------------------------
@router.post("/target-lists", status_code=status.HTTP_201_CREATED, response_model=LeadOut)
def post_lead(
    body: LeadIn, caller: CurrentCaller, session: SessionDep, response: Response
) -> LeadOut:
    """Collect a target-list entry (staff who hold a book, heads); its line follows the area."""
    lead = leads.create_lead(session, body, caller)
    response.headers["Location"] = f"{leads.LEADS_PATH}/{lead.id}"
    _etag(response, lead.version)
    return leads.rows_out(session, [lead])[0]


@router.get(
    "/target-lists",
    response_model=Page[LeadOut],
    responses={
        200: {
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "description": "With format=csv: every matching row (附件4), UTF-8 with a byte-order "
            "mark, English headers with the Chinese term in parentheses.",
        }
    },
)
def list_leads(
    caller: CurrentCaller,
    session: SessionDep,
    stage: Stage | None = None,
    line: Line | None = None,
    area_id: str | None = None,
    marketer_id: str | None = None,
    bidding: Annotated[str | None, Query(pattern="^(open|awarded|closed)$")] = None,
    format_: Annotated[ListFormat, Query(alias="format")] = ListFormat.json,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[LeadOut] | Response:
    """The target list 目标客户名单 (附件4): administrators all of it, heads, auditors and credit
    approvers their subtree's entries (by the area's contracted unit), staff their own and those
    open to their bids. ``format=csv`` gives every matching row as CSV."""
    csv = format_ is ListFormat.csv
    rows, total = leads.list_leads(
        session,
        caller,
        stage=stage.value if stage else None,
        line=line.value if line else None,
        area_id=area_id,
        marketer_id=marketer_id,
        bidding=bidding,
        limit=CSV_LIMIT if csv else limit,
        offset=0 if csv else offset,
    )
    out = leads.rows_out(session, rows)
    if csv:
        return Response(
            content=leads.to_csv(out).encode("utf-8"),
            media_type=CSV_MEDIA_TYPE,
            headers={
                "Content-Disposition": 'attachment; filename="target-list.csv"',
                "X-Total-Count": str(total),
            },
        )
    return Page(items=out, total=total, limit=limit, offset=offset)


@router.get("/target-lists/{lead_id}", response_model=LeadDetail)
def get_lead(
    lead_id: str, caller: CurrentCaller, session: SessionDep, response: Response
) -> LeadDetail:
    """An entry with its bids and stage history."""
    out = leads.detail(session, lead_id, caller)
    _etag(response, out.version)
    return out


@router.patch("/target-lists/{lead_id}", response_model=LeadOut)
def patch_lead(
    lead_id: str,
    body: LeadPatch,
    caller: CurrentCaller,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> LeadOut:
    """Change an open entry (its collector or marketer, administrators, heads of its unit),
    naming the version read: ``If-Match`` (412 when stale) or ``version`` (409); neither, 428.
    Its kind and area (which route it to a line) change only while it is collected."""
    lead = leads.update_lead(session, lead_id, body, caller, if_match)
    _etag(response, lead.version)
    return leads.rows_out(session, [lead])[0]


@router.post("/target-lists/{lead_id}/claim", response_model=LeadOut)
def claim_lead(lead_id: str, body: NoteIn, caller: CurrentCaller, session: SessionDep) -> LeadOut:
    """A priority claim 优先领认 on a collected entry: distribution gives it to the claimant."""
    return leads.rows_out(session, [leads.claim(session, lead_id, body, caller)])[0]


@router.post("/target-lists/{lead_id}/distribute", response_model=LeadOut)
def distribute_lead(
    lead_id: str, body: DistributeIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> LeadOut:
    """Give a collected entry its marketer: the one named, else the claimant, else the manager
    of its street or estate, else the nearest customer manager of its line (same industry first,
    then the least loaded). Publishes ``lead.distributed`` and ``lead.stage_changed``."""
    recorder = get_runtime(request).recorder
    lead = leads.distribute(session, recorder, lead_id, body, caller)
    return leads.rows_out(session, [lead])[0]


@router.post("/target-lists/{lead_id}/stage", response_model=LeadOut)
def move_lead(
    lead_id: str, body: StageIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> LeadOut:
    """Move an entry: distributed → feedback → screened → target (with a plan) → won, or lost
    from any open stage; 409 for any other move. A win names the customer the entry became
    (``customer_id``, known here, else 422): without an owner it becomes the marketer's
    (谁营销谁维护), else it keeps its owner. Publishes ``lead.stage_changed`` (and ``lead.won``)."""
    recorder = get_runtime(request).recorder
    return leads.rows_out(session, [leads.move(session, recorder, lead_id, body, caller)])[0]


@router.post("/target-lists/{lead_id}/post", response_model=LeadOut)
def post_for_bidding(
    lead_id: str, body: PostIn, caller: CurrentCaller, session: SessionDep
) -> LeadOut:
    """Post a key target for bidding by staff of your subtree, with the reward if won."""
    return leads.rows_out(session, [leads.post(session, lead_id, body, caller)])[0]


@router.post(
    "/target-lists/{lead_id}/bids", status_code=status.HTTP_201_CREATED, response_model=BidOut
)
def bid_for_lead(lead_id: str, body: NoteIn, caller: CurrentCaller, session: SessionDep) -> BidOut:
    return BidOut.model_validate(leads.bid(session, lead_id, body, caller))


@router.post("/target-lists/{lead_id}/award", response_model=LeadOut)
def award_lead(
    lead_id: str, body: AwardIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> LeadOut:
    """Award a posted entry to one bidder, who becomes its marketer (``lead.distributed``)."""
    recorder = get_runtime(request).recorder
    return leads.rows_out(session, [leads.award(session, recorder, lead_id, body, caller)])[0]


# -- the funnel ---------------------------------------------------------------------------------
@router.get("/reports/lead-funnel", response_model=FunnelOut)
def lead_funnel(
    caller: CurrentCaller, session: SessionDep, org_unit: OrgPath | None = None
) -> FunnelOut:
    """Entries now at each stage, and reached at least each stage (collected ≥ distributed ≥ …
    ≥ won), per business line, in ``org_unit`` (your unit by default): readers count their
    subtree's entries, other staff their own."""
    return leads.funnel(session, caller, org_unit)
