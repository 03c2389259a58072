"""Wire models of the target lists 名单制 and leads of the assignment service."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from services.assignment.schemas import OrgPath, StaffId


class AreaKind(StrEnum):
    """The area kinds of 附件4: 城区 / 农村 / 农场 / 林场 / 外埠."""

    urban = "urban"
    rural = "rural"
    farm = "farm"
    forest_farm = "forest_farm"
    out_of_town = "out_of_town"


class SubAreaKind(StrEnum):
    street = "street"  # 街段
    estate = "estate"  # 小区


class LeadKind(StrEnum):
    individual = "individual"
    farm_household = "farm_household"  # 农户
    individual_business = "individual_business"  # 个体工商户
    corporate = "corporate"
    institution = "institution"  # 机关事业单位


class InfoStatus(StrEnum):
    """How far the information on the target has been collected 信息采集."""

    none = "none"
    partial = "partial"
    complete = "complete"


class Stage(StrEnum):
    collected = "collected"  # 收集
    distributed = "distributed"  # 分发 (at the weekly meeting)
    feedback = "feedback"  # 反馈
    screened = "screened"  # 筛选
    target = "target"  # 确定目标, with a marketing plan
    won = "won"
    lost = "lost"


class Line(StrEnum):
    agricultural = "agricultural"
    corporate = "corporate"
    personal = "personal"


class ListFormat(StrEnum):
    json = "json"
    csv = "csv"


# -- areas --------------------------------------------------------------------------------------
class SubAreaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: SubAreaKind = SubAreaKind.street
    staff_id: StaffId | None = Field(default=None, description="The manager contracted for it")


class AreaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: AreaKind
    org_unit: OrgPath = Field(description="The contracted unit (a sub-branch or cooperative)")
    sub_areas: list[SubAreaIn] = Field(default_factory=list, max_length=500)


class AreaPatch(BaseModel):
    """A change of an area; name the version read (``version`` or ``If-Match``). ``sub_areas``
    replaces the whole list of streets and estates."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: AreaKind | None = Field(
        default=None, description="Entries collected before keep the kind and line they had"
    )
    org_unit: OrgPath | None = Field(default=None, description="Contract the area to this unit")
    sub_areas: list[SubAreaIn] | None = Field(default=None, max_length=500)
    version: int | None = Field(default=None, ge=1)


class SubAreaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: str
    staff_id: str | None


class AreaOut(BaseModel):
    id: str
    name: str
    kind: str
    org_unit: str
    sub_areas: list[SubAreaOut]
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime | None
    updated_by: str | None


# -- leads --------------------------------------------------------------------------------------
class LeadIn(BaseModel):
    """A target-list entry, as collected. No national id here: contact is free text."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: LeadKind
    sub_market: str | None = Field(default=None, max_length=80, description="Market segment")
    industry: str | None = Field(default=None, max_length=80)
    area_id: str = Field(min_length=1, max_length=36)
    sub_area: str | None = Field(default=None, max_length=200, description="Street or estate")
    current_bank: str | None = Field(
        default=None, max_length=100, description="The bank it uses now (another bank's customer?)"
    )
    contact: str | None = Field(default=None, max_length=500)
    info_status: InfoStatus = InfoStatus.none
    willing_to_borrow: bool | None = None
    notes: str | None = Field(default=None, max_length=1000)


class LeadPatch(BaseModel):
    """A change of a target-list entry; name the version read (``version`` or ``If-Match``).
    The kind and the area (which decide its line) change only while it is collected."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: LeadKind | None = None
    sub_market: str | None = Field(default=None, max_length=80)
    industry: str | None = Field(default=None, max_length=80)
    area_id: str | None = Field(default=None, min_length=1, max_length=36)
    sub_area: str | None = Field(default=None, max_length=200)
    current_bank: str | None = Field(default=None, max_length=100)
    contact: str | None = Field(default=None, max_length=500)
    info_status: InfoStatus | None = None
    willing_to_borrow: bool | None = None
    notes: str | None = Field(default=None, max_length=1000)
    version: int | None = Field(default=None, ge=1)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=500)


class DistributeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: StaffId | None = Field(
        default=None, description="Name the marketer (else the rules choose)"
    )
    note: str | None = Field(default=None, max_length=500)


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Stage
    note: str | None = Field(default=None, max_length=500)
    plan: str | None = Field(
        default=None, max_length=2000, description="The marketing plan; required for target"
    )
    customer_id: str | None = Field(
        default=None,
        min_length=36,
        max_length=36,
        description="The customer the entry became; required for won (a customer known here)",
    )


class PostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward: Decimal = Field(gt=0, max_digits=18, decimal_places=2)
    note: str | None = Field(default=None, max_length=500)


class AwardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: StaffId
    note: str | None = Field(default=None, max_length=500)


class BidOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    staff_id: str
    note: str | None
    status: str
    created_at: datetime


class StageChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_stage: str | None
    to_stage: str
    note: str | None
    changed_at: datetime
    changed_by: str


class LeadOut(BaseModel):
    """A target-list entry with the columns of 附件4."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    sub_market: str | None
    industry: str | None
    area_id: str
    area_name: str
    area_kind: str
    org_unit: str = Field(description="The contracting unit of the area")
    sub_area: str | None
    business_line: str
    line_department: str = Field(description="公司 / 个人 / 三农")
    current_bank: str | None
    other_bank: bool
    contact: str | None
    info_status: str
    willing_to_borrow: bool | None
    notes: str | None
    stage: str
    furthest: str
    plan: str | None
    marketer_id: str | None
    marketer_line: str | None
    claimed_by: str | None
    distribution_basis: str | None
    distributed_at: datetime | None
    distributed_by: str | None
    bidding: str | None
    bid_reward: Decimal | None
    reward: Decimal | None
    result_note: str | None
    customer_id: str | None = Field(description="The customer a won entry became")
    customer_owner_id: str | None = Field(description="The customer's owner when it was won")
    owner_assigned: bool | None = Field(
        description="True when the win made the marketer the owner (谁营销谁维护)"
    )
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime


class LeadDetail(LeadOut):
    bids: list[BidOut]
    history: list[StageChangeOut]


# -- funnel -------------------------------------------------------------------------------------
class FunnelLine(BaseModel):
    business_line: str
    total: int
    at_stage: dict[str, int] = Field(description="Entries now at each stage")
    reached: dict[str, int] = Field(
        description="Entries that reached at least each stage (collected ≥ distributed ≥ …)"
    )


class FunnelOut(BaseModel):
    org_unit: str
    lines: list[FunnelLine]
    overall: FunnelLine
