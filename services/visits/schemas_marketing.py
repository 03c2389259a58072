"""Wire models of the teller identification register 柜员识别客户登记表 (附件6) and of marketing
events 营销活动. Money is an exact decimal string with two places; identity numbers and phones
leave the service masked, except through an audited reveal."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from crmkit.schemas import CustomerKind

# CNY with two places; on the wire an exact decimal string, never a float.
Money = Annotated[
    Decimal,
    Field(max_digits=18, decimal_places=2),
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
PositiveMoney = Annotated[Money, Field(gt=0)]
# A ratio such as an attendance rate, four places, as a string.
Ratio = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.4f}", return_type=str, when_used="json"),
]
OrgPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9_./-]*$", max_length=200)]
StaffId = Annotated[str, Field(min_length=1, max_length=100)]
CustomerId = Annotated[str, Field(min_length=1, max_length=36)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- the teller register ------------------------------------------------------------------------


class BusinessLine(StrEnum):
    agricultural = "agricultural"
    corporate = "corporate"
    personal = "personal"


class FlagReason(StrEnum):
    """Why the teller flagged the customer 识别原因."""

    funds = "funds"  # large or frequent funds 资金量大
    product_need = "product_need"  # asked for or needs a product 产品需求
    other_bank = "other_bank"  # mainly another bank's customer 他行客户
    business_owner = "business_owner"  # runs a business 企业主 / 个体户
    other = "other"


class PreliminaryValue(StrEnum):
    """The teller's preliminary value judgement 初步价值判断."""

    high = "high"
    middle = "middle"
    general = "general"


class ReferredRole(StrEnum):
    customer_manager = "customer_manager"  # 客户经理
    wealth_manager = "wealth_manager"  # 理财经理


class FollowUpResult(StrEnum):
    """What the referred manager's follow-up came to 跟进结果."""

    contacted = "contacted"  # reached, in progress
    converted = "converted"  # opened an account or bought a product
    declined = "declined"
    unreachable = "unreachable"


class RevealableField(StrEnum):
    national_id = "national_id"
    phone = "phone"


class TellerLeadIn(_In):
    """A walk-in customer a teller flagged (附件6). The outlet and the teller are the caller's;
    the date is today's business date unless given. Name a known customer by ``customer_id``
    (its name, kind and line are then taken from this service's copy), else give the name."""

    identified_on: date | None = Field(default=None, description="Business date; today if absent")
    customer_id: CustomerId | None = Field(default=None, description="When already a customer")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: CustomerKind | None = Field(default=None, description="individual if not known")
    business_line: BusinessLine | None = Field(
        default=None, description="The line to refer it to; from the kind if absent"
    )
    national_id: str | None = Field(
        default=None, max_length=30, description="Resident id number; stored encrypted"
    )
    phone: str | None = Field(
        default=None, max_length=30, description="Mainland mobile number; stored encrypted"
    )
    business: str | None = Field(
        default=None, max_length=200, description="Business handled at the counter 办理业务"
    )
    amount: PositiveMoney | None = Field(default=None, description="Its amount, CNY")
    reasons: list[FlagReason] = Field(min_length=1, max_length=5)
    observation: str | None = Field(
        default=None, max_length=500, description="What was observed; required with reason other"
    )
    current_bank: str | None = Field(default=None, max_length=100, description="现开户行")
    preliminary_value: PreliminaryValue
    potential_vip: bool = Field(default=False, description="A potential VIP 潜在贵宾客户")
    referred_to: StaffId | None = Field(
        default=None, description="Staff id of the customer or wealth manager referred to"
    )
    referred_role: ReferredRole | None = None


class ResultIn(_In):
    result: FollowUpResult
    note: str | None = Field(default=None, max_length=500)


class TellerRevealIn(_In):
    field: RevealableField
    reason: str = Field(min_length=5, max_length=500, description="Why the clear value is needed")


class TellerLeadOut(BaseModel):
    """A register entry as every reader sees it: identity number and phone masked."""

    id: str
    identified_on: date
    org_unit: str
    teller_id: str
    customer_id: str | None
    name: str
    kind: str
    business_line: str
    national_id: str | None = Field(description="Masked: region and last four")
    phone: str | None = Field(description="Masked: first three and last four")
    business: str | None
    amount: Money | None
    reasons: list[str]
    observation: str | None
    current_bank: str | None
    preliminary_value: str
    potential_vip: bool
    referred_to: str | None
    referred_role: str | None
    result: str | None
    result_note: str | None
    result_at: datetime | None
    result_by: str | None
    version: int
    created_at: datetime
    may_reveal: bool = Field(description="Whether the caller may reveal the masked fields")


class TellerRevealOut(BaseModel):
    lead_id: str
    field: str
    value: str | None
    audit_id: int


class TellerRegisterRow(BaseModel):
    """One row of 附件6 柜员识别客户登记表."""

    id: str
    identified_on: date
    org_unit: str
    teller_id: str
    customer_id: str | None
    name: str
    national_id: str | None = Field(description="Masked")
    phone: str | None = Field(description="Masked")
    business: str | None
    amount: Money | None
    reasons: list[str]
    preliminary_value: str
    potential_vip: bool
    referred_to: str | None
    referred_role: str | None
    result: str | None
    result_note: str | None


class RegisterSummary(BaseModel):
    identified: int
    referred: int
    followed_up: int
    converted: int
    conversion_rate: Ratio | None = Field(description="converted / referred; null if none")


class RegisterReport(BaseModel):
    """附件6 for an org subtree and a period of business dates."""

    org_unit: str
    date_from: date
    date_to: date
    summary: RegisterSummary
    items: list[TellerRegisterRow]
    total: int
    limit: int
    offset: int


# -- marketing events ---------------------------------------------------------------------------
class EventKind(StrEnum):
    salon = "salon"  # 沙龙
    customer_gathering = "customer_gathering"  # 客户联谊会
    high_end = "high_end"  # 高端客户活动
    other = "other"


class InviteChannel(StrEnum):
    """How the invitation reaches the customer: an SMS sent by the notify service, or a
    reminder to the owner to call, write or invite in person."""

    sms = "sms"
    phone = "phone"
    letter = "letter"
    in_person = "in_person"


class OutcomeKind(StrEnum):
    lead = "lead"  # an opportunity to follow up
    sale = "sale"


class MarketingEventIn(_In):
    name: str = Field(min_length=1, max_length=200)
    kind: EventKind
    held_on: date
    place: str = Field(min_length=1, max_length=200)
    org_unit: OrgPath | None = Field(default=None, description="The caller's unit if absent")
    budget: Money | None = Field(default=None, ge=0)
    description: str | None = Field(default=None, max_length=1000)


class InviteesIn(_In):
    customer_ids: list[CustomerId] = Field(min_length=1, max_length=500)
    channel: InviteChannel = InviteChannel.sms


class AttendanceIn(_In):
    customer_id: CustomerId
    attended: bool


class OutcomeIn(_In):
    customer_id: CustomerId
    kind: OutcomeKind
    product: str = Field(min_length=1, max_length=80)
    amount: PositiveMoney | None = None
    note: str | None = Field(default=None, max_length=500)


class MarketingEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    held_on: date
    place: str
    org_unit: str
    budget: Money | None
    description: str | None
    created_at: datetime
    created_by: str


class OutcomeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: str
    kind: str
    product: str
    amount: Money | None
    note: str | None
    recorded_at: datetime
    recorded_by: str


class InviteeOut(BaseModel):
    customer_id: str
    name: str
    owner_id: str | None
    channel: str
    invited_at: datetime
    invited_by: str
    attended: bool | None
    attendance_at: datetime | None
    attendance_by: str | None


class EventCounts(BaseModel):
    """How the event did: invited → attended → leads and sales."""

    invited: int
    attended: int
    absent: int
    attendance_unknown: int
    leads: int
    sales: int
    sales_amount: Money
    customers_with_lead: int = Field(description="Attendees with a lead or a sale")
    customers_with_sale: int
    attendance_rate: Ratio | None = Field(description="attended / invited; null if none")
    lead_rate: Ratio | None = Field(description="customers with a lead or sale / attended")
    conversion_rate: Ratio | None = Field(description="customers with a sale / attended")


class MarketingEventDetail(MarketingEventOut):
    invitees: list[InviteeOut]
    outcomes: list[OutcomeOut]
    counts: EventCounts


class InviteResult(BaseModel):
    event_id: str
    invited: list[str] = Field(description="Invited now: one marketing_event.invited each")
    already_invited: list[str] = Field(description="Invited before: nothing sent again")
