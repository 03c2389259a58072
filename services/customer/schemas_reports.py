"""Wire contract of the customer reports: the segmentation statistics of 附件1 (stock) and 附件2
(target), and the customer register 客户名册表. Money is an exact decimal string with 2 places."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field

from crmkit.schemas import CustomerKind, Importance
from services.customer.schemas import Money, Segment, Status


class GroupBy(StrEnum):
    """The rows of the segmentation statistics: each customer's own org unit, or its manager."""

    org_unit = "org_unit"
    manager = "manager"


class CustomerClass(StrEnum):
    """Customer class of the seed's statistics: 公司类, 个人类, 三农类 (one per business line)."""

    corporate = "corporate"
    personal = "personal"
    agricultural = "agricultural"


class TierColumn(StrEnum):
    """A value-tier column: high 高端, middle 中端, general 一般, unrated 未评定 (no snapshot)."""

    high = "high"
    middle = "middle"
    general = "general"
    unrated = "unrated"


# -- labels: Chinese terms, titles and the CSV columns (field, English header with the Chinese)
CLASS_ZH: Mapping[CustomerClass, str] = {
    CustomerClass.corporate: "公司类",
    CustomerClass.personal: "个人类",
    CustomerClass.agricultural: "三农类",
}
TIER_ZH: Mapping[TierColumn, str] = {
    TierColumn.high: "高端",
    TierColumn.middle: "中端",
    TierColumn.general: "一般",
    TierColumn.unrated: "未评定",
}
TITLES: Mapping[Segment, str] = {
    Segment.stock: "附件1 存量客户细分统计表 (stock-customer segmentation statistics)",
    Segment.target: "附件2 目标客户细分统计表 (target-customer segmentation statistics)",
}

FIGURE_COLUMNS = (
    ("customers", "customers (户数)"),
    ("deposits", "deposits (存款余额)"),
    ("loans", "loans (贷款余额)"),
    ("deposit_customers", "deposit_customers (存款客户)"),
    ("loan_customers", "loan_customers (贷款客户)"),
    ("fee_business_customers", "fee_business_customers (中间业务客户)"),
)
TARGET_COLUMNS = (
    ("other_bank_customers", "other_bank_customers (他行存量客户)"),
    ("willing_to_establish_credit", "willing_to_establish_credit (有授信意向客户)"),
    ("info_collected", "info_collected (已采集信息客户)"),
    ("info_collected_pct", "info_collected_pct (信息采集面%)"),
)

REGISTER_COLUMNS = (
    ("customer_id", "customer_id (客户编号)"),
    ("name", "name (客户名称)"),
    ("kind", "kind (客户类型)"),
    ("segment", "segment (存量/目标)"),
    ("status", "status (客户状态)"),
    ("org_unit", "org_unit (所属机构)"),
    ("owner", "owner (管户客户经理)"),
    ("address", "address (地址)"),
    ("contact", "contact (联系方式)"),
    ("deposits", "deposits (存款额)"),
    ("loans", "loans (贷款额)"),
    ("balances_as_of", "balances_as_of (余额日期)"),
    ("relationship_evaluation", "relationship_evaluation (合作关系评价)"),
    ("cooperation_direction", "cooperation_direction (业务合作方向)"),
    ("importance", "importance (客户重要程度)"),
    ("importance_review_date", "importance_review_date (重要程度复核日期)"),
    ("archive_number", "archive_number (档案编号)"),
)


class TierBand(BaseModel):
    """Either measure at or above its threshold reaches the tier."""

    deposits_at_least: Money
    loans_at_least: Money


class TierThresholds(BaseModel):
    """The value-tier thresholds of the policy in force; below middle is general."""

    high: TierBand
    middle: TierBand


class SegmentationHeader(BaseModel):
    """What the table is, as of when, for whom and under which thresholds."""

    title: str
    segment: Segment
    as_of: date = Field(description="Business date (Asia/Shanghai) the report was drawn up")
    group_by: GroupBy
    org_unit: str | None = Field(description="The org subtree asked for; null: all in scope")
    policy_version: str | None = Field(description="Tier policy in force on the as-of date")
    policy_effective_from: date | None
    thresholds: TierThresholds | None = Field(
        description="Value-tier thresholds of the policy in force (every kind)"
    )
    thresholds_by_kind: dict[CustomerKind, TierThresholds] = Field(
        default_factory=dict, description="Kinds the policy gives thresholds of their own"
    )
    tiers_assessed_under: list[str] = Field(
        description="Policy versions the counted customers' tiers were assessed under"
    )


class TargetFigures(BaseModel):
    """The extra columns of 附件2 (target customers)."""

    other_bank_customers: int = Field(description="Of which other banks' customers 他行存量客户")
    willing_to_establish_credit: int | None = Field(
        description="Of which willing to establish a credit relationship; null: not recorded yet"
    )
    info_collected: int = Field(description="Identity, mobile phone and address on record")
    info_collected_pct: str | None = Field(
        description="info_collected as a percentage of the customers, 2 places; null for none"
    )


class Figures(BaseModel):
    """The figures of one cell of the table, or of a total 合计."""

    customers: int = Field(description="Customer count 户数")
    deposits: Money = Field(description="Deposit balance 存款余额 (newest snapshots)")
    loans: Money = Field(description="Loan balance 贷款余额 (newest snapshots)")
    deposit_customers: int = Field(description="Deposit customers 存款客户")
    loan_customers: int = Field(description="Loan customers 贷款客户")
    fee_business_customers: int = Field(description="Fee-business customers 中间业务客户")
    target: TargetFigures | None = Field(description="附件2 columns; null in the stock report")


class TierCell(Figures):
    """One value tier of one customer class."""

    value_tier: TierColumn
    value_tier_zh: str


class ClassBlock(BaseModel):
    """One customer class of a group: a cell per tier and its total."""

    customer_class: CustomerClass
    customer_class_zh: str
    tiers: list[TierCell]
    total: Figures
    invalid_count: int = Field(description="Invalid customers 无效客户, left out of the figures")


class GroupBlock(BaseModel):
    """One row group: an org unit, or a manager's staff id (``unassigned`` for none)."""

    group: str
    classes: list[ClassBlock]
    total: Figures
    invalid_count: int


class SegmentationReport(BaseModel):
    """附件1 存量客户细分统计表 / 附件2 目标客户细分统计表."""

    header: SegmentationHeader
    groups: list[GroupBlock]
    total: Figures = Field(description="Overall total 合计")
    invalid_count: int
    notes: list[str] = Field(description="How the figures are counted")


class RegisterRow(BaseModel):
    """One line of the customer register 客户名册表 (seed 001); personal data masked."""

    customer_id: str
    name: str = Field(description="客户名称")
    kind: CustomerKind
    segment: Segment
    status: Status
    org_unit: str
    owner: str | None = Field(description="Staff id of the responsible manager 第一责任人")
    address: str | None = Field(description="地址: the first address on record")
    contact: str | None = Field(description="联系方式: the mobile phone, masked")
    deposits: Money | None = Field(description="存款额 from the newest snapshot")
    loans: Money | None = Field(description="贷款额 from the newest snapshot")
    balances_as_of: date | None = Field(description="Business date of the newest snapshot")
    relationship_evaluation: str | None = Field(description="合作关系评价")
    cooperation_direction: str | None = Field(description="业务合作方向")
    importance: Importance | None = Field(description="客户重要程度")
    importance_review_date: date | None
    archive_number: str | None = Field(description="档案编号")
