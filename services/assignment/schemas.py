"""Wire models of the assignment service."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

OrgPath = Annotated[
    str, StringConstraints(pattern=r"^(/[A-Za-z0-9_.-]+)+$", max_length=200, strip_whitespace=True)
]
StaffId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]+$", max_length=100, strip_whitespace=True)
]


class OrgUnitType(StrEnum):
    """Org-unit types of a rural bank (REQUIREMENTS §1)."""

    head_office = "head_office"  # 总行
    county_union = "county_union"  # 县联社 / 县级行社
    sub_branch = "sub_branch"  # 支行
    direct_sub_branch = "direct_sub_branch"  # 总行直属支行
    union_urban_department = "union_urban_department"  # 联社城区营业部
    out_of_town_branch = "out_of_town_branch"  # 异地分支机构
    credit_cooperative = "credit_cooperative"  # 信用社
    outlet = "outlet"  # 网点
    department = "department"  # 条线部门


class StaffRole(StrEnum):
    """Staff roles; the names are those tokens carry."""

    customer_manager = "customer_manager"  # 客户经理
    teller = "teller"  # 综合柜员
    lobby_manager = "lobby_manager"  # 大堂经理
    outlet_head = "outlet_head"  # 网点主任
    wealth_manager = "wealth_manager"  # 理财经理
    branch_president = "branch_president"  # 行长
    head_office_leader = "head_office_leader"  # 总行领导
    credit_approver = "credit_approver"  # 审批人
    auditor = "auditor"  # 稽核
    line_department = "line_department"  # 条线部门
    admin = "admin"


class BusinessLine(StrEnum):
    agricultural = "agricultural"
    corporate = "corporate"
    personal = "personal"


class StaffStatus(StrEnum):
    active = "active"
    leaving = "leaving"
    left = "left"


class OwnershipReason(StrEnum):
    """Why a customer has its owner (REQUIREMENTS §5)."""

    marketed = "marketed"  # 谁营销谁维护
    claimed = "claimed"
    rule = "rule"
    transfer = "transfer"
    customer_choice = "customer_choice"
    handover = "handover"
    merge = "merge"


class AssignmentMode(StrEnum):
    assign = "assign"  # the customer has no owner
    transfer = "transfer"  # from the owner named in from_staff_id
    release = "release"  # the owner named in from_staff_id lets go


class OrgUnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: OrgPath
    name: str = Field(min_length=1, max_length=200)
    type: OrgUnitType


class OrgUnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    name: str
    type: str
    parent_path: str | None
    created_at: datetime


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StaffId
    name: str = Field(min_length=1, max_length=200)
    roles: list[StaffRole] = Field(min_length=1)
    business_line: BusinessLine | None = None
    grade: str | None = Field(default=None, max_length=30)
    grade_certified_on: date | None = None
    grade_expires_on: date | None = None
    org_unit: OrgPath
    capacity: int | None = Field(default=None, ge=0, description="Maximum book size")


class StaffPatch(BaseModel):
    """A partial update; name the version read (``version`` or ``If-Match``)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    roles: list[StaffRole] | None = Field(default=None, min_length=1)
    business_line: BusinessLine | None = None
    grade: str | None = Field(default=None, max_length=30)
    grade_certified_on: date | None = None
    grade_expires_on: date | None = None
    org_unit: OrgPath | None = None
    capacity: int | None = Field(default=None, ge=0)
    status: StaffStatus | None = None
    version: int | None = Field(default=None, ge=1)


class StaffOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    roles: list[str]
    business_line: str | None
    grade: str | None
    grade_certified_on: date | None
    grade_expires_on: date | None
    org_unit: str
    capacity: int | None
    status: str
    version: int
    book_size: int = 0
    created_at: datetime
    updated_at: datetime


class AssignmentIn(BaseModel):
    """Assign an unowned customer, transfer it from its owner, or release it."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=36, max_length=36)
    mode: AssignmentMode = AssignmentMode.assign
    staff_id: StaffId | None = Field(default=None, description="The new owner (assign, transfer)")
    from_staff_id: StaffId | None = Field(
        default=None, description="The owner as the caller knows it (transfer, release)"
    )
    reason: OwnershipReason = OwnershipReason.transfer
    note: str | None = Field(default=None, max_length=500)


class OwnershipOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    staff_id: str
    org_unit: str
    reason: str
    note: str | None
    started_at: datetime
    started_by: str
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None


class OwnerOut(BaseModel):
    customer_id: str
    owner: OwnershipOut | None


class AssignmentOut(BaseModel):
    customer_id: str
    mode: str
    owner: OwnershipOut | None
    previous: OwnershipOut | None


class BookEntry(BaseModel):
    customer_id: str
    name: str | None
    kind: str | None
    org_unit: str | None
    reason: str
    since: datetime


class RunIn(BaseModel):
    """Apply the assignment rules to the unowned customers of a subtree."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=True, description="Plan only: show who would get whom, and why")
    org_unit: OrgPath | None = Field(default=None, description="The subtree (default: yours)")
    limit: int = Field(default=1000, ge=1, le=100_000, description="Customers considered at most")


class PlacementOut(BaseModel):
    customer_id: str
    rule: str | None
    staff_id: str | None
    org_unit: str | None
    reason: str


class RunOut(BaseModel):
    policy_version: str
    dry_run: bool
    considered: int
    placed: int
    unplaced: int
    applied: int
    by_rule: dict[str, int]
    items: list[PlacementOut]
