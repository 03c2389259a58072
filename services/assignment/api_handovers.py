"""Routes of the handovers of the assignment service: 离岗交接 and the auditors' spot-checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from crmkit.auth import CurrentCaller
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.assignment import handovers
from services.assignment.models_handovers import Handover, SpotCheck
from services.assignment.schemas_handovers import (
    ApproveIn,
    AuditIn,
    HandoverCustomerOut,
    HandoverIn,
    HandoverOut,
    HandoverSummary,
    SpotCheckIn,
    SpotCheckOut,
)

router = APIRouter(prefix="/api/v1", tags=["handovers"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


def _out(session: Session, handover: Handover) -> HandoverOut:
    rows = handovers.customers_of(session, handover.id)
    gone = handovers.gone_from_book(session, handover, rows) if handover.status == "open" else set()
    out = HandoverOut.model_validate(handover)
    out.customers = [HandoverCustomerOut.model_validate(r) for r in rows]
    blocked = handovers.blockers(rows, gone) if handover.status == "open" else {}
    out.unaudited = blocked.get("unaudited", [])
    out.issues = blocked.get("issues", [])
    out.unplanned = blocked.get("unplanned", [])
    return out


@router.post("/handovers", status_code=status.HTTP_201_CREATED, response_model=HandoverOut)
def start_handover(
    body: HandoverIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    response: Response,
) -> HandoverOut:
    """Start a handover (admins, heads of the staff member's subtree): the book is frozen and a
    reassignment plan computed; at most one open handover per staff member."""
    handover = handovers.start(session, get_runtime(request).recorder, body, caller)
    response.headers["Location"] = f"{handovers.HANDOVERS_PATH}/{handover.id}"
    return _out(session, handover)


@router.get("/handovers", response_model=Page[HandoverSummary])
def list_handovers(
    caller: CurrentCaller,
    session: SessionDep,
    status_: Annotated[str | None, Query(alias="status", pattern="^(open|completed)$")] = None,
    staff_id: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[HandoverSummary]:
    """Handovers of the caller's subtree (their own for staff without a reading role), newest
    first."""
    rows, total = handovers.list_handovers(session, caller, status_, staff_id, limit, offset)
    items = [HandoverSummary.model_validate(h) for h in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/handovers/{handover_id}", response_model=HandoverOut)
def get_handover(handover_id: str, caller: CurrentCaller, session: SessionDep) -> HandoverOut:
    """A handover with its customers, their findings and the plan, and what blocks approval."""
    return _out(session, handovers.load(session, handover_id, caller))


@router.post("/handovers/{handover_id}/audits", response_model=HandoverCustomerOut)
def post_audit(
    handover_id: str, body: AuditIn, caller: CurrentCaller, session: SessionDep
) -> HandoverCustomerOut:
    """An auditor's finding for one customer (clear, or an issue with its remedy)."""
    return HandoverCustomerOut.model_validate(handovers.audit(session, handover_id, body, caller))


@router.post("/handovers/{handover_id}/plan", response_model=HandoverOut)
def post_plan(handover_id: str, caller: CurrentCaller, session: SessionDep) -> HandoverOut:
    """Compute the reassignment plan again (admins, heads of the subtree)."""
    return _out(session, handovers.replan(session, handover_id, caller))


@router.post("/handovers/{handover_id}/approve", response_model=HandoverOut)
def approve_handover(
    handover_id: str,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    body: ApproveIn | None = None,
) -> HandoverOut:
    """Move every customer to its receiver (409 listing the customers unless all are audited
    clear and have one); approving again resumes an approval stopped half-way."""
    recorder = get_runtime(request).recorder
    handover = handovers.approve(session, recorder, handover_id, body or ApproveIn(), caller)
    return _out(session, handover)


@router.post("/spot-checks", status_code=status.HTTP_201_CREATED, response_model=SpotCheckOut)
def post_spot_check(
    body: SpotCheckIn, caller: CurrentCaller, session: SessionDep, response: Response
) -> SpotCheckOut:
    """Draw a sample of a staff member's book for an auditor of their subtree."""
    check = handovers.spot_check(session, body, caller)
    response.headers["Location"] = f"/api/v1/spot-checks/{check.id}"
    return _spot_check_out(*handovers.load_spot_check(session, check.id, caller))


@router.get("/spot-checks/{check_id}", response_model=SpotCheckOut)
def get_spot_check(check_id: str, caller: CurrentCaller, session: SessionDep) -> SpotCheckOut:
    return _spot_check_out(*handovers.load_spot_check(session, check_id, caller))


def _spot_check_out(check: SpotCheck, customer_ids: list[str]) -> SpotCheckOut:
    return SpotCheckOut(
        id=check.id,
        staff_id=check.staff_id,
        mode=check.mode,
        size=check.size,
        auditor=check.auditor,
        created_at=check.created_at,
        customer_ids=customer_ids,
    )
