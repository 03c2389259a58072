"""Customer reports: the segmentation statistics 客户细分统计表 of seed 000 (附件1 for stock
customers, 附件2 for target customers) and the customer register 客户名册表 of seed 001.

How the figures are counted, and why (the same text travels in each report's ``notes``):

- **Customer class 客户类别 is the customer's business line 业务条线**: corporate → 公司类,
  personal → 个人类, agricultural → 三农类. Seed 000 l.191 and l.219 name exactly three classes and
  give each to one line's department (公司银行部, 个人银行部, 三农金融部); every customer record
  carries its line. A fixed mapping of kinds was not chosen because the seed gives none for
  individual businesses 个体工商户 or institutions 机构客户: the line records where the bank
  placed each one.
- **Value tier** is the one stored on the customer, assessed from its newest snapshot under the
  tier policy in force on that snapshot's date; a customer without a snapshot is ``unrated``
  未评定. The header shows the thresholds in force on the as-of date and lists the policy versions
  the counted tiers were assessed under, so a reader sees when the two differ.
- **Balances** are those of each customer's newest snapshot; zero without one.
- **Invalid customers 无效客户** (balance below the policy's line, seed 004) are counted in
  ``invalid_count`` only and left out of every other figure, as the seed leaves them out of
  statistics.
- **Scope**: only customers the caller may read (:func:`access.readable`). Merged and erased
  records are never counted; closed records are left out of the statistics (they are no longer
  customers, nor prospects) but stay in the register, which shows their status.
- **Grouping**: by each customer's own org unit (no subtree subtotals), or by the responsible
  manager 第一责任人 (the ``owner`` role); team members are not counted again, and customers with
  no owner are grouped under ``unassigned``.
- **Other banks' customers 他行存量客户** (附件2): targets whose ``data_source`` starts with
  ``other_bank`` (for example ``other_bank: staff contact at the county branch of bank X``). This is
  the convention for recording a prospect gathered from another bank (seed 000 l.109, l.117).
- **Willing to establish a credit relationship** (附件2) is ``null``: no field of the customer
  record says it (free-text cooperation directions would be a guess); it comes with the rating
  service's willingness flag.
- **Information collected** (附件2): targets with an identity number (or credit code), a mobile
  phone and at least one address on record.

A caller whose roles read no customers (a teller, a client system) is refused with 403 rather
than shown an empty table, which would read as "no customers".
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from crmkit.auth import Caller
from crmkit.errors import Forbidden
from crmkit.schemas import Page
from services.customer import access
from services.customer.domain import business_today
from services.customer.models import Customer, FinancialSnapshot, Owner
from services.customer.schemas import Segment
from services.customer.schemas_reports import (
    CLASS_ZH,
    FIGURE_COLUMNS,
    REGISTER_COLUMNS,
    TARGET_COLUMNS,
    TIER_ZH,
    TITLES,
    ClassBlock,
    CustomerClass,
    Figures,
    GroupBlock,
    GroupBy,
    RegisterRow,
    SegmentationHeader,
    SegmentationReport,
    TargetFigures,
    TierBand,
    TierCell,
    TierColumn,
    TierThresholds,
)
from services.customer.tier_policy import (
    NoPolicyInForce,
    ProductUseType,
    TierPolicy,
    TierPolicyBook,
    ValueTierBands,
)

ZERO = Decimal("0")
CENT = Decimal("0.01")
UNASSIGNED = "unassigned"
OTHER_BANK_PREFIX = "other_bank"
BOM = "\ufeff"
# Rows fetched per round trip while tallying or streaming; memory stays flat for any scope.
BATCH_ROWS = 1000
STATISTICS_LEFT_OUT_STATUSES = ("closed",)

CLASS_OF_LINE: Mapping[str, CustomerClass] = {
    "corporate": CustomerClass.corporate,
    "personal": CustomerClass.personal,
    "agricultural": CustomerClass.agricultural,
}
NOTES = (
    "Customer class is the customer's business line: corporate → 公司类, personal → 个人类, "
    "agricultural → 三农类 (the three lines of seed 000 l.191, l.219).",
    "Value tiers are those stored on each customer, assessed from its newest snapshot under the "
    "policy in force on that snapshot's date; customers without a snapshot are unrated 未评定.",
    "Deposit and loan balances are those of each customer's newest snapshot; zero without one.",
    "Invalid customers 无效客户 (below the policy's balance line, seed 004) are counted in "
    "invalid_count only and left out of every other figure.",
    "Only customers the caller may read are counted; merged, erased and closed records are left "
    "out.",
)
GROUPING_NOTES: Mapping[GroupBy, str] = {
    GroupBy.org_unit: "Grouped by each customer's own org unit, without subtree subtotals.",
    GroupBy.manager: "Grouped by the responsible manager 第一责任人 (owner role); team members "
    "are not counted again; customers with no owner are grouped under 'unassigned'.",
}
TARGET_NOTES = (
    "Other banks' customers 他行存量客户: targets whose data_source starts with 'other_bank'.",
    "Willing to establish a credit relationship: not recorded yet (null); it comes with the "
    "rating service's willingness flag.",
    "Information collected: targets with an identity number or credit code, a mobile phone and "
    "at least one address.",
)


def ensure_may_read_reports(caller: Caller) -> None:
    """Reports count what the caller may read; a role that reads no customers is refused."""
    readers = access.SUBTREE_READERS | access.BOOK_HOLDERS
    if not (access.is_admin(caller) or caller.has_role(*readers)):
        raise Forbidden("your role reads no customer records, so it has no customer reports")


# -- queries ------------------------------------------------------------------------------------
def _in_scope(caller: Caller, org_unit: str | None) -> list[ColumnElement[bool]]:
    conditions = [
        access.readable(caller),
        Customer.merged_into.is_(None),
        Customer.erased_at.is_(None),
    ]
    if org_unit:
        scope = org_unit.rstrip("/")
        # Org paths may hold "_", a LIKE wildcard: escaped, the filter stays a path prefix.
        conditions.append(
            or_(
                Customer.org_unit == scope,
                Customer.org_unit.startswith(scope + "/", autoescape=True),
            )
        )
    return conditions


def _responsible_manager() -> Any:
    """The owner's staff id per customer; one value even if the read model ever held two."""
    return (
        select(func.min(Owner.staff_id))
        .where(Owner.customer_id == Customer.id, Owner.role == "owner")
        .correlate(Customer)
        .scalar_subquery()
    )


def _newest_snapshot() -> ColumnElement[bool]:
    """Join condition: a customer's snapshot of its newest business date (none: no row)."""
    history = aliased(FinancialSnapshot)
    newest = (
        select(func.max(history.business_date))
        .where(history.customer_id == Customer.id)
        .correlate(Customer)
        .scalar_subquery()
    )
    return and_(
        FinancialSnapshot.customer_id == Customer.id, FinancialSnapshot.business_date == newest
    )


# -- segmentation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerFacts:
    """What the segmentation statistics read about one customer."""

    group: str
    customer_class: CustomerClass
    value_tier: TierColumn
    invalid: bool
    product_use_types: frozenset[str]
    deposits: Decimal
    loans: Decimal
    other_bank: bool
    info_collected: bool
    policy_version: str | None


def is_other_bank(data_source: str | None) -> bool:
    """Whether a prospect was recorded as another bank's customer (the ``other_bank`` prefix)."""
    return data_source is not None and data_source.strip().lower().startswith(OTHER_BANK_PREFIX)


def first_address(addresses: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The text of the first address that has one."""
    for address in addresses or []:
        text = address.get("text")
        if text:
            return str(text)
    return None


def _segmentation_query(
    caller: Caller, segment: Segment, org_unit: str | None
) -> Select[tuple[Any, ...]]:
    return (
        select(
            Customer.org_unit,
            _responsible_manager().label("owner"),
            Customer.business_line,
            Customer.value_tier,
            Customer.invalid,
            Customer.product_use_types,
            Customer.tier_policy_version,
            Customer.data_source,
            Customer.identity_index.is_not(None).label("has_identity"),
            Customer.phone_masked.is_not(None).label("has_phone"),
            Customer.addresses,
            FinancialSnapshot.deposits,
            FinancialSnapshot.loans,
        )
        .select_from(Customer)
        .outerjoin(FinancialSnapshot, _newest_snapshot())
        .where(
            *_in_scope(caller, org_unit),
            Customer.segment == segment.value,
            Customer.status.not_in(STATISTICS_LEFT_OUT_STATUSES),
        )
    )


def segmentation_facts(
    session: Session, caller: Caller, segment: Segment, org_unit: str | None, group_by: GroupBy
) -> Iterator[CustomerFacts]:
    """The facts of every customer the statistics count, fetched in batches."""
    query = _segmentation_query(caller, segment, org_unit)
    for row in session.execute(query.execution_options(yield_per=BATCH_ROWS)):
        group = (row.owner or UNASSIGNED) if group_by is GroupBy.manager else row.org_unit
        yield CustomerFacts(
            group=group,
            customer_class=CLASS_OF_LINE[row.business_line],
            value_tier=TierColumn(row.value_tier) if row.value_tier else TierColumn.unrated,
            invalid=bool(row.invalid),
            product_use_types=frozenset(row.product_use_types or []),
            deposits=row.deposits if row.deposits is not None else ZERO,
            loans=row.loans if row.loans is not None else ZERO,
            other_bank=is_other_bank(row.data_source),
            info_collected=bool(row.has_identity and row.has_phone)
            and first_address(row.addresses) is not None,
            policy_version=row.tier_policy_version,
        )


@dataclass
class _Tally:
    """Running figures of one cell or total."""

    customers: int = 0
    deposits: Decimal = ZERO
    loans: Decimal = ZERO
    deposit_customers: int = 0
    loan_customers: int = 0
    fee_business_customers: int = 0
    other_bank_customers: int = 0
    info_collected: int = 0

    def count(self, facts: CustomerFacts) -> None:
        self.customers += 1
        self.deposits += facts.deposits
        self.loans += facts.loans
        self.deposit_customers += ProductUseType.deposit in facts.product_use_types
        self.loan_customers += ProductUseType.loan in facts.product_use_types
        self.fee_business_customers += ProductUseType.fee_business in facts.product_use_types
        self.other_bank_customers += facts.other_bank
        self.info_collected += facts.info_collected

    def absorb(self, other: _Tally) -> None:
        self.customers += other.customers
        self.deposits += other.deposits
        self.loans += other.loans
        self.deposit_customers += other.deposit_customers
        self.loan_customers += other.loan_customers
        self.fee_business_customers += other.fee_business_customers
        self.other_bank_customers += other.other_bank_customers
        self.info_collected += other.info_collected

    def figures(self, segment: Segment) -> dict[str, Any]:
        target = None
        if segment is Segment.target:
            target = TargetFigures(
                other_bank_customers=self.other_bank_customers,
                willing_to_establish_credit=None,
                info_collected=self.info_collected,
                info_collected_pct=percent(self.info_collected, self.customers),
            )
        return {
            "customers": self.customers,
            "deposits": self.deposits.quantize(CENT),
            "loans": self.loans.quantize(CENT),
            "deposit_customers": self.deposit_customers,
            "loan_customers": self.loan_customers,
            "fee_business_customers": self.fee_business_customers,
            "target": target,
        }


def percent(part: int, whole: int) -> str | None:
    """``part`` of ``whole`` in percent with 2 places (half up); None when ``whole`` is 0."""
    if whole == 0:
        return None
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(CENT, rounding=ROUND_HALF_UP))


@dataclass
class _GroupTally:
    cells: dict[tuple[CustomerClass, TierColumn], _Tally] = field(
        default_factory=lambda: defaultdict(_Tally)
    )
    invalid: dict[CustomerClass, int] = field(default_factory=lambda: defaultdict(int))


def _tally(facts: Iterable[CustomerFacts]) -> tuple[dict[str, _GroupTally], set[str]]:
    groups: dict[str, _GroupTally] = defaultdict(_GroupTally)
    versions: set[str] = set()
    for fact in facts:
        group = groups[fact.group]
        if fact.invalid:
            group.invalid[fact.customer_class] += 1
            continue
        group.cells[(fact.customer_class, fact.value_tier)].count(fact)
        if fact.policy_version:
            versions.add(fact.policy_version)
    return groups, versions


def _group_block(name: str, tally: _GroupTally, segment: Segment) -> tuple[GroupBlock, _Tally]:
    classes: list[ClassBlock] = []
    group_total = _Tally()
    for customer_class in CustomerClass:
        class_total = _Tally()
        cells: list[TierCell] = []
        for tier in TierColumn:
            cell = tally.cells.get((customer_class, tier), _Tally())
            class_total.absorb(cell)
            cells.append(
                TierCell(value_tier=tier, value_tier_zh=TIER_ZH[tier], **cell.figures(segment))
            )
        group_total.absorb(class_total)
        classes.append(
            ClassBlock(
                customer_class=customer_class,
                customer_class_zh=CLASS_ZH[customer_class],
                tiers=cells,
                total=Figures(**class_total.figures(segment)),
                invalid_count=tally.invalid.get(customer_class, 0),
            )
        )
    block = GroupBlock(
        group=name,
        classes=classes,
        total=Figures(**group_total.figures(segment)),
        invalid_count=sum(tally.invalid.values()),
    )
    return block, group_total


def _thresholds(bands: ValueTierBands) -> TierThresholds:
    return TierThresholds(
        high=TierBand(
            deposits_at_least=bands.high.deposits_at_least,
            loans_at_least=bands.high.loans_at_least,
        ),
        middle=TierBand(
            deposits_at_least=bands.middle.deposits_at_least,
            loans_at_least=bands.middle.loans_at_least,
        ),
    )


def _header(
    policies: TierPolicyBook,
    segment: Segment,
    group_by: GroupBy,
    org_unit: str | None,
    as_of: date,
    versions: set[str],
) -> tuple[SegmentationHeader, list[str]]:
    notes: list[str] = []
    policy: TierPolicy | None = None
    try:
        policy = policies.effective_on(as_of)
    except NoPolicyInForce as exc:
        # The counts stand on the tiers already stored; only the header's thresholds are missing.
        notes.append(str(exc))
    header = SegmentationHeader(
        title=TITLES[segment],
        segment=segment,
        as_of=as_of,
        group_by=group_by,
        org_unit=org_unit,
        policy_version=policy.version if policy else None,
        policy_effective_from=policy.effective_from if policy else None,
        thresholds=_thresholds(policy.value_tier.default) if policy else None,
        thresholds_by_kind={
            kind: _thresholds(bands) for kind, bands in policy.value_tier.by_kind.items()
        }
        if policy
        else {},
        tiers_assessed_under=sorted(versions),
    )
    return header, notes


def _group_order(name: str, group_by: GroupBy) -> tuple[bool, str]:
    # Staff ids and org paths sort as text; the unassigned customers close the table.
    return (group_by is GroupBy.manager and name == UNASSIGNED, name)


def segmentation_report(
    session: Session,
    caller: Caller,
    policies: TierPolicyBook,
    segment: Segment,
    group_by: GroupBy,
    org_unit: str | None = None,
) -> SegmentationReport:
    """附件1 / 附件2: counts and balances per group, customer class and value tier, with totals."""
    ensure_may_read_reports(caller)
    groups, versions = _tally(segmentation_facts(session, caller, segment, org_unit, group_by))
    header, notes = _header(policies, segment, group_by, org_unit, business_today(), versions)
    overall = _Tally()
    blocks: list[GroupBlock] = []
    for name in sorted(groups, key=lambda name: _group_order(name, group_by)):
        block, group_total = _group_block(name, groups[name], segment)
        overall.absorb(group_total)
        blocks.append(block)
    notes.extend(NOTES)
    notes.append(GROUPING_NOTES[group_by])
    if segment is Segment.target:
        notes.extend(TARGET_NOTES)
    return SegmentationReport(
        header=header,
        groups=blocks,
        total=Figures(**overall.figures(segment)),
        invalid_count=sum(block.invalid_count for block in blocks),
        notes=notes,
    )


# -- CSV ----------------------------------------------------------------------------------------
TOTAL = "total"
# Characters that make Excel read a cell as a formula; free text is prefixed to stay text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One CSV cell: money with 2 places, enums by value, blank for None, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _figure_cells(figures: Figures) -> list[str]:
    cells = [csv_cell(getattr(figures, name)) for name, _ in FIGURE_COLUMNS]
    if figures.target is not None:
        cells += [csv_cell(getattr(figures.target, name)) for name, _ in TARGET_COLUMNS]
    return cells


def segmentation_csv(report: SegmentationReport) -> str:
    """The statistics as CSV for Excel: a row per group, class and tier, then the totals 合计.

    Tier rows leave ``invalid_customers`` blank: invalid customers have no tier cell. Total rows
    carry the class's, group's or overall invalid count.
    """
    target = report.header.segment is Segment.target
    header = [
        "group (组别)",
        "customer_class (客户类别)",
        "value_tier (客户价值)",
        *(label for _, label in FIGURE_COLUMNS),
        "invalid_customers (无效客户)",
        *((label for _, label in TARGET_COLUMNS) if target else ()),
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)

    def row(group: str, cls: str, tier: str, figures: Figures, invalid: int | None) -> None:
        cells = _figure_cells(figures)
        width = len(FIGURE_COLUMNS)
        writer.writerow(
            [
                csv_cell(group),
                csv_cell(cls),
                csv_cell(tier),
                *cells[:width],
                csv_cell(invalid),
                *cells[width:],
            ]
        )

    for block in report.groups:
        for cls in block.classes:
            for cell in cls.tiers:
                row(block.group, cls.customer_class, cell.value_tier, cell, None)
            row(block.group, cls.customer_class, TOTAL, cls.total, cls.invalid_count)
        row(block.group, TOTAL, TOTAL, block.total, block.invalid_count)
    row(TOTAL, TOTAL, TOTAL, report.total, report.invalid_count)
    return BOM + buffer.getvalue()


# -- register -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterFilter:
    """Which customers the register lists, within the caller's scope."""

    org_unit: str | None = None
    owner: str | None = None
    segment: Segment | None = None


def _register_conditions(caller: Caller, flt: RegisterFilter) -> list[ColumnElement[bool]]:
    conditions = _in_scope(caller, flt.org_unit)
    if flt.owner:
        # Owner or team member, as the customer list's owner filter reads it: a manager's book.
        conditions.append(
            Customer.id.in_(select(Owner.customer_id).where(Owner.staff_id == flt.owner))
        )
    if flt.segment is not None:
        conditions.append(Customer.segment == flt.segment.value)
    return conditions


def _register_query(caller: Caller, flt: RegisterFilter) -> Select[tuple[Any, ...]]:
    return (
        select(
            Customer.id,
            Customer.name,
            Customer.kind,
            Customer.segment,
            Customer.status,
            Customer.org_unit,
            _responsible_manager().label("owner"),
            Customer.addresses,
            Customer.phone_masked,
            FinancialSnapshot.deposits,
            FinancialSnapshot.loans,
            FinancialSnapshot.business_date,
            Customer.relationship_evaluation,
            Customer.cooperation_direction,
            Customer.importance,
            Customer.importance_review_date,
            Customer.archive_number,
        )
        .select_from(Customer)
        .outerjoin(FinancialSnapshot, _newest_snapshot())
        .where(*_register_conditions(caller, flt))
        .order_by(Customer.org_unit, Customer.name_key, Customer.id)
    )


def _register_row(row: Any) -> RegisterRow:
    return RegisterRow(
        customer_id=row.id,
        name=row.name,
        kind=row.kind,
        segment=row.segment,
        status=row.status,
        org_unit=row.org_unit,
        owner=row.owner,
        address=first_address(row.addresses),
        contact=row.phone_masked,
        deposits=row.deposits,
        loans=row.loans,
        balances_as_of=row.business_date,
        relationship_evaluation=row.relationship_evaluation,
        cooperation_direction=row.cooperation_direction,
        importance=row.importance,
        importance_review_date=row.importance_review_date,
        archive_number=row.archive_number,
    )


def register_page(
    session: Session, caller: Caller, flt: RegisterFilter, limit: int, offset: int
) -> Page[RegisterRow]:
    """One page of the customer register 客户名册表, ordered by org unit, name and id."""
    ensure_may_read_reports(caller)
    total = session.execute(
        select(func.count()).select_from(Customer).where(*_register_conditions(caller, flt))
    ).scalar_one()
    rows = session.execute(_register_query(caller, flt).limit(limit).offset(offset)).all()
    return Page[RegisterRow](
        items=[_register_row(row) for row in rows], total=total, limit=limit, offset=offset
    )


def register_csv(session: Session, caller: Caller, flt: RegisterFilter) -> Iterator[bytes]:
    """Every register row in scope as CSV chunks; the caller is checked before the first byte."""
    ensure_may_read_reports(caller)
    return _register_chunks(session, _register_query(caller, flt))


def _register_chunks(session: Session, query: Select[tuple[Any, ...]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([label for _, label in REGISTER_COLUMNS])
    yield (BOM + buffer.getvalue()).encode("utf-8")
    result = session.execute(query.execution_options(yield_per=BATCH_ROWS))
    for batch in result.partitions():
        buffer.seek(0)
        buffer.truncate()
        for row in batch:
            line = _register_row(row)
            writer.writerow([csv_cell(getattr(line, name)) for name, _ in REGISTER_COLUMNS])
        yield buffer.getvalue().encode("utf-8")
