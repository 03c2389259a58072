"""Wire models of complaints 投诉: recording, transitions with the closing outcome, the step
history and the report by branch."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ComplaintStatus(StrEnum):
    """Where a complaint stands: the last step done."""

    recorded = "recorded"  # 记录
    accepted = "accepted"  # 受理
    analysed = "analysed"  # 分析
    handled = "handled"  # 处理
    feedback_given = "feedback_given"  # 反馈
    closed = "closed"  # 结案


class Step(StrEnum):
    """A step of a complaint, named by what is done in it."""

    record = "record"
    accept = "accept"
    analyse = "analyse"
    handle = "handle"
    feedback = "feedback"
    close = "close"


class Channel(StrEnum):
    """How the complaint reached the bank."""

    counter = "counter"  # 柜面
    phone = "phone"  # 电话
    letter = "letter"  # 信函
    online = "online"  # 网上银行, 手机银行
    visit = "visit"  # 客户经理上门
    regulator = "regulator"  # 监管转办
    other = "other"


class Category(StrEnum):
    """What the complaint is about."""

    service = "service"  # 服务态度
    waiting = "waiting"  # 等候时间
    fees = "fees"  # 收费
    product = "product"  # 产品
    error = "error"  # 业务差错
    conduct = "conduct"  # 违规行为
    other = "other"


class Outcome(StrEnum):
    """What became of the customer: won back 挽回 or lost 流失."""

    retained = "retained"
    lost = "lost"


class EscalationReason(StrEnum):
    high_tier = "high_tier"  # a high-tier customer's complaint goes to the head at once
    late = "late"  # a step passed its deadline undone


class ComplaintIn(BaseModel):
    """A complaint to record for a known customer."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=36, max_length=36)
    channel: Channel
    category: Category
    description: str = Field(min_length=1, max_length=4000)
    owner: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Who accepts it (owner of the first step); default: the customer's owner, "
        "or the recorder when the customer has none",
    )


class TransitionIn(BaseModel):
    """Move a complaint to its next step; closing also records the outcome, all of it."""

    model_config = ConfigDict(extra="forbid")

    to: ComplaintStatus
    note: str = Field(min_length=1, max_length=4000, description="What was done in the step")
    owner: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Owner of the step after this one; default: the owner of this one",
    )
    version: int | None = Field(
        default=None, ge=1, description="The version read; 409 when the complaint moved since"
    )
    outcome: Outcome | None = Field(default=None, description="Closing: retained or lost")
    person_at_fault: str | None = Field(
        default=None, min_length=1, max_length=200, description="Closing: who was at fault"
    )
    sanction: str | None = Field(
        default=None, min_length=1, max_length=2000, description="Closing: the sanction 惩处"
    )
    root_cause: str | None = Field(default=None, min_length=1, max_length=4000)
    lesson: str | None = Field(default=None, min_length=1, max_length=4000)
    fix_description: str | None = Field(
        default=None, min_length=1, max_length=4000, description="Closing: the internal fix 整改"
    )
    fix_owner_id: str | None = Field(default=None, min_length=1, max_length=100)
    fix_due_on: date | None = Field(default=None, description="Closing: the fix's due date")


class ComplaintStepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: Step
    owner_id: str
    started_at: datetime
    due_at: datetime | None
    done_at: datetime | None
    done_by: str | None
    note: str | None
    late: bool = Field(description="Done after its deadline, or still undone past it")
    escalated_at: datetime | None
    escalation_reason: EscalationReason | None


class FixOut(BaseModel):
    description: str
    owner_id: str
    due_on: date


class ComplaintOut(BaseModel):
    id: str
    customer_id: str
    org_unit: str
    channel: Channel
    category: Category
    description: str
    status: ComplaintStatus
    current_step: Step | None = Field(description="The step waited for; null once closed")
    step_owner_id: str | None
    step_due_at: datetime | None
    late: bool = Field(description="The step waited for is past its deadline")
    high_tier: bool
    customer_owner_id: str | None = Field(description="The customer's owner when recorded")
    escalated_at: datetime | None
    policy_version: str
    recorded_by: str
    recorded_at: datetime
    closed_at: datetime | None
    outcome: Outcome | None
    person_at_fault: str | None
    sanction: str | None
    root_cause: str | None
    lesson: str | None
    fix: FixOut | None
    version: int


class ComplaintDetail(ComplaintOut):
    steps: list[ComplaintStepOut]


class StatusCounts(BaseModel):
    recorded: int = 0
    accepted: int = 0
    analysed: int = 0
    handled: int = 0
    feedback_given: int = 0
    closed: int = 0


class StepCounts(BaseModel):
    """Open complaints by the step they wait for."""

    accept: int = 0
    analyse: int = 0
    handle: int = 0
    feedback: int = 0
    close: int = 0


class BranchCounts(BaseModel):
    """The complaints recorded in the period for customers of one org unit (or all of them)."""

    org_unit: str
    complaints: int
    open: int
    by_status: StatusCounts
    by_step: StepCounts
    late: int = Field(description="With a step done after its deadline or undone past it")
    escalated: int
    retained: int
    lost: int


class ComplaintsReport(BaseModel):
    org_unit: str = Field(description="The subtree reported")
    date_from: date
    date_to: date
    as_of: datetime = Field(description="When open steps were judged late")
    branches: list[BranchCounts]
    total: BranchCounts
