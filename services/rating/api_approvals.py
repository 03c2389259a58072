"""Routes: Review, decision and the credit committee 审议审批; the printed forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from crmkit.auth import CurrentCaller
from crmkit.errors import NotFound
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page
from services.rating import approvals, committee, forms
from services.rating.models import CreditLimit
from services.rating.models_committee import CommitteeMeeting
from services.rating.schemas_approvals import (
    CommitteeIn,
    CommitteeOut,
    FormFormat,
    FormName,
    LimitApprovalOut,
    LimitApproveIn,
    NextStep,
    RejectIn,
    ReviewIn,
    SignOffIn,
    StepOut,
    VoteIn,
    VoteOut,
)

router = APIRouter(prefix="/api/v1", tags=["approvals"])

_FORM_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {
            "text/html": {"schema": {"type": "string"}},
            forms.PDF_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "The form as a printable A4 HTML page, or as a PDF",
    }
}


def committee_view(session: Session, meeting: CommitteeMeeting) -> CommitteeOut:
    votes = committee.votes_of(session, meeting.id)
    return CommitteeOut(
        id=meeting.id,
        chair=meeting.chair,
        members=list(meeting.members),
        status=meeting.status,
        opened_by=meeting.opened_by,
        opened_at=meeting.opened_at,
        votes=[VoteOut.model_validate(v) for v in votes],
        votes_for=sum(v.vote == "for" for v in votes),
        votes_against=sum(v.vote == "against" for v in votes),
        votes_abstain=sum(v.vote == "abstain" for v in votes),
        minutes=meeting.minutes,
        decision=meeting.decision,
        signed_by=meeting.signed_by,
        signed_at=meeting.signed_at,
    )


def limit_view(session: Session, limit: CreditLimit) -> LimitApprovalOut:
    meeting = committee.meeting_of(session, limit.id)
    waiting = approvals.next_step(limit)
    return LimitApprovalOut(
        id=limit.id,
        customer_id=limit.customer_id,
        kind=limit.kind,
        org_unit=limit.org_unit,
        grade=limit.grade,
        total_amount=limit.total_amount,
        term_months=limit.term_months,
        status=limit.status,
        next_step=NextStep(waiting) if waiting else None,
        step_due_at=limit.step_due_at,
        proposed_by=limit.proposed_by,
        proposed_at=limit.proposed_at,
        reviewed_by=limit.reviewed_by,
        reviewed_at=limit.reviewed_at,
        review_opinion=limit.review_opinion,
        decided_by=limit.decided_by,
        decided_at=limit.decided_at,
        decision_note=limit.decision_note,
        by_committee=meeting is not None and meeting.decision is not None,
        start_date=limit.start_date,
        expiry_date=limit.expiry_date,
        version=limit.version,
        committee=committee_view(session, meeting) if meeting is not None else None,
    )


@router.post("/credit-limits/{credit_limit_id}/review", response_model=LimitApprovalOut)
def review_limit(
    credit_limit_id: str,
    body: ReviewIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> LimitApprovalOut:
    """Review a proposed limit 审查 (an approver of the customer's subtree, not its proposer).
    It then waits for an approver within authority, or for the credit committee when the
    authority matrix sends it there (above the committee line, or a grade it names)."""
    limit = approvals.review(
        session,
        get_runtime(request).recorder,
        credit_limit_id,
        body.opinion,
        body.recommendation.value,
        caller,
    )
    return limit_view(session, limit)


@router.post("/credit-limits/{credit_limit_id}/approve", response_model=LimitApprovalOut)
def approve_limit(
    credit_limit_id: str,
    body: LimitApproveIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> LimitApprovalOut:
    """Approve a reviewed limit 审批: neither its proposer nor its reviewer, within your
    authority (403 naming it otherwise); a limit for the committee answers 409. The limit is in
    force from today's business date for its term; the customer's earlier limit is superseded."""
    limit = approvals.approve(
        session, get_runtime(request).recorder, credit_limit_id, body.note, caller
    )
    return limit_view(session, limit)


@router.post("/credit-limits/{credit_limit_id}/reject", response_model=LimitApprovalOut)
def reject_limit(
    credit_limit_id: str,
    body: RejectIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> LimitApprovalOut:
    """Reject a reviewed limit, with the reason; the same people may reject as may approve."""
    limit = approvals.reject(
        session, get_runtime(request).recorder, credit_limit_id, body.reason, caller
    )
    return limit_view(session, limit)


@router.post(
    "/credit-limits/{credit_limit_id}/committee",
    response_model=CommitteeOut,
    status_code=status.HTTP_201_CREATED,
)
def open_committee(
    credit_limit_id: str,
    body: CommitteeIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> CommitteeOut:
    """Open the credit committee's meeting 贷审会 on a limit referred to it, naming its members
    (role credit_committee) and chair; an approver of the customer's subtree or an
    administrator, never the proposer, who may not sit either."""
    meeting = committee.open_meeting(
        session, get_runtime(request).recorder, credit_limit_id, body.members, body.chair, caller
    )
    return committee_view(session, meeting)


@router.get("/credit-limits/{credit_limit_id}/committee", response_model=CommitteeOut)
def get_committee(credit_limit_id: str, caller: CurrentCaller, session: SessionDep) -> CommitteeOut:
    """The committee's meeting on a limit: members, votes, tally and minutes."""
    approvals.readable_limit(session, credit_limit_id, caller)
    meeting = committee.meeting_of(session, credit_limit_id)
    if meeting is None:
        raise NotFound(f"no committee meeting was opened on credit limit {credit_limit_id}")
    return committee_view(session, meeting)


@router.post(
    "/credit-limits/{credit_limit_id}/committee/votes",
    response_model=CommitteeOut,
    status_code=status.HTTP_201_CREATED,
)
def vote(
    credit_limit_id: str, body: VoteIn, caller: CurrentCaller, session: SessionDep, request: Request
) -> CommitteeOut:
    """A named member's vote (for, against, abstain) with their opinion; once each."""
    meeting = committee.vote(
        session,
        get_runtime(request).recorder,
        credit_limit_id,
        body.vote.value,
        body.opinion,
        caller,
    )
    return committee_view(session, meeting)


@router.post("/credit-limits/{credit_limit_id}/committee/sign-off", response_model=LimitApprovalOut)
def sign_off(
    credit_limit_id: str,
    body: SignOffIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> LimitApprovalOut:
    """The chair signs the minutes off: with a quorum the votes decide (approved with at least
    two thirds of the votes cast for, else rejected); without one, 409 naming what is missing."""
    limit = committee.sign_off(
        session, get_runtime(request).recorder, credit_limit_id, body.minutes, caller
    )
    return limit_view(session, limit)


@router.get("/credit-limits/{credit_limit_id}/steps", response_model=Page[StepOut])
def list_steps(
    credit_limit_id: str,
    caller: CurrentCaller,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[StepOut]:
    """The recorded steps of a limit, in order: who did what, when, by when it was due and
    whether it was late (``late:<step>`` rows: the sweep found the step past its deadline)."""
    rows, total = approvals.list_steps(session, credit_limit_id, caller, limit, offset)
    return Page(
        items=[StepOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/credit-limits/{credit_limit_id}/forms/{form}",
    response_class=Response,
    responses=_FORM_RESPONSES,
)
def print_form(
    credit_limit_id: str,
    form: FormName,
    caller: CurrentCaller,
    session: SessionDep,
    format_: Annotated[FormFormat | None, Query(alias="format")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """One of the limit's three forms — ``assessment`` 客户信用等级评估表, ``calculation``
    客户授信额度测算表, ``approval`` 客户授信额度审议审批表 (its heading by customer kind) — as
    HTML (the default) or PDF (``format=pdf``, or ``Accept: application/pdf``)."""
    credit_limit = approvals.readable_limit(session, credit_limit_id, caller)
    document = forms.build_form(session, credit_limit, form)
    wanted = format_ or (
        FormFormat.pdf if accept and forms.PDF_MEDIA_TYPE in accept else FormFormat.html
    )
    if wanted is FormFormat.pdf:
        return Response(
            forms.render_pdf(document),
            media_type=forms.PDF_MEDIA_TYPE,
            headers={
                "Content-Disposition": f'inline; filename="{form.value}-{credit_limit.id}.pdf"'
            },
        )
    return HTMLResponse(forms.render_html(document))
