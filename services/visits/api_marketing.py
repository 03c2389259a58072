"""Routes: The teller identification register and marketing events."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from crmkit.auth import CurrentCaller
from crmkit.crypto import FieldCipher
from crmkit.csvout import CSV_MEDIA_TYPE, CSV_RESPONSE
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page, ReportFormat
from services.visits import marketing, register
from services.visits.schemas_marketing import (
    AttendanceIn,
    InviteesIn,
    InviteResult,
    MarketingEventDetail,
    MarketingEventIn,
    MarketingEventOut,
    OrgPath,
    OutcomeIn,
    OutcomeOut,
    RegisterReport,
    ResultIn,
    TellerLeadIn,
    TellerLeadOut,
    TellerRevealIn,
    TellerRevealOut,
)
from services.visits.settings import VisitsSettings

router = APIRouter(prefix="/api/v1", tags=["marketing"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]
From = Annotated[date | None, Query(alias="from", description="First business date")]
To = Annotated[date | None, Query(alias="to", description="Last business date")]
CSV_LIMIT = 50_000


def _cipher(request: Request) -> FieldCipher:
    settings = get_runtime(request).settings
    assert isinstance(settings, VisitsSettings)  # the visits service's runtime
    return register.register_cipher(settings)


CipherDep = Annotated[FieldCipher, Depends(_cipher)]


# -- the teller register ------------------------------------------------------------------------
@router.post(
    "/leads",
    status_code=status.HTTP_201_CREATED,
    response_model=TellerLeadOut,
    tags=["teller register"],
    summary="Flag a promising walk-in customer 柜员识别客户 (附件6); publishes lead.identified",
)
def post_lead(
    body: TellerLeadIn,
    caller: CurrentCaller,
    session: SessionDep,
    cipher: CipherDep,
    response: Response,
) -> TellerLeadOut:
    """Tellers, lobby managers and other front-line staff record at their outlet what they saw;
    the identity number and phone are stored encrypted and shown masked. The entry becomes a
    target-list entry in the assignment service (its manager: ``referred_to``)."""
    lead = register.identify(session, cipher, body, caller)
    response.headers["Location"] = f"{register.LEADS_PATH}/{lead.id}"
    return register.out(lead, caller)


@router.get("/leads", response_model=Page[TellerLeadOut], tags=["teller register"])
def list_leads(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgPath | None = None,
    date_from: From = None,
    date_to: To = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[TellerLeadOut]:
    """Register entries, newest first: staff read those they recorded and those referred to
    them, heads their subtree's, auditors and administrators all."""
    rows, total = register.list_leads(
        session,
        caller,
        org_unit=org_unit,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        offset=offset,
    )
    return Page(
        items=[register.out(x, caller) for x in rows], total=total, limit=limit, offset=offset
    )


@router.get("/leads/{lead_id}", response_model=TellerLeadOut, tags=["teller register"])
def get_lead(lead_id: str, caller: CurrentCaller, session: SessionDep) -> TellerLeadOut:
    return register.out(register.load(session, lead_id, caller), caller)


@router.post("/leads/{lead_id}/result", response_model=TellerLeadOut, tags=["teller register"])
def post_result(
    lead_id: str, body: ResultIn, caller: CurrentCaller, session: SessionDep
) -> TellerLeadOut:
    """The follow-up result 跟进结果, by the manager referred to or a head of the outlet."""
    return register.out(register.record_result(session, lead_id, body, caller), caller)


@router.post(
    "/leads/{lead_id}/reveal",
    response_model=TellerRevealOut,
    tags=["teller register"],
    summary="The identity number or phone in clear, with a reason; every reveal is audited",
)
def reveal(
    lead_id: str,
    body: TellerRevealIn,
    caller: CurrentCaller,
    session: SessionDep,
    cipher: CipherDep,
) -> TellerRevealOut:
    """For the manager referred to, the heads of the outlet's subtree and administrators."""
    value, audit_id = register.reveal(session, cipher, lead_id, body.field, body.reason, caller)
    return TellerRevealOut(lead_id=lead_id, field=body.field.value, value=value, audit_id=audit_id)


@router.get(
    "/reports/teller-register",
    response_model=RegisterReport,
    tags=["reports"],
    summary="附件6 柜员识别客户登记表 (teller customer-identification register)",
    responses={200: CSV_RESPONSE},
)
def teller_register(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgPath | None = None,
    date_from: From = None,
    date_to: To = None,
    format_: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.json,
    limit: Limit = 100,
    offset: Offset = 0,
) -> RegisterReport | Response:
    """The entries of ``org_unit``'s subtree (the caller's unit by default) flagged from
    ``from`` (the first of the month) to ``to`` (today): date, outlet, teller, customer, masked
    identity number and phone, business and amount, why, preliminary value, referred to and the
    follow-up result, with the period's counts. Heads of the unit, auditors and administrators
    read it. ``format=csv`` gives every row and ignores ``limit`` and ``offset``."""
    unit, start, end = register.report_scope(caller, org_unit, date_from, date_to)
    csv = format_ is ReportFormat.csv
    rows, total = register.list_leads(
        session,
        caller,
        org_unit=unit,
        date_from=start,
        date_to=end,
        limit=CSV_LIMIT if csv else limit,
        offset=0 if csv else offset,
    )
    items = register.register_rows(rows)
    if csv:
        return Response(
            content=register.to_csv(items).encode("utf-8"),
            media_type=CSV_MEDIA_TYPE,
            headers={
                "Content-Disposition": 'attachment; filename="teller-register.csv"',
                "X-Total-Count": str(total),
            },
        )
    return RegisterReport(
        org_unit=unit,
        date_from=start,
        date_to=end,
        summary=register.summary(session, unit, start, end),
        items=items,
        total=total,
        limit=limit,
        offset=offset,
    )


# -- marketing events ---------------------------------------------------------------------------
@router.post(
    "/marketing-events",
    status_code=status.HTTP_201_CREATED,
    response_model=MarketingEventOut,
    summary="Organise a marketing event 营销活动 (salon, customer gathering, high-end activity)",
)
def post_event(
    body: MarketingEventIn, caller: CurrentCaller, session: SessionDep, response: Response
) -> MarketingEventOut:
    """By a head or front-line staff member of the unit (the caller's unit by default)."""
    event = marketing.create_event(session, body, caller)
    response.headers["Location"] = f"{marketing.EVENTS_PATH}/{event.id}"
    return MarketingEventOut.model_validate(event)


@router.get("/marketing-events", response_model=Page[MarketingEventOut])
def list_events(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgPath | None = None,
    date_from: From = None,
    date_to: To = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[MarketingEventOut]:
    """Events of the caller's subtree and of the units above it, latest first."""
    rows, total = marketing.list_events(
        session,
        caller,
        org_unit=org_unit,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        offset=offset,
    )
    return Page(
        items=[MarketingEventOut.model_validate(e) for e in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/marketing-events/{event_id}", response_model=MarketingEventDetail)
def get_event(event_id: str, caller: CurrentCaller, session: SessionDep) -> MarketingEventDetail:
    """The event with its invitees, attendance, outcomes, and counts: attendance rate, and
    the attendees with a lead or a sale (conversion)."""
    return marketing.detail(session, marketing.load_event(session, event_id, caller))


@router.post("/marketing-events/{event_id}/invitees", response_model=InviteResult)
def post_invitees(
    event_id: str, body: InviteesIn, caller: CurrentCaller, session: SessionDep
) -> InviteResult:
    """Invite customers you own or serve (heads: their subtree's); each new invitee is
    published as ``marketing_event.invited`` for the notify service to send."""
    return marketing.invite(session, event_id, body, caller)


@router.post("/marketing-events/{event_id}/attendance", response_model=MarketingEventDetail)
def post_attendance(
    event_id: str, body: AttendanceIn, caller: CurrentCaller, session: SessionDep
) -> MarketingEventDetail:
    """Whether an invitee came (the organiser, heads of the unit, the customer's staff)."""
    invitee = marketing.record_attendance(session, event_id, body, caller)
    return marketing.detail(session, marketing.load_event(session, invitee.event_id, caller))


@router.post(
    "/marketing-events/{event_id}/outcomes",
    status_code=status.HTTP_201_CREATED,
    response_model=OutcomeOut,
)
def post_outcome(
    event_id: str, body: OutcomeIn, caller: CurrentCaller, session: SessionDep
) -> OutcomeOut:
    """A lead or a sale that followed the event, for an invitee who attended (409 otherwise)."""
    return OutcomeOut.model_validate(marketing.record_outcome(session, event_id, body, caller))
