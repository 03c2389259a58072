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

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session, aliased

from crmkit.auth import Caller
from crmkit.errors import Forbidden
from services.customer import access
from services.customer.domain import business_today
from services.customer.models import Customer, FinancialSnapshot, Owner
from services.customer.schemas import Segment
from services.customer.schemas_reports import (
    CLASS_ZH,
    TIER_ZH,
    TITLES,
    ClassBlock,
    CustomerClass,
    Figures,
    GroupBlock,
    GroupBy,
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
def in_scope(caller: Caller, org_unit: str | None) -> list[ColumnElement[bool]]:
    conditions = [
        access.readable(caller),
        Customer.merged_into.is_(None),
        Customer.erased_at.is_(None),
    ]
    if org_unit:
        conditions.append(access.in_subtree(org_unit))
    return conditions


def responsible_manager() -> Any:
    """The owner's staff id per customer; one value even if the read model ever held two."""
    return (
        select(func.min(Owner.staff_id))
        .where(Owner.customer_id == Customer.id, Owner.role == "owner")
        .correlate(Customer)
        .scalar_subquery()
    )


def newest_snapshot() -> ColumnElement[bool]:
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
            responsible_manager().label("owner"),
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
        .outerjoin(FinancialSnapshot, newest_snapshot())
        .where(
            *in_scope(caller, org_unit),
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
