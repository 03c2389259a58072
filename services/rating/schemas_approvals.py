"""Wire models of the approval of credit limits 审议审批: review, decision, the credit committee,
the recorded steps and the printed forms. Money is an exact decimal string with two places."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

# CNY with two places; on the wire an exact decimal string, never a float.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]


class Recommendation(StrEnum):
    """What the reviewer 审查人 recommends to whoever decides."""

    approve = "approve"
    reject = "reject"


class NextStep(StrEnum):
    """What a limit waits for."""

    review = "review"
    approve = "approve"
    committee = "committee"


class Vote(StrEnum):
    for_ = "for"
    against = "against"
    abstain = "abstain"


class FormName(StrEnum):
    """The three printed forms of a limit."""

    assessment = "assessment"  # 客户信用等级评估表
    calculation = "calculation"  # 客户授信额度测算表
    approval = "approval"  # 客户授信额度审议审批表


class FormFormat(StrEnum):
    html = "html"
    pdf = "pdf"


class ReviewIn(BaseModel):
    """The reviewer's examination of a proposed limit."""

    model_config = ConfigDict(extra="forbid")

    opinion: str = Field(min_length=1, max_length=4000, description="审查意见")
    recommendation: Recommendation


class LimitApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=4000, description="审批意见")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000, description="Why it is rejected")


class CommitteeIn(BaseModel):
    """Open the committee's meeting on a referred limit: the members named and their chair."""

    model_config = ConfigDict(extra="forbid")

    members: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=50, description="Staff ids of the members (role credit_committee)"
    )
    chair: str = Field(min_length=1, max_length=100, description="One of the members 主任委员")


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vote: Vote
    opinion: str = Field(min_length=1, max_length=4000)


class SignOffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: str = Field(min_length=1, max_length=20000, description="会议纪要")


class VoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    member: str
    vote: Vote
    opinion: str
    at: datetime


class CommitteeOut(BaseModel):
    id: str
    chair: str
    members: list[str]
    status: str = Field(description="open, or decided once the chair signed the minutes off")
    opened_by: str
    opened_at: datetime
    votes: list[VoteOut]
    votes_for: int
    votes_against: int
    votes_abstain: int
    minutes: str | None
    decision: str | None = Field(description="approved or rejected, once decided")
    signed_by: str | None
    signed_at: datetime | None


class LimitApprovalOut(BaseModel):
    """A credit limit as its approval sees it."""

    id: str
    customer_id: str
    kind: str
    org_unit: str
    grade: str
    total_amount: Money
    term_months: int
    status: str
    next_step: NextStep | None = Field(description="What it waits for; null once decided")
    step_due_at: datetime | None = Field(description="Deadline of that step (限时办结)")
    proposed_by: str
    proposed_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_opinion: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    by_committee: bool
    start_date: date | None
    expiry_date: date | None
    version: int
    committee: CommitteeOut | None


class StepOut(BaseModel):
    """One recorded step: who did what, when, and by when it was due."""

    model_config = ConfigDict(from_attributes=True)

    step: str
    actor: str
    at: datetime
    note: str | None
    due_at: datetime | None
    late: bool
