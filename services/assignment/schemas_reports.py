"""Wire models of the assignment reports: 附件3 存量客户1对N维护责任表, the book summary and the
per-layer maintainer lists 分层维护人员名单. Money is an exact decimal string with two places."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, PlainSerializer

from crmkit.schemas import Page

# CNY with two places; on the wire an exact decimal string, never a float.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
# A ratio such as the 1对N assignment rate, four places, as a string.
Ratio = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.4f}", return_type=str, when_used="json"),
]


class Post(StrEnum):
    """The maintainer's post as 附件3 names it, from their roles (the highest one counts)."""

    head_office_leader = "head_office_leader"  # 总行领导
    union_leadership = "union_leadership"  # 联社班子成员 (a president at a county union)
    unit_head = "unit_head"  # 营业单位负责人 (outlet head, sub-branch president)
    wealth_manager = "wealth_manager"  # 理财经理
    customer_manager = "customer_manager"  # 客户经理
    lobby_manager = "lobby_manager"  # 大堂经理
    teller = "teller"  # 综合柜员
    other = "other"


POST_LABELS: dict[Post, str] = {
    Post.head_office_leader: "总行领导",
    Post.union_leadership: "联社班子成员",
    Post.unit_head: "营业单位负责人",
    Post.wealth_manager: "理财经理",
    Post.customer_manager: "客户经理",
    Post.lobby_manager: "大堂经理",
    Post.teller: "综合柜员",
    Post.other: "其他",
}


class ResponsibilityBasis(StrEnum):
    """How responsibility was set (附件3): who markets maintains, designated, or a teller."""

    marketed = "marketed"  # 谁营销谁维护 (ownership reason marketed or claimed)
    designated = "designated"  # 按客户层级和关系指定 (rule, transfer, handover, choice, merge)
    teller = "teller"  # 柜员维护 (the owner's post is teller)


BASIS_LABELS: dict[ResponsibilityBasis, str] = {
    ResponsibilityBasis.marketed: "谁营销谁维护",
    ResponsibilityBasis.designated: "按客户层级和关系指定",
    ResponsibilityBasis.teller: "柜员维护",
}


class StaffRef(BaseModel):
    staff_id: str
    name: str


class TeamMemberRef(StaffRef):
    role: str = Field(description="member, senior_lead or accountable_leader 挂钩领导")


class ResponsibilityRow(BaseModel):
    """One owned stock customer and who maintains it."""

    org_unit: str = Field(description="The customer's org unit")
    org_unit_name: str | None
    maintainer_id: str = Field(description="Responsible maintainer 维护责任人 (staff id)")
    maintainer_name: str
    maintainer_org_unit: str
    post: Post
    post_label: str
    business_line: str = Field(description="The customer's line 条线")
    customer_id: str
    customer_name: str
    customer_kind: str
    value_tier: str | None
    credit_rating: str | None = Field(
        default=None, description="信用等级: the grade the rating service confirmed; null if none"
    )
    credit_limit: Money | None = Field(
        default=None,
        description="授信额度: the comprehensive limit approved and in force (not past its expiry "
        "date); null if none",
    )
    deposit_balance: Money | None = Field(description="Latest core-banking figure; null if none")
    loan_balance: Money | None
    figures_as_of: date | None
    market_segment: str | None = Field(description="Customer business information 客户经营信息")
    responsibility_basis: ResponsibilityBasis
    responsibility_basis_label: str
    ownership_reason: str
    first_responsible: StaffRef = Field(description="第一负责人: the owner")
    team_members: list[TeamMemberRef] = Field(
        default_factory=list,
        description="The serving team beside the owner: members, senior lead, accountable leader",
    )
    effective_date: date = Field(description="The ownership span's start, Asia/Shanghai")


class ResponsibilitySummary(BaseModel):
    """Per org unit and business line: the 1对N assignment rate."""

    org_unit: str
    business_line: str
    owned: int
    unowned: int
    assignment_rate: Ratio | None = Field(description="owned / (owned + unowned); null if none")


class ResponsibilityReport(Page[ResponsibilityRow]):
    """附件3 存量客户1对N维护责任表: a page of rows, with the summary of the whole scope."""

    as_of: date
    summary: list[ResponsibilitySummary]
    total_summary: ResponsibilitySummary


class BookSummary(BaseModel):
    """A manager's book: counts by tier, exact balance totals."""

    staff_id: str
    name: str
    org_unit: str
    customers: int
    by_value_tier: dict[str, int] = Field(description="'none' counts customers without a tier")
    by_wealth_layer: dict[str, int]
    by_vip_level: dict[str, int]
    deposits_total: Money
    loans_total: Money
    without_figures: int = Field(description="Customers without core-banking figures yet")


class LayerMaintainer(BaseModel):
    staff_id: str
    name: str
    roles: list[str]
    post: Post
    post_label: str
    customers: int


class MaintainerList(BaseModel):
    """分层维护人员名单: the maintainers of one wealth layer's customers at one org unit."""

    org_unit: str
    org_unit_name: str | None
    wealth_layer: str
    wealth_layer_label: str
    customers: int
    maintainers: list[LayerMaintainer]


class MaintainersReport(BaseModel):
    as_of: date
    items: list[MaintainerList]
