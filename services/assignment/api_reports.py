"""Routes of the reports of the assignment service: 附件3 存量客户1对N维护责任表, a manager's book
summary and the per-layer maintainer lists 分层维护人员名单, as JSON or CSV for Excel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from crmkit.auth import CurrentCaller
from crmkit.clock import business_today
from crmkit.csvout import CSV_MEDIA_TYPE, CSV_RESPONSE
from crmkit.http import SessionDep
from crmkit.schemas import ReportFormat
from services.assignment import reports, service
from services.assignment.schemas import BusinessLine
from services.assignment.schemas_reports import (
    BookSummary,
    MaintainersReport,
    ResponsibilityReport,
)

router = APIRouter(prefix="/api/v1", tags=["reports"])

REFUSED = {"description": "The caller reads no reports, or the org unit is outside their scope"}

OrgUnitQuery = Annotated[
    str | None,
    Query(
        pattern=r"^/[A-Za-z0-9_./-]*$",
        max_length=200,
        description="Only this org subtree (within the caller's scope), e.g. /HQ/U01",
    ),
]
FormatQuery = Annotated[ReportFormat, Query(alias="format")]


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


RESPONSIBILITY_DESCRIPTION = """
附件3 存量客户1对N维护责任表: one row per owned stock customer (not closed) of the caller's
subtree, ordered by org unit, owner and customer: the customer's org unit, the responsible
maintainer 维护责任人 and their post (from their roles: 客户经理 / 综合柜员 / 营业单位负责人 /
总行领导 / 联社班子成员 …), the customer's line, name, id, kind and value tier, credit
rating and limit (null: not published by the rating service yet), deposit and loan balances
(latest core-banking figures), market segment 客户经营信息, how responsibility was set
(`marketed` 谁营销谁维护 for marketed or claimed customers, `teller` when a teller holds it,
else `designated` by tier and relationship; `ownership_reason` is the span's own reason), the
第一负责人 (the owner), team members (always empty until teams are reported) and the effective
date (Asia/Shanghai).

`summary`: per org unit and line, the customers owned and those without an owner, and the 1对N
assignment rate owned / (owned + unowned); `total_summary` over the whole scope.

Administrators read everything; branch presidents, outlet heads, auditors and credit approvers
their subtree (`org_unit` narrows it); others get 403. `format=csv` streams every row in scope
and ignores `limit` and `offset`.
"""


@router.get(
    "/reports/responsibility",
    response_model=ResponsibilityReport,
    summary="附件3 存量客户1对N维护责任表 (stock-customer 1-to-N maintenance responsibility)",
    description=RESPONSIBILITY_DESCRIPTION,
    responses={200: CSV_RESPONSE, 403: REFUSED},
)
def responsibility(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgUnitQuery = None,
    business_line: BusinessLine | None = None,
    format_: FormatQuery = ReportFormat.json,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ResponsibilityReport | Response:
    line = business_line.value if business_line else None
    if format_ is ReportFormat.json:
        return reports.responsibility_report(session, caller, org_unit, line, limit, offset)
    # The request's session stays open until the response is sent: rows stream from the database.
    return StreamingResponse(
        reports.responsibility_csv(session, caller, org_unit, line),
        media_type=CSV_MEDIA_TYPE,
        headers=_attachment(f"responsibility-{business_today()}.csv"),
    )


@router.get(
    "/staff/{staff_id}/book/summary",
    response_model=BookSummary,
    summary="A manager's book: counts by tier and exact balance totals",
    responses={404: {"description": "No such staff member in the caller's scope"}},
)
def book_summary(staff_id: str, caller: CurrentCaller, session: SessionDep) -> BookSummary:
    """The customers a staff member owns now, counted by value tier, wealth layer and VIP level
    (`none`: not set), with deposit and loan totals of their latest figures. Read by the staff
    member, administrators and the heads, auditors and credit approvers of their subtree."""
    staff = service.load_staff(session, staff_id, caller)
    return reports.book_summary(session, staff)


MAINTAINERS_DESCRIPTION = """
分层维护人员名单 (seed 004): per org unit (the customers') and wealth layer (`layer_1` 200万以上 …
`layer_4` 5万-10万), the staff who own customers of that layer now, with their roles, post and
customer counts (the most first). Customers without a wealth layer or closed are left out.
Scoped like the responsibility report; `format=csv` gives one row per unit, layer and maintainer.
"""


@router.get(
    "/reports/maintainers",
    response_model=MaintainersReport,
    summary="分层维护人员名单 (per-layer maintainer lists)",
    description=MAINTAINERS_DESCRIPTION,
    responses={200: CSV_RESPONSE, 403: REFUSED},
)
def maintainers(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgUnitQuery = None,
    format_: FormatQuery = ReportFormat.json,
) -> MaintainersReport | Response:
    report = reports.maintainers_report(session, caller, org_unit)
    if format_ is ReportFormat.json:
        return report
    return Response(
        content=reports.maintainers_csv(report).encode("utf-8"),
        media_type=CSV_MEDIA_TYPE,
        headers=_attachment(f"maintainers-{report.as_of}.csv"),
    )
