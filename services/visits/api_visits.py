"""Routes: Visit records, pre-visit and service plans, enquiries and appointments, and the visit
record report (附件5)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from crmkit.auth import CurrentCaller
from crmkit.clock import business_today
from crmkit.csvout import CSV_MEDIA_TYPE, CSV_RESPONSE
from crmkit.http import SessionDep, get_runtime
from crmkit.schemas import Page, ReportFormat
from services.visits import records
from services.visits.schemas_visits import (
    AppointmentIn,
    AppointmentOut,
    EnquiryAnswerIn,
    EnquiryIn,
    EnquiryOut,
    EnquiryStatus,
    ServicePlanIn,
    ServicePlanOut,
    VisitDetail,
    VisitIn,
    VisitOut,
    VisitPlanDetail,
    VisitPlanIn,
    VisitPlanOut,
    VisitReport,
)

router = APIRouter(prefix="/api/v1", tags=["visits"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]
FromQuery = Annotated[
    date | None, Query(alias="from", description="From this business date (included)")
]
ToQuery = Annotated[date | None, Query(alias="to", description="To this business date (included)")]
OrgUnitQuery = Annotated[
    str | None,
    Query(
        pattern=r"^/[A-Za-z0-9_./-]*$",
        max_length=200,
        description="Only this org subtree, e.g. /HQ/U01",
    ),
]
REFUSED = {"description": "The caller may not do this for the customer; the detail says why"}
UNKNOWN = {"description": "No such record, or no such customer known here"}


# -- visit records ------------------------------------------------------------------------------
@router.post(
    "/visits",
    status_code=status.HTTP_201_CREATED,
    response_model=VisitDetail,
    responses={403: REFUSED, 404: UNKNOWN, 409: {"description": "The record is corrected already"}},
)
def post_visit(
    body: VisitIn, caller: CurrentCaller, session: SessionDep, request: Request, response: Response
) -> VisitDetail:
    """Record a contact with a customer 客户经理拜访记录 (附件5), or correct one: ``corrects`` names
    the current version of the record, ``correction_reason`` why. Records are never changed or
    deleted. The customer's owner or serving team, or a head of its subtree, records; the
    recorder is among the participants unless a head. Publishes ``visit.recorded``."""
    visit = records.record_visit(session, get_runtime(request).recorder, body, caller)
    response.headers["Location"] = f"/api/v1/visits/{visit.id}"
    return visit


@router.get("/visits", response_model=Page[VisitOut])
def list_visits(
    caller: CurrentCaller,
    session: SessionDep,
    customer_id: str | None = None,
    staff_id: Annotated[
        str | None, Query(description="Visits this staff member took part in")
    ] = None,
    org_unit: OrgUnitQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[VisitOut]:
    """The current version of each visit the caller reads, the latest first: staff those of the
    customers they own or serve, heads their subtree's (the customer's current unit),
    auditors and administrators all."""
    items, total = records.list_visits(
        session,
        caller,
        customer_id=customer_id,
        staff_id=staff_id,
        org_unit=org_unit,
        start=from_,
        end=to,
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/visits/{visit_id}", response_model=VisitDetail, responses={403: REFUSED, 404: UNKNOWN}
)
def get_visit(visit_id: str, caller: CurrentCaller, session: SessionDep) -> VisitDetail:
    """The current version of the contact (any of its versions' ids finds it), with the earlier
    versions as its history."""
    return records.read_visit(session, caller, visit_id)


@router.get(
    "/customers/{customer_id}/visits",
    response_model=Page[VisitOut],
    responses={403: REFUSED, 404: UNKNOWN},
)
def list_customer_visits(
    customer_id: str,
    caller: CurrentCaller,
    session: SessionDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[VisitOut]:
    """A customer's visits (current versions), the latest first."""
    items, total = records.customer_visits(session, caller, customer_id, limit, offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


# -- pre-visit plans ----------------------------------------------------------------------------
@router.post(
    "/visit-plans",
    status_code=status.HTTP_201_CREATED,
    response_model=VisitPlanDetail,
    responses={403: REFUSED, 404: UNKNOWN},
)
def post_visit_plan(
    body: VisitPlanIn, caller: CurrentCaller, session: SessionDep, response: Response
) -> VisitPlanDetail:
    """Plan a visit (seed 001 访问计划): participants and roles, timing, method, questions,
    materials, the customer's needs and likely questions. Answers with the customer's previous
    visit."""
    plan = records.create_plan(session, body, caller)
    response.headers["Location"] = f"/api/v1/visit-plans/{plan.id}"
    return plan


@router.get("/visit-plans", response_model=Page[VisitPlanOut])
def list_visit_plans(
    caller: CurrentCaller,
    session: SessionDep,
    customer_id: str | None = None,
    planned_by: str | None = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[VisitPlanOut]:
    """The pre-visit plans the caller reads (scoped as visits), the earliest planned first."""
    items, total = records.list_plans(
        session,
        caller,
        customer_id=customer_id,
        planned_by=planned_by,
        start=from_,
        end=to,
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/visit-plans/{plan_id}",
    response_model=VisitPlanDetail,
    responses={403: REFUSED, 404: UNKNOWN},
)
def get_visit_plan(plan_id: str, caller: CurrentCaller, session: SessionDep) -> VisitPlanDetail:
    """The plan with the customer's previous visit before the planned time (as the seed asks:
    参考前次访问的记录) and the visits that carried it out."""
    return records.read_plan(session, caller, plan_id)


# -- service plans ------------------------------------------------------------------------------
@router.post(
    "/service-plans",
    status_code=status.HTTP_201_CREATED,
    response_model=ServicePlanOut,
    responses={
        403: REFUSED,
        404: UNKNOWN,
        422: {
            "description": "Not an important high-end customer, or a member who does not serve it"
        },
    },
)
def post_service_plan(
    body: ServicePlanIn, caller: CurrentCaller, session: SessionDep, response: Response
) -> ServicePlanOut:
    """A yearly service plan for an important high-end customer (value tier high, wealth layer
    1, VIP platinum or diamond, or of high importance by its owner): goals, planned contacts,
    products, the team members responsible (each serving the customer). By the owner, the
    serving team or a head; a new plan for the same year is its next revision."""
    plan = records.create_service_plan(session, body, caller)
    response.headers["Location"] = f"/api/v1/service-plans/{plan.id}"
    return plan


@router.get("/service-plans", response_model=Page[ServicePlanOut])
def list_service_plans(
    caller: CurrentCaller,
    session: SessionDep,
    customer_id: str | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[ServicePlanOut]:
    """The current revision of each service plan the caller reads (scoped as visits)."""
    items, total = records.list_service_plans(
        session, caller, customer_id=customer_id, year=year, limit=limit, offset=offset
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/service-plans/{plan_id}",
    response_model=ServicePlanOut,
    responses={403: REFUSED, 404: UNKNOWN},
)
def get_service_plan(plan_id: str, caller: CurrentCaller, session: SessionDep) -> ServicePlanOut:
    """One revision of a service plan; ``current`` says whether a later one replaced it."""
    return records.read_service_plan(session, caller, plan_id)


# -- enquiries ----------------------------------------------------------------------------------
@router.post(
    "/enquiries",
    status_code=status.HTTP_201_CREATED,
    response_model=EnquiryOut,
    responses={403: REFUSED, 404: UNKNOWN},
)
def post_enquiry(
    body: EnquiryIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    response: Response,
) -> EnquiryOut:
    """Log a customer's enquiry 咨询; it is to be answered by the business date the enquiry
    policy sets (2 business days after the day received). Publishes ``enquiry.recorded``."""
    enquiry = records.record_enquiry(session, get_runtime(request).recorder, body, caller)
    response.headers["Location"] = f"/api/v1/enquiries/{enquiry.id}"
    return enquiry


@router.get("/enquiries", response_model=Page[EnquiryOut])
def list_enquiries(
    caller: CurrentCaller,
    session: SessionDep,
    customer_id: str | None = None,
    assigned_to: str | None = None,
    status_: Annotated[EnquiryStatus | None, Query(alias="status")] = None,
    late: Annotated[
        bool | None,
        Query(description="true: answered after the due date or open past it; false: the others"),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[EnquiryOut]:
    """The enquiries the caller reads (scoped as visits), the earliest due first."""
    items, total = records.list_enquiries(
        session,
        caller,
        customer_id=customer_id,
        assigned_to=assigned_to,
        status=status_,
        late=late,
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/enquiries/{enquiry_id}", response_model=EnquiryOut, responses={403: REFUSED, 404: UNKNOWN}
)
def get_enquiry(enquiry_id: str, caller: CurrentCaller, session: SessionDep) -> EnquiryOut:
    return records.read_enquiry(session, caller, enquiry_id)


@router.post(
    "/enquiries/{enquiry_id}/answer",
    response_model=EnquiryOut,
    responses={403: REFUSED, 404: UNKNOWN, 409: {"description": "Answered already"}},
)
def answer_enquiry(
    enquiry_id: str,
    body: EnquiryAnswerIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
) -> EnquiryOut:
    """Answer an open enquiry (once), by those who record for the customer; ``late`` says
    whether it was answered after its due date. Publishes ``enquiry.answered``."""
    return records.answer_enquiry(session, get_runtime(request).recorder, enquiry_id, body, caller)


# -- appointments -------------------------------------------------------------------------------
@router.post(
    "/appointments",
    status_code=status.HTTP_201_CREATED,
    response_model=AppointmentOut,
    responses={
        403: REFUSED,
        404: UNKNOWN,
        409: {"description": "The staff member has an appointment at that time"},
        422: {
            "description": "The customer's financial assets are under 1,000,000.00 (rule "
            "appointments.min_aum), or the time has passed"
        },
    },
)
def post_appointment(
    body: AppointmentIn,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    response: Response,
) -> AppointmentOut:
    """Book an appointment 预约 for a customer with financial assets of at least 1,000,000.00 on
    its latest business date (seed 000: 预约员 for 金融资产百万元以上的优质客户), with the caller
    or a staff member serving it. Publishes ``appointment.booked``."""
    appointment = records.book_appointment(session, get_runtime(request).recorder, body, caller)
    response.headers["Location"] = f"/api/v1/appointments/{appointment.id}"
    return AppointmentOut.model_validate(appointment)


@router.get("/appointments", response_model=Page[AppointmentOut])
def list_appointments(
    caller: CurrentCaller,
    session: SessionDep,
    customer_id: str | None = None,
    staff_id: str | None = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AppointmentOut]:
    """The appointments the caller reads (scoped as visits), the earliest first."""
    rows, total = records.list_appointments(
        session,
        caller,
        customer_id=customer_id,
        staff_id=staff_id,
        start=from_,
        end=to,
        limit=limit,
        offset=offset,
    )
    items = [AppointmentOut.model_validate(a) for a in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/appointments/{appointment_id}",
    response_model=AppointmentOut,
    responses={403: REFUSED, 404: UNKNOWN},
)
def get_appointment(
    appointment_id: str, caller: CurrentCaller, session: SessionDep
) -> AppointmentOut:
    return AppointmentOut.model_validate(records.read_appointment(session, caller, appointment_id))


# -- the visit record report (附件5) ------------------------------------------------------------
REPORT_DESCRIPTION = """
附件5 客户经理拜访记录表: the current version of each visit recorded in the org subtree in the
period (business dates, both included; by default the caller's unit and the current month to
date), ordered by org unit (the customer's when recorded) and time: date and time, customer,
visit type, channel, participants and their roles, purpose and what was agreed, satisfaction,
the customer's comments, needs and problems found, information and materials given,
opportunities, the product followed up, the agreed next contact and its participants, who
recorded it and when, its revision and the record it corrects.

Administrators, auditors and the heads of the subtree read it; others get 403. `format=csv`
streams every row (UTF-8 with a byte-order mark, English headers with the Chinese term) and
ignores `limit` and `offset`.
"""


@router.get(
    "/reports/visits",
    response_model=VisitReport,
    summary="附件5 客户经理拜访记录表 (visit records by org unit and period)",
    description=REPORT_DESCRIPTION,
    tags=["reports"],
    responses={200: CSV_RESPONSE, 403: REFUSED},
)
def visit_report(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgUnitQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    format_: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.json,
    limit: Limit = 100,
    offset: Offset = 0,
) -> VisitReport | Response:
    if format_ is ReportFormat.json:
        return records.visit_report(session, caller, org_unit, from_, to, limit, offset)
    # The request's session stays open until the response is sent: rows stream from the database.
    return StreamingResponse(
        records.visit_report_csv(session, caller, org_unit, from_, to),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="visits-{business_today()}.csv"'},
    )
