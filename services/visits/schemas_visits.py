"""Wire models of visit records 拜访记录 (附件5), pre-visit and service plans, enquiries 咨询,
appointments 预约 and the visit record report. Times are timezone-aware UTC; business dates are
Asia/Shanghai dates; money is an exact decimal string with two places."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

# CNY with two places; on the wire an exact decimal string, never a float.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
# A bank product code: letters, digits, "_", "." and "-", up to 40 characters.
ProductCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", max_length=40)
]
StaffId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
CustomerId = Annotated[str, StringConstraints(min_length=36, max_length=36)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class Channel(StrEnum):
    """How the contact was made 维护方式."""

    in_person = "in_person"  # 上门 / 面谈
    phone = "phone"  # 电话
    sms = "sms"  # 短信
    event = "event"  # 活动 (a salon, a customer gathering)
    letter = "letter"  # 信函


class VisitType(StrEnum):
    """What the visit was for (seed 000 l.259, seed 001)."""

    sales = "sales"  # 销售访问
    maintenance = "maintenance"  # 维护访问
    phone = "phone"  # 电话维护
    post_sale = "post_sale"  # 售后跟踪拜访 (附件5)
    holiday_greeting = "holiday_greeting"  # 节日祝福
    event_visit = "event_visit"  # 遇事看望


class Satisfaction(StrEnum):
    """The customer's satisfaction, asked at the visit 询问客户的满意情况."""

    very_satisfied = "very_satisfied"
    satisfied = "satisfied"
    neutral = "neutral"
    dissatisfied = "dissatisfied"
    very_dissatisfied = "very_dissatisfied"


# The score of each level, 5 (very satisfied) to 1 (very dissatisfied).
SATISFACTION_SCORES: dict[Satisfaction, int] = {
    Satisfaction.very_satisfied: 5,
    Satisfaction.satisfied: 4,
    Satisfaction.neutral: 3,
    Satisfaction.dissatisfied: 2,
    Satisfaction.very_dissatisfied: 1,
}


class Participant(BaseModel):
    """A staff member at a visit and their role in it 分工."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    staff_id: StaffId
    role: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="Their part in the visit, e.g. lead, product specialist, accountable leader"
    )


def _distinct_staff(people: list[Participant], field: str) -> None:
    ids = [p.staff_id for p in people]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{field}: a staff member is named more than once")


def _distinct(values: list[str], field: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{field}: a value is named more than once")


# -- visit records ------------------------------------------------------------------------------
class VisitIn(BaseModel):
    """A contact with a customer, or the correction of an earlier record (``corrects``)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    visited_at: AwareDatetime = Field(description="When the contact took place (not ahead of now)")
    channel: Channel
    visit_type: VisitType
    participants: list[Participant] = Field(
        min_length=1, max_length=20, description="Who was there and in what role, the lead first"
    )
    purpose: LongText = Field(description="The purpose of the visit 访问目的")
    agreed: LongText | None = Field(
        default=None, description="Recap of what was agreed 概述约定情况"
    )
    satisfaction: Satisfaction | None = Field(default=None, description="None: not asked")
    customer_comments: LongText | None = Field(
        default=None, description="The customer's comments on their business 就业务运作做出评论"
    )
    needs_found: LongText | None = Field(default=None, description="Needs and problems found")
    information_given: LongText | None = Field(
        default=None, description="Information, data and materials given 提供数据 / 交换材料"
    )
    opportunities: list[ProductCode] = Field(
        default_factory=list, max_length=50, description="Products the customer showed interest in"
    )
    product_followed_up: ProductCode | None = Field(
        default=None, description="The product a post-sale visit followed up (required for one)"
    )
    next_contact_on: date | None = Field(default=None, description="The agreed next contact")
    next_contact_participants: list[StaffId] = Field(default_factory=list, max_length=20)
    plan_id: str | None = Field(default=None, description="The pre-visit plan this carried out")
    corrects: str | None = Field(default=None, description="The record this one corrects")
    correction_reason: ShortText | None = Field(
        default=None, description="Why the earlier record is corrected (required with corrects)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> VisitIn:
        _distinct_staff(self.participants, "participants")
        _distinct(self.opportunities, "opportunities")
        _distinct(self.next_contact_participants, "next_contact_participants")
        if self.visit_type is VisitType.post_sale and self.product_followed_up is None:
            raise ValueError("a post_sale visit names the product_followed_up")
        if self.corrects is not None and self.correction_reason is None:
            raise ValueError("a correction gives its correction_reason")
        if self.corrects is None and self.correction_reason is not None:
            raise ValueError("correction_reason is given only with corrects")
        if self.next_contact_participants and self.next_contact_on is None:
            raise ValueError("next_contact_participants need the next_contact_on date")
        return self


class VisitOut(BaseModel):
    """One version of a visit record."""

    id: str
    customer_id: str
    customer_name: str | None
    org_unit: str = Field(description="The customer's org unit when the visit was recorded")
    visited_at: datetime
    channel: Channel
    visit_type: VisitType
    participants: list[Participant]
    purpose: str
    agreed: str | None
    satisfaction: Satisfaction | None
    satisfaction_score: int | None = Field(description="5 very satisfied … 1 very dissatisfied")
    customer_comments: str | None
    needs_found: str | None
    information_given: str | None
    opportunities: list[str]
    product_followed_up: str | None
    next_contact_on: date | None
    next_contact_participants: list[str]
    plan_id: str | None
    corrects: str | None
    correction_reason: str | None
    original_id: str = Field(description="The first record of this contact")
    revision: int = Field(description="1 for the first record, 2 for its first correction …")
    recorded_by: str
    recorded_at: datetime


class VisitDetail(VisitOut):
    """The current version of a contact with its earlier versions."""

    history: list[VisitOut] = Field(description="The earlier versions, oldest first")


# -- pre-visit plans ----------------------------------------------------------------------------
class LikelyQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: LongText
    answer: LongText | None = None


class VisitPlanIn(BaseModel):
    """A pre-visit plan (seed 001 销售访问 1. 准备工作)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    planned_at: AwareDatetime = Field(description="When the visit is to take place 访问的时机")
    channel: Channel = Field(description="How 访问的方式")
    visit_type: VisitType
    participants: list[Participant] = Field(min_length=1, max_length=20)
    purpose: LongText
    questions: list[LongText] = Field(
        default_factory=list, max_length=50, description="What to ask the customer"
    )
    materials: list[ShortText] = Field(
        default_factory=list, max_length=50, description="Information and materials to bring"
    )
    customer_needs: LongText | None = Field(
        default=None, description="What the customer most needs 目标客户最需要的信息和金融服务需求"
    )
    likely_questions: list[LikelyQuestion] = Field(
        default_factory=list,
        max_length=50,
        description="What the customer may ask, and how to answer 可能会提出的问题及如何解答",
    )

    @model_validator(mode="after")
    def _consistent(self) -> VisitPlanIn:
        _distinct_staff(self.participants, "participants")
        return self


class VisitPlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    org_unit: str
    planned_at: datetime
    channel: Channel
    visit_type: VisitType
    participants: list[Participant]
    purpose: str
    questions: list[str]
    materials: list[str]
    customer_needs: str | None
    likely_questions: list[LikelyQuestion]
    created_by: str
    created_at: datetime


class VisitPlanDetail(VisitPlanOut):
    previous_visit: VisitOut | None = Field(
        description="The customer's last visit before the planned time (its current version), "
        "not counting a visit that carried out this plan"
    )
    carried_out_by: list[str] = Field(description="The visits that carried out this plan")


# -- service plans ------------------------------------------------------------------------------
class PlannedContact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    planned_on: date
    channel: Channel
    visit_type: VisitType
    purpose: ShortText


class ServicePlanIn(BaseModel):
    """A yearly service plan for an important high-end customer."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    year: int = Field(ge=2000, le=2100)
    goals: list[LongText] = Field(min_length=1, max_length=20)
    planned_contacts: list[PlannedContact] = Field(min_length=1, max_length=200)
    products: list[ProductCode] = Field(default_factory=list, max_length=50)
    responsible: list[Participant] = Field(
        min_length=1, max_length=20, description="Team members responsible, and for what"
    )
    notes: LongText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ServicePlanIn:
        _distinct_staff(self.responsible, "responsible")
        _distinct(self.products, "products")
        outside = [c.planned_on for c in self.planned_contacts if c.planned_on.year != self.year]
        if outside:
            raise ValueError(f"planned_contacts outside {self.year}: {outside[0].isoformat()}")
        return self


class ServicePlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    org_unit: str
    year: int
    revision: int = Field(description="1 for the first plan of the year; a new plan replaces it")
    goals: list[str]
    planned_contacts: list[PlannedContact]
    products: list[str]
    responsible: list[Participant]
    notes: str | None
    created_by: str
    created_at: datetime
    current: bool = Field(description="False once a later revision replaced it")


# -- enquiries ----------------------------------------------------------------------------------
class EnquiryStatus(StrEnum):
    open = "open"
    answered = "answered"


class EnquiryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    channel: Channel
    subject: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    question: LongText
    received_at: AwareDatetime | None = Field(
        default=None, description="When the enquiry came in (default: now; not ahead of now)"
    )
    assigned_to: StaffId | None = Field(
        default=None,
        description="Who answers it: the caller or a staff member serving the customer "
        "(default: the customer's owner, else the caller)",
    )


class EnquiryAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: LongText


class EnquiryOut(BaseModel):
    id: str
    customer_id: str
    org_unit: str
    channel: Channel
    subject: str
    question: str
    received_at: datetime
    due_on: date = Field(description="The business date it is to be answered by")
    policy_version: str
    assigned_to: str
    recorded_by: str
    recorded_at: datetime
    status: EnquiryStatus
    answer: str | None
    answered_at: datetime | None
    answered_by: str | None
    late: bool = Field(
        description="Answered after its due date, or still open after it (on today's date)"
    )


# -- appointments -------------------------------------------------------------------------------
class AppointmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    starts_at: AwareDatetime = Field(description="When (ahead of now)")
    place: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    staff_id: StaffId | None = Field(
        default=None,
        description="Who meets the customer: the caller (default) or a staff member serving it",
    )
    purpose: LongText


class AppointmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    org_unit: str
    staff_id: str
    starts_at: datetime
    place: str
    purpose: str
    aum: Money = Field(description="The customer's financial assets it was booked on")
    aum_business_date: date | None
    booked_by: str
    booked_at: datetime


# -- the visit record report (附件5) ------------------------------------------------------------
class VisitReportRow(BaseModel):
    """One visit (its current version) as 附件5 客户经理拜访记录表 lists it."""

    visit_id: str
    visit_date: date = Field(description="Business date of the visit (Asia/Shanghai)")
    visited_at: datetime
    org_unit: str
    customer_id: str
    customer_name: str | None
    visit_type: VisitType
    channel: Channel
    participants: list[Participant]
    purpose: str
    agreed: str | None
    satisfaction: Satisfaction | None
    customer_comments: str | None
    needs_found: str | None
    information_given: str | None
    opportunities: list[str]
    product_followed_up: str | None
    next_contact_on: date | None
    next_contact_participants: list[str]
    recorded_by: str
    recorded_at: datetime
    revision: int
    corrects: str | None


class VisitReport(BaseModel):
    items: list[VisitReportRow]
    total: int = Field(ge=0)
    limit: int
    offset: int
    org_unit: str
    from_date: date
    to_date: date
    by_visit_type: dict[str, int] = Field(description="Visits of the period by type")
