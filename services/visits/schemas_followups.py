"""Wire models of the follow-up plans: a customer's care state and next contact due, the overdue
lists, the daily agenda 日工作报告, day plans and the activity reports."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

# CNY with two places; on the wire an exact decimal string, never a float.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]


class CareImportance(StrEnum):
    """The owner's assessment of a customer's importance 客户重要程度: it scales the plan's
    interval (the factors are in the follow-up policy)."""

    high = "high"
    normal = "normal"
    low = "low"


class DueReason(StrEnum):
    """Why the next contact is due: the tier's plan, or a reason beyond it."""

    cycle = "cycle"  # 定期维护
    post_sale = "post_sale"  # 售后跟踪
    risk = "risk"  # 风险预警
    event = "event"  # 遇事看望


class PlanOut(BaseModel):
    """The contact plan that applies to the customer."""

    id: str
    name: str
    interval_days: int = Field(description="The plan's interval times the importance factor")
    channel: str
    greetings: bool


class CareOut(BaseModel):
    """A customer's follow-up state: tiers, importance, owner, last contact and next due."""

    customer_id: str
    name: str
    status: str
    org_unit: str
    value_tier: str | None
    wealth_layer: str | None
    vip_level: str | None
    aum: Money | None = Field(description="Financial assets on business_date")
    business_date: date | None
    importance: CareImportance
    owner_id: str | None
    last_contact_at: datetime | None
    last_channel: str | None
    next_due_on: date | None = Field(description="Business date (Asia/Shanghai); null: none due")
    due_reason: DueReason | None
    overdue_days: int = Field(description="Days past the due date today; 0 when not overdue")
    plan: PlanOut | None = Field(description="The plan in force for the tiers; null when closed")
    plan_version: str | None = Field(description="The policy version the due date was derived by")
    risk_status: str | None
    credit_limit_expires_on: date | None
    updated_at: datetime


class CarePatch(BaseModel):
    """The owner's assessment of the customer's importance (``normal`` resets it)."""

    model_config = ConfigDict(extra="forbid")

    importance: CareImportance


class OverdueItem(BaseModel):
    customer_id: str
    name: str
    org_unit: str
    owner_id: str | None = Field(description="Null: the customer has no owner")
    value_tier: str | None
    wealth_layer: str | None
    vip_level: str | None
    importance: CareImportance
    next_due_on: date
    due_reason: DueReason | None
    overdue_days: int
    last_contact_at: datetime | None
    last_channel: str | None


class OverdueGroup(BaseModel):
    """Overdue customers of one branch and manager (owner null: without an owner)."""

    org_unit: str
    owner_id: str | None
    customers: int
    most_overdue_days: int


class OverdueReport(BaseModel):
    as_of: date = Field(description="The business date: due before it is overdue")
    items: list[OverdueItem]
    total: int
    limit: int
    offset: int
    groups: list[OverdueGroup] = Field(description="Per branch and manager, in the whole scope")


class ScoreParts(BaseModel):
    """What makes up an agenda entry's score (the weights are in the follow-up policy)."""

    tier: int
    importance: int
    overdue: int
    complaints: int
    risk: int
    limit: int
    reason: int


class AgendaItem(BaseModel):
    customer_id: str
    name: str
    org_unit: str
    value_tier: str | None
    wealth_layer: str | None
    vip_level: str | None
    importance: CareImportance
    next_due_on: date
    due_reason: DueReason | None
    overdue_days: int
    channel: str = Field(description="How the plan says to make the contact")
    last_contact_at: datetime | None
    last_channel: str | None
    open_complaints: int
    risk_status: str | None
    credit_limit_expires_on: date | None
    limit_expiring: bool = Field(description="The credit limit ends within the policy's days")
    score: int
    score_parts: ScoreParts


class ActivityCounts(BaseModel):
    """A staff member's recorded activity over a span of days."""

    visits: int = Field(description="Contacts recorded by them or with them present")
    by_channel: dict[str, int]
    customers_contacted: int
    opportunities: int = Field(description="Product opportunities noted in those records")
    due_met: int = Field(
        description="Contacts with customers of their book that were due (within the policy's "
        "window before the due date, or after it)"
    )


class Agenda(BaseModel):
    """A manager's agenda for a day 日工作报告: the customers due by then, most important first,
    and the day's activity so far."""

    staff_id: str
    date: date
    plan_version: str
    due: int = Field(description="Customers due on or before the date")
    overdue: int = Field(description="Of them, due before the date")
    items: list[AgendaItem]
    total: int
    limit: int
    offset: int
    activity: ActivityCounts
    day_plan_saved: bool
    holidays_ahead: list[HolidayAhead]


class HolidayAhead(BaseModel):
    """A holiday within the greeting window, and the customers of this agenda's owner to greet."""

    id: str
    name: str
    on: date
    customers_to_greet: int


class PlanTask(BaseModel):
    """A task of a day plan: a customer to contact (``customer_id``), or a free task."""

    model_config = ConfigDict(extra="forbid")

    customer_id: uuid.UUID | None = None
    task: str | None = Field(default=None, min_length=1, max_length=500)
    note: str | None = Field(default=None, max_length=1000)
    done: bool = False

    @model_validator(mode="after")
    def _something(self) -> PlanTask:
        if self.customer_id is None and self.task is None:
            raise ValueError("name a customer_id or a task")
        return self


class EveningActuals(BaseModel):
    """The evening review's counts 夕会 as the staff member reports them."""

    model_config = ConfigDict(extra="forbid")

    visits: int = Field(default=0, ge=0, le=1000)
    calls: int = Field(default=0, ge=0, le=1000)
    messages: int = Field(default=0, ge=0, le=10000)
    customers_contacted: int = Field(default=0, ge=0, le=10000)
    opportunities: int = Field(default=0, ge=0, le=1000)
    products_sold: int = Field(default=0, ge=0, le=1000)
    new_customers: int = Field(default=0, ge=0, le=1000)


class EveningReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actuals: EveningActuals = Field(default_factory=EveningActuals)
    notes: str | None = Field(default=None, max_length=4000)


class DayPlanIn(BaseModel):
    """The whole plan of the day: first, second and minor tasks 首要、次要、相对不太重要的事务
    (seed 001), and the evening review once there is one. Replacing a saved plan names the
    version read (``version`` or ``If-Match``)."""

    model_config = ConfigDict(extra="forbid")

    primary: list[PlanTask] = Field(default_factory=list, max_length=100)
    secondary: list[PlanTask] = Field(default_factory=list, max_length=100)
    minor: list[PlanTask] = Field(default_factory=list, max_length=100)
    evening: EveningReview | None = None
    version: int | None = Field(default=None, ge=1)


class DayPlanOut(BaseModel):
    staff_id: str
    date: date
    org_unit: str
    primary: list[PlanTask]
    secondary: list[PlanTask]
    minor: list[PlanTask]
    evening: EveningReview | None
    version: int
    created_at: datetime
    updated_at: datetime
    recorded: ActivityCounts = Field(description="The activity recorded in the system that day")


class ActivityPeriod(StrEnum):
    day = "day"
    week = "week"  # Monday to Sunday
    month = "month"


class ActivityRow(BaseModel):
    """One employee's activity volume and output over the period (活动量和产出)."""

    staff_id: str
    visits: int
    in_person: int
    phone: int
    sms: int
    letter: int
    event: int
    customers_contacted: int
    due_met: int
    overdue_now: int = Field(description="Customers of their book overdue today")
    book: int = Field(description="Customers they own today")
    opportunities: int
    leads_identified: int = Field(description="Walk-in customers identified 柜员识别 (附件6)")
    event_leads: int = Field(description="Leads recorded after marketing events")
    event_sales: int = Field(description="Sales recorded after marketing events")
    sales_amount: Money = Field(description="The amount of those sales")
    day_plans: int = Field(description="Days of the period with a saved day plan")
    evening_reviews: int
    reported: EveningActuals = Field(description="The evening reviews' counts, summed")


class ActivityReport(BaseModel):
    org_unit: str | None
    period: ActivityPeriod
    start: date
    end: date
    as_of: date
    rows: list[ActivityRow]
    total: ActivityRow = Field(description="The rows summed (staff_id: total)")


Agenda.model_rebuild()
