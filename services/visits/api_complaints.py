"""Routes: Complaints 投诉 and their steps, and the complaints report by branch."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.clock import BUSINESS_TZ
from crmkit.csvout import CSV_MEDIA_TYPE, CSV_RESPONSE
from crmkit.db import utcnow
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page, ReportFormat
from services.visits import complaints
from services.visits.schemas_complaints import (
    ComplaintDetail,
    ComplaintIn,
    ComplaintOut,
    ComplaintsReport,
    ComplaintStatus,
    TransitionIn,
)

router = APIRouter(prefix="/api/v1", tags=["complaints"])

COMPLAINTS_PATH = "/api/v1/complaints"
OrgUnitQuery = Annotated[
    str | None,
    Query(
        pattern=r"^/[A-Za-z0-9_./-]*$",
        max_length=200,
        description="Only this org subtree (the customers' units), e.g. /HQ/U01",
    ),
]


@router.post(
    "/complaints",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintDetail,
    responses={
        403: {"description": "Not front-line staff of the customer's subtree or serving it"},
        422: {"description": "Not valid, or the customer is not known here"},
    },
)
def post_complaint(
    body: ComplaintIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    response: Response,
) -> ComplaintDetail:
    """Record a complaint 投诉 of a known customer: front-line staff of the customer's subtree or
    who serve it, heads of the subtree, administrators. The first step (accept) is owned by
    `owner`, else the customer's owner, else the recorder, and is due by the complaint policy;
    a high-tier customer's complaint goes to the branch head at once."""
    now = utcnow()
    complaint = complaints.record_complaint(
        session, get_runtime(request).recorder, body, caller, now
    )
    response.headers["Location"] = f"{COMPLAINTS_PATH}/{complaint.id}"
    return complaints.complaint_detail(session, complaint, now)


@router.get("/complaints", response_model=Page[ComplaintOut])
def list_complaints(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgUnitQuery = None,
    status_: Annotated[ComplaintStatus | None, Query(alias="status")] = None,
    late: Annotated[
        bool | None, Query(description="true: the step waited for is past its deadline")
    ] = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ComplaintOut]:
    """Complaints, oldest first: staff see those they own a step of or whose customer they
    serve, heads those of their subtree too, auditors and administrators all."""
    now = utcnow()
    where = complaints.ComplaintFilter(org_unit, status_, late, customer_id)
    rows, total = complaints.list_complaints(session, caller, where, now, limit, offset)
    return Page(
        items=[complaints.complaint_out(c, now) for c in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/complaints/{complaint_id}",
    response_model=ComplaintDetail,
    responses={403: {"description": "Not a complaint the caller may read"}},
)
def get_complaint(complaint_id: str, caller: CurrentCaller, session: SessionDep) -> ComplaintDetail:
    """A complaint with its step history: owners, deadlines, when each step was done, late and
    escalated steps."""
    complaint = complaints.load(session, complaint_id, caller)
    return complaints.complaint_detail(session, complaint, utcnow())


@router.post(
    "/complaints/{complaint_id}/transitions",
    response_model=ComplaintDetail,
    responses={
        403: {"description": "Neither the owner of the step waited for nor a head"},
        409: {"description": "Not the next step, or moved concurrently"},
        422: {"description": "Closing without every field of the outcome"},
    },
)
def post_transition(
    complaint_id: str,
    body: TransitionIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> ComplaintDetail:
    """Do the step the complaint waits for and move it to `to` (accepted → analysed → handled →
    feedback_given → closed, in order): by the step's owner or a head of the complaint's
    subtree. `owner` names the next step's owner (default: the same). Closing records the
    outcome: `outcome` (retained/lost), `person_at_fault`, `sanction`, `root_cause`, `lesson`,
    `fix_description`, `fix_owner_id` and `fix_due_on` — all required."""
    now = utcnow()
    complaint = complaints.transition(
        session, get_runtime(request).recorder, complaint_id, body, caller, now
    )
    return complaints.complaint_detail(session, complaint, now)


REPORT_DESCRIPTION = """
The complaints recorded in the period (`from` to `to`, business dates in Asia/Shanghai; default:
the current month to today) for customers of the subtree (`org_unit`, default the caller's),
one row per org unit (the customer's when recorded) and a total: the complaints, the open ones,
counts by status and by the step the open ones wait for, late (a step done after its deadline
or undone past it now), escalated to the branch head, customers retained and lost. Heads and
line departments read their subtree, auditors and administrators any. `format=csv` gives the
same rows for Excel.
"""


@router.get(
    "/reports/complaints",
    response_model=ComplaintsReport,
    summary="Complaints by branch 投诉统计",
    description=REPORT_DESCRIPTION,
    responses={200: CSV_RESPONSE, 403: {"description": "The subtree is outside the scope"}},
)
def complaints_report(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgUnitQuery = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    format_: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.json,
) -> ComplaintsReport | Response:
    now = utcnow()
    date_to = date_to or now.astimezone(BUSINESS_TZ).date()
    date_from = date_from or date_to.replace(day=1)
    report = complaints.complaints_report(session, caller, org_unit, date_from, date_to, now)
    if format_ is ReportFormat.json:
        return report
    return Response(
        content=complaints.report_csv(report).encode("utf-8"),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="complaints-{date_from}-{date_to}.csv"'
        },
    )
