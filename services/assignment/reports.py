"""Reports of the assignment service, read with Core selects (no ORM objects per row), aggregated
and paged in SQL:

- 附件3 存量客户1对N维护责任表: each owned stock customer with its maintainer, post, figures and
  how responsibility was set, and per org unit and line the 1对N assignment rate;
- a manager's book summary: counts by tier, exact balance totals;
- 分层维护人员名单 (seed 004): per org unit and wealth layer, the staff who maintain its customers.

Administrators read everything; heads, auditors and credit approvers their org subtree; the
others no report (their own book summary excepted).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, func, select
from sqlalchemy.orm import Session, aliased

from crmkit.auth import ROLE_ADMIN, Caller
from crmkit.clock import BUSINESS_TZ, business_today
from crmkit.csvout import BOM
from crmkit.csvout import csv_cell as kit_csv_cell
from crmkit.db import in_subtree, one_of
from crmkit.errors import Forbidden
from services.assignment import access
from services.assignment.models import CustomerProfile, OrgUnit, Ownership, Staff, customer_refs
from services.assignment.models_teams import TeamMember
from services.assignment.schemas_reports import (
    BASIS_LABELS,
    POST_LABELS,
    BookSummary,
    LayerMaintainer,
    MaintainerList,
    MaintainersReport,
    Post,
    ResponsibilityBasis,
    ResponsibilityReport,
    ResponsibilityRow,
    ResponsibilitySummary,
    StaffRef,
    TeamMemberRef,
)

BATCH_ROWS = 2000
FIRST_RESPONSIBLE = "first_responsible"
NONE_KEY = "none"
WEALTH_LAYERS: dict[str, str] = {  # seed 004 l.11
    "layer_1": "200万以上",
    "layer_2": "20万-200万",
    "layer_3": "10万-20万",
    "layer_4": "5万-10万",
}
_MARKETED = frozenset({"marketed", "claimed"})
_RATE_PLACES = Decimal("0.0001")

refs = customer_refs.c
customer_unit = aliased(OrgUnit, name="customer_unit")
staff_unit = aliased(OrgUnit, name="staff_unit")


# -- scope --------------------------------------------------------------------------------------
def report_scope(caller: Caller, org_unit: str | None) -> str | None:
    """The subtree the caller's report covers (None: everything, administrators only)."""
    admin = caller.has_role(ROLE_ADMIN)
    if not admin and not caller.has_role(*access.READERS):
        raise Forbidden(
            "reports are read by administrators and the heads, auditors and credit approvers "
            "of a subtree"
        )
    if org_unit is None:
        return None if admin else caller.org_unit.rstrip("/") or "/"
    scope = org_unit.rstrip("/") or "/"
    if not access.may_read(caller, scope):
        raise Forbidden(f"{scope} is outside your scope")
    return scope


def _within(column: Any, scope: str | None) -> ColumnElement[bool] | None:
    if scope is None or scope == "/":
        return None
    return in_subtree(column, scope)


def _stock_filter(scope: str | None, business_line: str | None) -> list[ColumnElement[bool]]:
    """Stock customers of the scope that are not closed, of the line if given."""
    where: list[ColumnElement[bool]] = [
        # No profile: a stock customer the events gave no tiers or segment yet (see handlers).
        func.coalesce(CustomerProfile.segment, "stock") == "stock",
        refs.status != "closed",
    ]
    within = _within(refs.org_unit, scope)
    if within is not None:
        where.append(within)
    if business_line is not None:
        where.append(refs.business_line == business_line)
    return where


_OPEN_SPAN = and_(Ownership.customer_id == refs.customer_id, Ownership.ended_at.is_(None))


# -- posts --------------------------------------------------------------------------------------
def post_of(roles: Sequence[str], unit_type: str | None) -> Post:
    """附件3's post of a maintainer: the highest of their roles; a president at a county union
    sits on the union's leadership 联社班子成员, elsewhere heads a business unit."""
    held = set(roles)
    if "head_office_leader" in held:
        return Post.head_office_leader
    if "branch_president" in held and unit_type == "county_union":
        return Post.union_leadership
    if held & {"branch_president", "outlet_head"}:
        return Post.unit_head
    for role, post in (
        ("wealth_manager", Post.wealth_manager),
        ("customer_manager", Post.customer_manager),
        ("lobby_manager", Post.lobby_manager),
        ("teller", Post.teller),
    ):
        if role in held:
            return post
    return Post.other


def basis_of(reason: str, post: Post) -> ResponsibilityBasis:
    if reason in _MARKETED:
        return ResponsibilityBasis.marketed
    if post is Post.teller:
        return ResponsibilityBasis.teller
    return ResponsibilityBasis.designated


# -- 附件3 存量客户1对N维护责任表 ----------------------------------------------------------------
def _responsibility_query(scope: str | None, business_line: str | None) -> Select[Any]:
    return (
        select(
            refs.org_unit,
            customer_unit.name.label("org_unit_name"),
            Ownership.staff_id,
            Staff.name.label("staff_name"),
            Staff.org_unit.label("staff_org_unit"),
            Staff.roles,
            staff_unit.type.label("staff_unit_type"),
            refs.business_line,
            refs.customer_id,
            refs.name.label("customer_name"),
            refs.kind,
            CustomerProfile.value_tier,
            CustomerProfile.credit_grade,
            CustomerProfile.credit_limit,
            CustomerProfile.credit_limit_expires_on,
            CustomerProfile.deposits,
            CustomerProfile.loans,
            CustomerProfile.business_date,
            CustomerProfile.market_segment,
            Ownership.reason,
            Ownership.started_at,
        )
        .select_from(customer_refs)
        .outerjoin(CustomerProfile, CustomerProfile.customer_id == refs.customer_id)
        .join(Ownership, _OPEN_SPAN)
        .join(Staff, Staff.id == Ownership.staff_id)
        .outerjoin(customer_unit, customer_unit.path == refs.org_unit)
        .outerjoin(staff_unit, staff_unit.path == Staff.org_unit)
        .where(*_stock_filter(scope, business_line))
        .order_by(refs.org_unit, Ownership.staff_id, refs.customer_id)
    )


def credit_limit_in_force(
    amount: Decimal | None, expires_on: date | None, today: date
) -> Decimal | None:
    """The kept limit while in force: past its last day it is shown as none, even before the
    rating service's ``credit_limit.expired`` arrives."""
    if amount is None or (expires_on is not None and expires_on < today):
        return None
    return amount


def _teams(session: Session, customer_ids: Sequence[str]) -> dict[str, list[TeamMemberRef]]:
    """The serving teams of a page of customers, beside their owners (one query)."""
    teams: dict[str, list[TeamMemberRef]] = defaultdict(list)
    if not customer_ids:
        return teams
    rows = session.execute(
        select(TeamMember.customer_id, TeamMember.staff_id, Staff.name, TeamMember.role)
        .join(Staff, Staff.id == TeamMember.staff_id)
        .where(
            one_of(session, TeamMember.customer_id, list(customer_ids)),
            TeamMember.role != FIRST_RESPONSIBLE,  # the owner has a column of its own
        )
        .order_by(TeamMember.customer_id, TeamMember.role, TeamMember.staff_id)
    )
    for customer_id, staff_id, name, role in rows:
        teams[customer_id].append(TeamMemberRef(staff_id=staff_id, name=name, role=role))
    return teams


def _responsibility_rows(
    session: Session, rows: Sequence[Row[Any]], today: date
) -> list[ResponsibilityRow]:
    teams = _teams(session, [row.customer_id for row in rows])
    return [_responsibility_row(row, today, teams.get(row.customer_id, [])) for row in rows]


def _responsibility_row(row: Row[Any], today: date, team: list[TeamMemberRef]) -> ResponsibilityRow:
    post = post_of(row.roles or [], row.staff_unit_type)
    basis = basis_of(row.reason, post)
    started: datetime = row.started_at
    owner = StaffRef(staff_id=row.staff_id, name=row.staff_name)
    return ResponsibilityRow(
        org_unit=row.org_unit,
        org_unit_name=row.org_unit_name,
        maintainer_id=row.staff_id,
        maintainer_name=row.staff_name,
        maintainer_org_unit=row.staff_org_unit,
        post=post,
        post_label=POST_LABELS[post],
        business_line=row.business_line,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        customer_kind=row.kind,
        value_tier=row.value_tier,
        credit_rating=row.credit_grade,
        credit_limit=credit_limit_in_force(row.credit_limit, row.credit_limit_expires_on, today),
        deposit_balance=row.deposits,
        loan_balance=row.loans,
        figures_as_of=row.business_date,
        market_segment=row.market_segment,
        responsibility_basis=basis,
        responsibility_basis_label=BASIS_LABELS[basis],
        ownership_reason=row.reason,
        first_responsible=owner,
        team_members=team,
        effective_date=started.astimezone(BUSINESS_TZ).date(),
    )


def _rate(owned: int, unowned: int) -> Decimal | None:
    whole = owned + unowned
    if whole == 0:
        return None
    return (Decimal(owned) / Decimal(whole)).quantize(_RATE_PLACES)


def _summary(
    session: Session, scope: str | None, business_line: str | None
) -> list[ResponsibilitySummary]:
    owned = func.count(Ownership.id)
    rows = session.execute(
        select(refs.org_unit, refs.business_line, owned, func.count() - owned)
        .select_from(customer_refs)
        .outerjoin(CustomerProfile, CustomerProfile.customer_id == refs.customer_id)
        .outerjoin(Ownership, _OPEN_SPAN)
        .where(*_stock_filter(scope, business_line))
        .group_by(refs.org_unit, refs.business_line)
        .order_by(refs.org_unit, refs.business_line)
    ).all()
    return [
        ResponsibilitySummary(
            org_unit=unit,
            business_line=line,
            owned=int(have),
            unowned=int(lack),
            assignment_rate=_rate(int(have), int(lack)),
        )
        for unit, line, have, lack in rows
    ]


def responsibility_report(
    session: Session,
    caller: Caller,
    org_unit: str | None,
    business_line: str | None,
    limit: int,
    offset: int,
) -> ResponsibilityReport:
    scope = report_scope(caller, org_unit)
    summary = _summary(session, scope, business_line)
    owned = sum(s.owned for s in summary)
    unowned = sum(s.unowned for s in summary)
    query = _responsibility_query(scope, business_line).limit(limit).offset(offset)
    today = business_today()
    items = _responsibility_rows(session, session.execute(query).all(), today)
    return ResponsibilityReport(
        items=items,
        total=owned,
        limit=limit,
        offset=offset,
        as_of=today,
        summary=summary,
        total_summary=ResponsibilitySummary(
            org_unit=scope or "/",
            business_line=business_line or "all",
            owned=owned,
            unowned=unowned,
            assignment_rate=_rate(owned, unowned),
        ),
    )


RESPONSIBILITY_COLUMNS: list[tuple[str, str]] = [
    ("org_unit", "org_unit (机构)"),
    ("org_unit_name", "org_unit_name (机构名称)"),
    ("maintainer_name", "maintainer_name (维护责任人)"),
    ("maintainer_id", "maintainer_id (员工号)"),
    ("post_label", "post (岗位)"),
    ("business_line", "business_line (条线)"),
    ("customer_name", "customer_name (客户名称)"),
    ("customer_id", "customer_id (客户号)"),
    ("customer_kind", "customer_kind (客户类型)"),
    ("value_tier", "value_tier (客户价值)"),
    ("credit_rating", "credit_rating (信用等级)"),
    ("credit_limit", "credit_limit (授信额度)"),
    ("deposit_balance", "deposit_balance (存款余额)"),
    ("loan_balance", "loan_balance (贷款余额)"),
    ("market_segment", "market_segment (客户经营信息)"),
    ("responsibility_basis_label", "responsibility_basis (责任确定方式)"),
    ("first_responsible", "first_responsible (第一负责人)"),
    ("team_members", "team_members (团队成员)"),
    ("effective_date", "effective_date (生效日期)"),
]


def responsibility_csv(
    session: Session, caller: Caller, org_unit: str | None, business_line: str | None
) -> Iterator[bytes]:
    """Every row of the report as CSV chunks; the caller is checked before the first byte."""
    scope = report_scope(caller, org_unit)
    return _responsibility_chunks(session, _responsibility_query(scope, business_line))


def _responsibility_chunks(session: Session, query: Select[Any]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([label for _, label in RESPONSIBILITY_COLUMNS])
    yield (BOM + buffer.getvalue()).encode("utf-8")
    today = business_today()
    result = session.execute(query.execution_options(yield_per=BATCH_ROWS))
    for batch in result.partitions():
        buffer.seek(0)
        buffer.truncate()
        for line in _responsibility_rows(session, batch, today):
            writer.writerow([csv_cell(getattr(line, name)) for name, _ in RESPONSIBILITY_COLUMNS])
        yield buffer.getvalue().encode("utf-8")


# -- a manager's book ---------------------------------------------------------------------------
def book_summary(session: Session, staff: Staff) -> BookSummary:
    """Counts by value tier, wealth layer and VIP level, and exact deposit / loan totals (summed
    in SQL: Money is exact on both backends)."""
    rows = session.execute(
        select(
            CustomerProfile.value_tier,
            CustomerProfile.wealth_layer,
            CustomerProfile.vip_level,
            func.count(),
            func.count(CustomerProfile.business_date),
            func.sum(CustomerProfile.deposits),
            func.sum(CustomerProfile.loans),
        )
        .select_from(Ownership)
        .outerjoin(CustomerProfile, CustomerProfile.customer_id == Ownership.customer_id)
        .where(Ownership.staff_id == staff.id, Ownership.ended_at.is_(None))
        .group_by(
            CustomerProfile.value_tier, CustomerProfile.wealth_layer, CustomerProfile.vip_level
        )
    ).all()
    tiers: dict[str, int] = defaultdict(int)
    layers: dict[str, int] = defaultdict(int)
    vips: dict[str, int] = defaultdict(int)
    customers = with_figures = 0
    deposits = loans = Decimal("0.00")
    for tier, layer, vip, count, figured, deposit_sum, loan_sum in rows:
        tiers[tier or NONE_KEY] += count
        layers[layer or NONE_KEY] += count
        vips[vip or NONE_KEY] += count
        customers += count
        with_figures += figured
        deposits += deposit_sum or Decimal("0.00")
        loans += loan_sum or Decimal("0.00")
    return BookSummary(
        staff_id=staff.id,
        name=staff.name,
        org_unit=staff.org_unit,
        customers=customers,
        by_value_tier=dict(sorted(tiers.items())),
        by_wealth_layer=dict(sorted(layers.items())),
        by_vip_level=dict(sorted(vips.items())),
        deposits_total=deposits,
        loans_total=loans,
        without_figures=customers - with_figures,
    )


# -- 分层维护人员名单 ----------------------------------------------------------------------------
def maintainers_report(session: Session, caller: Caller, org_unit: str | None) -> MaintainersReport:
    """Per org unit (the customers') and wealth layer, the owners of its customers with their
    counts, the most customers first."""
    scope = report_scope(caller, org_unit)
    where: list[ColumnElement[bool]] = [
        refs.status != "closed",
        CustomerProfile.wealth_layer.in_(list(WEALTH_LAYERS)),
    ]
    within = _within(refs.org_unit, scope)
    if within is not None:
        where.append(within)
    counts = (
        select(
            refs.org_unit.label("org_unit"),
            CustomerProfile.wealth_layer.label("wealth_layer"),
            Ownership.staff_id.label("staff_id"),
            func.count().label("customers"),
        )
        .select_from(customer_refs)
        .join(CustomerProfile, CustomerProfile.customer_id == refs.customer_id)
        .join(Ownership, _OPEN_SPAN)
        .where(*where)
        .group_by(refs.org_unit, CustomerProfile.wealth_layer, Ownership.staff_id)
        .subquery()
    )
    # Staff's JSON roles cannot be grouped on PostgreSQL: joined to the counts afterwards.
    rows = session.execute(
        select(
            counts.c.org_unit,
            customer_unit.name,
            counts.c.wealth_layer,
            counts.c.staff_id,
            Staff.name,
            Staff.roles,
            staff_unit.type,
            counts.c.customers,
        )
        .select_from(counts)
        .join(Staff, Staff.id == counts.c.staff_id)
        .outerjoin(customer_unit, customer_unit.path == counts.c.org_unit)
        .outerjoin(staff_unit, staff_unit.path == Staff.org_unit)
        .order_by(
            counts.c.org_unit,
            counts.c.wealth_layer,
            counts.c.customers.desc(),
            counts.c.staff_id,
        )
    ).all()
    lists: dict[tuple[str, str], MaintainerList] = {}
    for unit, unit_name, layer, staff_id, name, roles, unit_type, customers in rows:
        entry = lists.get((unit, layer))
        if entry is None:
            entry = lists[(unit, layer)] = MaintainerList(
                org_unit=unit,
                org_unit_name=unit_name,
                wealth_layer=layer,
                wealth_layer_label=WEALTH_LAYERS[layer],
                customers=0,
                maintainers=[],
            )
        post = post_of(roles or [], unit_type)
        entry.customers += int(customers)
        entry.maintainers.append(
            LayerMaintainer(
                staff_id=staff_id,
                name=name,
                roles=list(roles or []),
                post=post,
                post_label=POST_LABELS[post],
                customers=int(customers),
            )
        )
    return MaintainersReport(as_of=business_today(), items=list(lists.values()))


MAINTAINER_COLUMNS: list[str] = [
    "org_unit (机构)",
    "org_unit_name (机构名称)",
    "wealth_layer (财富层级)",
    "wealth_layer_label (层级标准)",
    "staff_id (员工号)",
    "name (维护人员)",
    "post (岗位)",
    "roles (角色)",
    "customers (客户数)",
]


def maintainers_csv(report: MaintainersReport) -> str:
    """The maintainer lists as CSV: one row per org unit, layer and maintainer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MAINTAINER_COLUMNS)
    for entry in report.items:
        for person in entry.maintainers:
            writer.writerow(
                [
                    csv_cell(value)
                    for value in (
                        entry.org_unit,
                        entry.org_unit_name,
                        entry.wealth_layer,
                        entry.wealth_layer_label,
                        person.staff_id,
                        person.name,
                        person.post_label,
                        " ".join(person.roles),
                        person.customers,
                    )
                ]
            )
    return BOM + buffer.getvalue()


# -- CSV cells ----------------------------------------------------------------------------------
def csv_cell(value: object) -> str:
    """A cell of these reports: a staff reference as "name (id)", a team member as "name (id,
    role)", a list of them joined by "; ", the rest as the kit writes it."""
    if isinstance(value, list):
        return "; ".join(csv_cell(v) for v in value)
    if isinstance(value, TeamMemberRef):
        value = f"{value.name} ({value.staff_id}, {value.role})"
    elif isinstance(value, StaffRef):
        value = f"{value.name} ({value.staff_id})"
    return kit_csv_cell(value)
