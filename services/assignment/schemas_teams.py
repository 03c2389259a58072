"""Wire models of the teams 团队维护 of the assignment service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class TeamRole(StrEnum):
    first_responsible = "first_responsible"  # 第一负责人: the customer's owner
    member = "member"  # a further manager of the team
    senior_lead = "senior_lead"  # a manager of senior grade, for core customers
    accountable_leader = "accountable_leader"  # 挂钩领导: unit head, union or head-office leader


class TeamCase(StrEnum):
    """Why a customer needs a team (seed 000)."""

    large_core = "large_core"  # 大户、核心客户
    great_value = "great_value"  # 价值度较大客户
    credit_exposure = "credit_exposure"  # 有授信客户
    new_large = "new_large"  # 新营销大户
    new_product = "new_product"  # 新产品使用客户
    anomaly = "anomaly"  # 异常客户 (the rating service's risk flags)
    at_risk = "at_risk"  # 风险客户 (overdue)
    designated = "designated"  # 产品或内控部门指定客户
    group = "group"  # 集团客户: a member of a group or the group's parent


class TeamGap(StrEnum):
    """What a customer's team lacks."""

    first_responsible = "first_responsible"  # the customer has no owner
    team = "team"  # nobody serves it beside the owner
    managers = "managers"  # fewer managers than the policy's minimum
    senior_lead = "senior_lead"
    accountable_leader = "accountable_leader"
    # A group member whose accountable leader is not its group parent's (or the parent has none).
    same_group_leader = "same_group_leader"


class TeamMemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: str = Field(min_length=1, max_length=100)
    role: TeamRole


class TeamIn(BaseModel):
    """The whole team: the current owner as ``first_responsible`` and everyone else who serves
    the customer; members left out are removed."""

    model_config = ConfigDict(extra="forbid")

    members: list[TeamMemberIn] = Field(min_length=1, max_length=50)


class TeamMemberOut(BaseModel):
    staff_id: str
    role: TeamRole
    name: str | None
    org_unit: str | None
    status: str | None
    grade: str | None
    added_at: datetime | None = Field(description="None for the first responsible (the owner)")
    added_by: str | None


class TeamOut(BaseModel):
    customer_id: str
    org_unit: str
    first_responsible: str | None = Field(description="The current owner 第一负责人")
    members: list[TeamMemberOut]
    managers: int = Field(description="Active managers: the first responsible and members")
    cases: list[TeamCase] = Field(description="Why the customer needs a team (empty: it does not)")
    missing: list[TeamGap] = Field(description="What the team lacks")
    compliant: bool
    designation_id: str | None = Field(description="The open designation naming the customer")
    policy_version: str
    group_id: str | None = Field(
        default=None,
        description="The group 集团客户 the customer is a member or the parent of: the parent's "
        "customer id",
    )
    group_members: int = Field(default=0, description="Customers naming it as their group")
    group_leader: str | None = Field(
        default=None,
        description="The group's leader: the active accountable leader of its parent, whom "
        "every member gets too (null when the parent has none)",
    )


class DesignationIn(BaseModel):
    """Product or internal-control staff name a customer as needing a team."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=36, max_length=36)
    reason: str = Field(min_length=1, max_length=500)


class DesignationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    org_unit: str
    reason: str
    designated_by: str
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None


class DesignationCloseIn(BaseModel):
    """Close a designation: the customer no longer needs a team on that ground."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class DesignationClosed(DesignationOut):
    """The closed designation, the cases by which the customer still needs a team, and the team
    members released because none is left."""

    cases: list[TeamCase]
    released: list[str] = Field(
        description="Staff ids of the team members released (ownership.released): the whole "
        "team when no case is left, else nobody"
    )


class ViolationOut(BaseModel):
    """A customer that needs a team by one or more cases and lacks a compliant one."""

    customer_id: str
    name: str
    org_unit: str
    owner: str | None
    managers: int
    cases: list[TeamCase]
    missing: list[TeamGap]
    accountable_leader: str | None = Field(
        default=None, description="The customer's active accountable leader, if any"
    )
    group_id: str | None = Field(
        default=None,
        description="The group the customer is a member or the parent of (the parent's id)",
    )
    group_leader: str | None = Field(
        default=None,
        description="The group's leader (its parent's accountable leader), whom every member "
        "gets; null when the parent has none",
    )


class GroupLeaderIn(BaseModel):
    """The accountable leader 挂钩领导 of a whole group: its parent and every member."""

    model_config = ConfigDict(extra="forbid")

    staff_id: str = Field(min_length=1, max_length=100)


class GroupLeaderRelease(BaseModel):
    customer_id: str
    staff_id: str


class GroupLeaderOut(BaseModel):
    group_id: str = Field(description="The group's parent")
    staff_id: str = Field(description="The accountable leader of every customer of the group")
    customers: list[str] = Field(description="The parent, then the members, by id")
    changed: list[str] = Field(description="Customers whose accountable leader was set now")
    released: list[GroupLeaderRelease] = Field(
        description="Accountable leaders replaced (ownership.released, role team_member)"
    )
