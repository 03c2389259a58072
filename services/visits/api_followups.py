"""Routes: Next contacts due, overdue lists, daily agendas, day plans and activity."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from crmkit.auth import CurrentCaller
from crmkit.clock import business_today
from crmkit.csvout import CSV_MEDIA_TYPE, CSV_RESPONSE
from crmkit.http import SessionDep
from crmkit.schemas import ReportFormat
from services.visits import agenda, workday
from services.visits.schemas_followups import (
    ActivityPeriod,
    ActivityReport,
    Agenda,
    CareOut,
    CarePatch,
    DayPlanIn,
    DayPlanOut,
    OverdueReport,
)

router = APIRouter(prefix="/api/v1", tags=["follow-ups"])

OrgUnitQuery = Annotated[
    str | None,
    Query(
        pattern=r"^/[A-Za-z0-9_./-]*$",
        max_length=200,
        description="Only this org subtree (within the caller's scope), e.g. /HQ/U01",
    ),
]
StaffPath = Annotated[str, Path(min_length=1, max_length=100)]
REFUSED = {"description": "Not the caller's to read or change; the problem says why"}


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


@router.get(
    "/customers/{customer_id}/care",
    response_model=CareOut,
    summary="A customer's follow-up state: plan, last contact, next contact due",
    responses={403: REFUSED, 404: {"description": "No such customer known here"}},
)
def get_care(customer_id: str, caller: CurrentCaller, session: SessionDep) -> CareOut:
    """The plan that applies to the customer's tiers and importance, its last contact and the
    next contact due with the reason (``cycle``, ``post_sale``, ``risk``, ``event``) and the
    policy version it was derived by. Read by those who read the customer."""
    return agenda.read_care(session, caller, customer_id)


@router.patch(
    "/customers/{customer_id}/care",
    response_model=CareOut,
    summary="Set the owner's assessment of the customer's importance",
    responses={403: REFUSED, 404: {"description": "No such customer known here"}},
)
def patch_care(
    customer_id: str, body: CarePatch, caller: CurrentCaller, session: SessionDep
) -> CareOut:
    """``importance`` high / normal / low scales the plan's interval (high: half, low: one and
    a half); the next contact due is derived again at once. Set by the customer's owner or
    serving team, heads of its subtree and administrators. The change holds this one field, so
    it names no version: the last assessment stands."""
    return agenda.set_importance(session, caller, customer_id, body)


@router.get(
    "/followups/overdue",
    response_model=OverdueReport,
    summary="Customers whose next contact is overdue, by branch and manager",
    responses={403: REFUSED},
)
def get_overdue(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgUnitQuery = None,
    owner: Annotated[str | None, Query(max_length=100, description="Only this owner's")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> OverdueReport:
    """Customers (not closed) whose next contact was due before today's business date, by org
    unit, owner (those without an owner first) and due date, with the days overdue; ``groups``
    counts them per branch and manager over the whole scope. A staff member reads their own;
    heads their subtree; auditors and administrators everything."""
    return agenda.overdue(session, caller, org_unit, owner, limit, offset)


@router.get(
    "/staff/{staff_id}/agenda",
    response_model=Agenda,
    summary="A manager's agenda for a day 日工作报告: the customers due, most important first",
    responses={403: REFUSED},
)
def get_agenda(
    staff_id: StaffPath,
    caller: CurrentCaller,
    session: SessionDep,
    day: Annotated[date | None, Query(alias="date", description="Default: today")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The customers the staff member owns whose next contact is due on or before the date,
    ordered by a score of the plan's weight for their tiers, the importance, the days overdue,
    open complaints, the risk status, a credit limit ending within 30 days and the reason
    beyond the cycle (each part in ``score_parts``; the weights are policy). With the day's
    recorded activity, whether the day plan is saved, and the holidays ahead to greet for.
    Read by the staff member; heads of a subtree where they hold customers (those customers
    only); auditors and administrators."""
    built = agenda.agenda(session, caller, staff_id, day or business_today(), limit, offset)
    # Validated once when built: sent as it is rather than checked again field by field.
    return Response(built.model_dump_json(), media_type="application/json")


@router.put(
    "/staff/{staff_id}/day-plans/{plan_date}",
    response_model=DayPlanOut,
    summary="Save the day's plan (primary, secondary, minor) and the evening review",
    responses={
        403: REFUSED,
        409: {"description": "The version in the body is stale, or saved concurrently"},
        412: {"description": "The If-Match version is stale"},
        428: {"description": "Replacing a saved plan without naming the version read"},
    },
)
def put_day_plan(
    staff_id: StaffPath,
    plan_date: date,
    body: DayPlanIn,
    caller: CurrentCaller,
    session: SessionDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> DayPlanOut:
    """The whole plan of the day, saved by the staff member themselves: the first, second and
    minor tasks (a customer id or a free task each, marked done as the day goes) and the
    evening review (the actual counts and notes). The first save creates it; replacing it
    names the version read (``If-Match`` or ``version``)."""
    plan = workday.save_day_plan(session, caller, staff_id, plan_date, body, if_match)
    _etag(response, plan.version)
    return plan


@router.get(
    "/staff/{staff_id}/day-plans/{plan_date}",
    response_model=DayPlanOut,
    summary="A day's plan and evening review, with the activity recorded that day",
    responses={403: REFUSED, 404: {"description": "No plan saved for the day"}},
)
def get_day_plan(
    staff_id: StaffPath,
    plan_date: date,
    caller: CurrentCaller,
    session: SessionDep,
    response: Response,
) -> DayPlanOut:
    """Read by the staff member, the heads of the unit it was saved in, auditors and
    administrators."""
    plan = workday.read_day_plan(session, caller, staff_id, plan_date)
    _etag(response, plan.version)
    return plan


ACTIVITY_DESCRIPTION = """
Activity volume and output per employee 活动量和产出 for the weekly and monthly meetings (seed
004), over the day, the week (Monday to Sunday) or the month holding `date` (default today):
contacts recorded by them or with them present (the current version of each record) by
channel, customers contacted, due contacts of their book met (made on or after the policy's
window before the due date), their book and its customers overdue now, product opportunities
noted, the days with a saved day plan and an evening review, and the evening reviews' own counts
summed (`reported`). `total` sums the rows.

Heads read their subtree's staff (`org_unit` narrows it; only the subtree's customers count);
auditors and administrators everyone; a staff member their own row. `format=csv` gives the same
rows for Excel.
"""


@router.get(
    "/reports/activity",
    response_model=ActivityReport,
    summary="Activity volume and output per employee, by day, week or month",
    description=ACTIVITY_DESCRIPTION,
    responses={200: CSV_RESPONSE, 403: REFUSED},
)
def get_activity(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgUnitQuery = None,
    staff_id: Annotated[str | None, Query(max_length=100)] = None,
    period: ActivityPeriod = ActivityPeriod.week,
    day: Annotated[date | None, Query(alias="date")] = None,
    format_: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.json,
) -> ActivityReport | Response:
    report = workday.activity_report(
        session, caller, org_unit, staff_id, period, day or business_today()
    )
    if format_ is ReportFormat.json:
        return report
    return Response(
        content=workday.activity_csv(report).encode("utf-8"),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{workday.activity_filename(report)}"'
        },
    )
