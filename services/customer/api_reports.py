"""Routes of the customer reports: the segmentation statistics (附件1, 附件2) and the customer
register 客户名册表, as JSON or as CSV for Excel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from crmkit.auth import CurrentCaller
from crmkit.csvout import CSV_MEDIA_TYPE, CSV_RESPONSE
from crmkit.http import SessionDep
from crmkit.schemas import Page, ReportFormat
from services.customer import reports, reports_csv, reports_register
from services.customer.context import CustomerContext
from services.customer.domain import business_today
from services.customer.schemas import Segment
from services.customer.schemas_reports import (
    GroupBy,
    RegisterRow,
    SegmentationReport,
)
from services.customer.tier_policy import TierPolicyBook

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

REFUSED = {"description": "The caller's role reads no customers (a teller, a client system)"}


def get_policies(request: Request) -> TierPolicyBook:
    """The tier policy book the service loaded at start (the one that tiers the customers)."""
    context: CustomerContext = request.app.state.customer_context
    return context.policies


PoliciesDep = Annotated[TierPolicyBook, Depends(get_policies)]
OrgUnitQuery = Annotated[
    str | None,
    Query(
        pattern=r"^/[A-Za-z0-9_/-]*$",
        description="Only this org subtree (within the caller's scope), e.g. /HQ/U01",
    ),
]
FormatQuery = Annotated[ReportFormat, Query(alias="format")]


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


SEGMENTATION_DESCRIPTION = """
附件1 存量客户细分统计表 (segment=stock) and 附件2 目标客户细分统计表 (segment=target): per group
(each customer's own org unit, or its responsible manager with `unassigned` for none), per customer
class 公司类 / 个人类 / 三农类 (the customer's business line: corporate / personal / agricultural)
and value tier 高端 / 中端 / 一般 (`unrated` without a snapshot): customer count, deposit and loan
balances of the newest snapshots, and deposit, loan and fee-business 中间业务 customer counts, with
totals 合计 per class, per group and overall. The header carries the as-of date and the thresholds
of the tier policy in force.

Only customers the caller may read are counted; merged, erased and closed records are left out.
Invalid customers 无效客户 (below the policy's balance line) are counted in `invalid_count` only.

The target report adds: other banks' customers 他行存量客户 (targets whose `data_source` starts
with `other_bank`), willing to establish a credit relationship (`null`: not recorded yet, it comes
with the rating service's willingness flag) and information collected (identity, mobile phone and
an address on record; count and percentage).

`format=csv`: one row per group, class and tier, then the class, group and overall totals.
"""


@router.get(
    "/segmentation",
    response_model=SegmentationReport,
    summary="Segmentation statistics 客户细分统计表 (附件1 stock, 附件2 target)",
    description=SEGMENTATION_DESCRIPTION,
    responses={200: CSV_RESPONSE, 403: REFUSED},
)
def segmentation(
    caller: CurrentCaller,
    session: SessionDep,
    policies: PoliciesDep,
    segment: Segment,
    org_unit: OrgUnitQuery = None,
    group_by: GroupBy = GroupBy.org_unit,
    format_: FormatQuery = ReportFormat.json,
) -> SegmentationReport | Response:
    report = reports.segmentation_report(session, caller, policies, segment, group_by, org_unit)
    if format_ is ReportFormat.json:
        return report
    return Response(
        content=reports_csv.segmentation_csv(report).encode("utf-8"),
        media_type=CSV_MEDIA_TYPE,
        headers=_attachment(f"segmentation-{segment.value}-{report.header.as_of}.csv"),
    )


REGISTER_DESCRIPTION = """
客户名册表 (seed 001): name, address (the first on record), contact (the mobile phone, masked),
deposits and loans (newest snapshot, with its business date; null without one), relationship
evaluation, cooperation direction, importance with its review date and archive number, plus the
customer id, kind, segment, status, org unit and responsible manager (owner).

Only customers the caller may read; merged and erased records are left out. `owner` keeps the
customers a staff member owns or serves as a team member (their book). Ordered by org unit, name
and id. JSON is paginated (`limit`, `offset`, `total`); `format=csv` streams every row in scope
and ignores `limit` and `offset`.
"""


@router.get(
    "/register",
    response_model=Page[RegisterRow],
    summary="Customer register 客户名册表",
    description=REGISTER_DESCRIPTION,
    responses={200: CSV_RESPONSE, 403: REFUSED},
)
def register(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgUnitQuery = None,
    owner: Annotated[str | None, Query(max_length=100, description="Staff id")] = None,
    segment: Segment | None = None,
    format_: FormatQuery = ReportFormat.json,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[RegisterRow] | Response:
    flt = reports_register.RegisterFilter(org_unit=org_unit, owner=owner, segment=segment)
    if format_ is ReportFormat.json:
        return reports_register.register_page(session, caller, flt, limit, offset)
    # The request's session stays open until the response is sent (the dependency's teardown
    # runs after it), so the rows are read from the database as the stream is written.
    return StreamingResponse(
        reports_register.register_csv(session, caller, flt),
        media_type=CSV_MEDIA_TYPE,
        headers=_attachment(f"register-{business_today()}.csv"),
    )
