"""Routes: Risk flags and the watch list 风险预警."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from crmkit.auth import CurrentCaller
from crmkit.clock import business_today
from crmkit.csvout import BOM, CSV_MEDIA_TYPE, CSV_RESPONSE, csv_cell
from crmkit.http import SessionDep
from crmkit.schemas import Page, ReportFormat
from services.rating import risk
from services.rating.schemas_risk import (
    WATCH_COLUMNS,
    CustomerRiskOut,
    FlagStatus,
    RiskClearIn,
    RiskFlagIn,
    RiskFlagOut,
    RiskLevel,
    RiskStatus,
    WatchEntry,
)

router = APIRouter(prefix="/api/v1", tags=["risk"])

FLAGS_PATH = "/api/v1/risk-flags"
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]
OrgUnitQuery = Annotated[
    str | None,
    Query(
        pattern=r"^/[A-Za-z0-9_./-]*$",
        max_length=200,
        description="Only this org subtree (within the caller's scope), e.g. /HQ/U01",
    ),
]
FormatQuery = Annotated[ReportFormat, Query(alias="format")]


@router.post(
    "/risk-flags",
    status_code=status.HTTP_201_CREATED,
    response_model=RiskFlagOut,
    responses={403: {"description": "The caller may not flag this customer"}},
)
def post_flag(
    body: RiskFlagIn, caller: CurrentCaller, session: SessionDep, response: Response
) -> RiskFlagOut:
    """Flag a customer as a risk by hand (its owner or serving managers, risk and
    internal-control staff and approvers of its subtree, administrators). Records
    ``risk.flagged``: the assignment service then requires a team for the customer."""
    flag = risk.flag_by_hand(session, caller, body.customer_id, body.level, body.reason)
    response.headers["Location"] = f"{FLAGS_PATH}/{flag.id}"
    return RiskFlagOut.model_validate(flag)


@router.get("/risk-flags", response_model=Page[RiskFlagOut])
def list_flags(
    caller: CurrentCaller,
    session: SessionDep,
    customer_id: str | None = None,
    status_: Annotated[FlagStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[RiskFlagOut]:
    """Flags, newest first: of one customer (``customer_id``, for those who may read it), or of
    every customer in the caller's scope."""
    rows, total = risk.list_flags(session, caller, customer_id, status_, limit, offset)
    return Page(
        items=[RiskFlagOut.model_validate(f) for f in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/risk-flags/{flag_id}", response_model=RiskFlagOut)
def get_flag(flag_id: str, caller: CurrentCaller, session: SessionDep) -> RiskFlagOut:
    return RiskFlagOut.model_validate(risk.load_flag(session, caller, flag_id))


@router.post(
    "/risk-flags/{flag_id}/clear",
    response_model=RiskFlagOut,
    responses={409: {"description": "The flag was cleared already"}},
)
def clear_flag(
    flag_id: str, body: RiskClearIn, caller: CurrentCaller, session: SessionDep
) -> RiskFlagOut:
    """Clear an open flag by hand, with the reason. Who may flag the customer may clear, except
    that a customer manager clears only the flags they raised. An overdue flag cleared while the
    customer is still overdue comes back only at a more serious level or after the overdue was
    repaid once; a drop or downgrade flag only with a new drop or downgrade. Records
    ``risk.cleared``."""
    return RiskFlagOut.model_validate(risk.clear_by_hand(session, caller, flag_id, body.reason))


@router.get("/customers/{customer_id}/risk", response_model=CustomerRiskOut)
def get_customer_risk(
    customer_id: str, caller: CurrentCaller, session: SessionDep
) -> CustomerRiskOut:
    """The customer's risk status (the most serious open flag) and its open flags."""
    unit, state, flags = risk.customer_risk(session, caller, customer_id)
    return CustomerRiskOut(
        customer_id=customer_id,
        org_unit=unit,
        status=RiskStatus(state.status) if state is not None else RiskStatus.none,
        since=state.since if state is not None else None,
        open_flags=[RiskFlagOut.model_validate(f) for f in flags],
    )


WATCHLIST_DESCRIPTION = """
The watch list 风险客户名单: customers with at least one open risk flag, most serious first, then
longest at their level, with their most serious level, the signals of their open flags, their
owner and since when. Administrators and auditors read every customer; risk, internal-control,
approving and committee staff their subtree; customer managers the customers they own or serve;
others get 403. `org_unit` narrows it (403 for a subtree reader outside their subtree); `level`
keeps the customers whose most serious level is exactly it. `format=csv` gives every row in scope
and ignores `limit` and `offset`.
"""


@router.get(
    "/risk-watchlist",
    response_model=Page[WatchEntry],
    summary="The watch list 风险客户名单 per org unit",
    description=WATCHLIST_DESCRIPTION,
    responses={200: CSV_RESPONSE, 403: {"description": "The caller reads no watch list here"}},
)
def get_watchlist(
    caller: CurrentCaller,
    session: SessionDep,
    org_unit: OrgUnitQuery = None,
    level: RiskLevel | None = None,
    format_: FormatQuery = ReportFormat.json,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[WatchEntry] | Response:
    if format_ is ReportFormat.csv:
        rows, _ = risk.watchlist(session, caller, org_unit, level, None)
        filename = f"risk-watchlist-{business_today()}.csv"
        return Response(
            _watchlist_csv(rows),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    rows, total = risk.watchlist(session, caller, org_unit, level, limit, offset)
    return Page(
        items=[WatchEntry.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def _watchlist_csv(rows: list[risk.WatchRow]) -> str:
    """The watch list for Excel: UTF-8 with a byte-order mark, one row per customer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([header for _, header in WATCH_COLUMNS])
    for row in rows:
        writer.writerow([csv_cell(getattr(row, name)) for name, _ in WATCH_COLUMNS])
    return BOM + buffer.getvalue()
