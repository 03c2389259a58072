"""Wire models of the handovers and spot-checks of the assignment service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from services.assignment.schemas import StaffId


class HandoverCause(StrEnum):
    departure = "departure"  # 离职
    rotation = "rotation"  # 轮岗
    transfer = "transfer"  # 调动
    long_leave = "long_leave"  # 长期休假


class Finding(StrEnum):
    clear = "clear"
    issue = "issue"


class SpotCheckMode(StrEnum):
    random = "random"
    scheduled = "scheduled"  # the customers least recently spot-checked first


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: StaffId
    cause: HandoverCause
    note: str | None = Field(default=None, max_length=500)


class AuditIn(BaseModel):
    """The auditor's finding for one customer of the book; a later one replaces it."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=36, max_length=36)
    finding: Finding
    remedy: str | None = Field(default=None, max_length=1000, description="Required for an issue")


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overrides: dict[str, StaffId] = Field(
        default_factory=dict, description="customer_id → receiving staff id, instead of the plan"
    )


class HandoverCustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    finding: str | None
    remedy: str | None
    audited_by: str | None
    audited_at: datetime | None
    receiver_id: str | None = Field(description="The planned receiver; null when unplanned")
    plan_basis: str | None = Field(description="same_unit, same_parent, subtree or override")
    moved_to: str | None
    moved_at: datetime | None


class HandoverSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    staff_id: str
    org_unit: str
    scope: str
    cause: str
    note: str | None
    status: str
    started_at: datetime
    started_by: str
    completed_at: datetime | None
    completed_by: str | None


class HandoverOut(HandoverSummary):
    customers: list[HandoverCustomerOut] = []
    unaudited: list[str] = []
    issues: list[str] = []
    unplanned: list[str] = []


class SpotCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: StaffId
    size: int = Field(ge=1, le=500)
    mode: SpotCheckMode = SpotCheckMode.random
    seed: int | None = Field(default=None, description="Makes a random draw repeatable")


class SpotCheckOut(BaseModel):
    id: str
    staff_id: str
    mode: str
    size: int
    auditor: str
    created_at: datetime
    customer_ids: list[str]
