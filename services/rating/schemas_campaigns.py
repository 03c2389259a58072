"""Wire models of rating campaigns 集中评级授信: the campaign, its phases and its coverage.

Money is an exact decimal string with two places; a percentage is a decimal string with two
places ("87.50"), null when nothing is in scope.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from crmkit.schemas import CustomerKind

# CNY with two places; on the wire an exact decimal string, never a float.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
# A percentage of the 100% goal, two places, as a string.
Percent = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
OrgUnitPath = Annotated[str, Field(pattern=r"^/", max_length=200)]


class CampaignSegment(StrEnum):
    """Which customers of the scope the campaign covers."""

    all = "all"  # stock customers and willing target customers
    stock = "stock"  # 存量客户: in a relationship (active or dormant)
    target = "target"  # 目标客户 willing to borrow: those with an assessment in the campaign


class CampaignStatus(StrEnum):
    draft = "draft"
    running = "running"  # the batch rates the stock customers, chunk by chunk
    done = "done"  # the batch walked every customer in scope


class Phase(StrEnum):
    collection = "collection"  # 信息采集
    entry = "entry"  # 信息录入及信用等级评定
    approval = "approval"  # 综合额度授信


PHASE_NAMES: dict[Phase, str] = {
    Phase.collection: "Information collection 信息采集",
    Phase.entry: "Entry and rating 信息录入及信用等级评定",
    Phase.approval: "Limits and approval 综合额度授信",
}


class PhaseDates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_on: date
    ends_on: date

    @model_validator(mode="after")
    def _ordered(self) -> PhaseDates:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on comes before starts_on")
        return self


class PhasesIn(BaseModel):
    """The three phases, one after the other (a phase starts after the previous one ends)."""

    model_config = ConfigDict(extra="forbid")

    collection: PhaseDates
    entry: PhaseDates
    approval: PhaseDates

    @model_validator(mode="after")
    def _in_sequence(self) -> PhasesIn:
        if self.entry.starts_on <= self.collection.ends_on:
            raise ValueError("entry starts after collection ends")
        if self.approval.starts_on <= self.entry.ends_on:
            raise ValueError("approval starts after entry ends")
        return self


class CampaignIn(BaseModel):
    """A new campaign; without ``kinds`` every kind but farm households (they have their own
    programme), without ``org_unit`` the caller's unit, without ``phases`` the seed's dates of
    the year (8/20 to 8/31, 9/1 to 9/15, 9/16 to 9/30)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    year: int = Field(ge=2000, le=2100)
    kinds: list[CustomerKind] | None = Field(default=None, min_length=1)
    org_unit: OrgUnitPath | None = None
    segment: CampaignSegment = CampaignSegment.all
    phases: PhasesIn | None = None

    @model_validator(mode="after")
    def _distinct_kinds(self) -> CampaignIn:
        if self.kinds is not None and len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds repeat")
        return self


class TargetsIn(BaseModel):
    """Target customers 目标客户 willing to borrow: each is assessed in the campaign now."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[Annotated[str, Field(min_length=36, max_length=36)]] = Field(
        min_length=1, max_length=500
    )


class TargetOut(BaseModel):
    customer_id: str
    assessment_id: str
    status: str = Field(description="incomplete (inputs missing) or assessed")
    computed_grade: str | None
    already: bool = Field(description="It had an assessment in the campaign: left as it was")


class PhaseOut(BaseModel):
    phase: Phase
    name: str
    starts_on: date
    ends_on: date
    state: str = Field(description="upcoming, current or ended (by the business date)")


class CoverageRow(BaseModel):
    """Coverage of one org unit, business line or the whole scope, against the 100% goal.

    ``in_scope`` = ``stock`` + ``target``; ``collected`` have core-banking figures or an
    assessment entered by staff; ``rated`` have a complete assessment (a grade computed) in the
    campaign; ``confirmed`` a grade confirmed in it; ``limit_approved`` a credit limit approved
    in it. "In the campaign": carrying its id, or made within its dates.
    """

    org_unit: str | None = None
    business_line: str | None = None
    stock: int
    target: int
    in_scope: int
    collected: int
    rated: int
    confirmed: int
    limit_approved: int
    collected_pct: Percent | None
    rated_pct: Percent | None
    confirmed_pct: Percent | None
    limit_approved_pct: Percent | None
    batch_graded: int = Field(description="Assessments with a grade the campaign's batch wrote")
    batch_incomplete: int = Field(description="Assessments with inputs missing it wrote")
    limits_indicated: int = Field(description="Graded customers with an indicative limit")
    indicative_limit_total: Money = Field(
        description="Sum of the indicative limits 参考授信额度 the batch calculated"
    )


class Coverage(BaseModel):
    goal_pct: Percent = Field(description="The goal: every customer in scope (100%)")
    scope: str = Field(description="The org subtree the figures cover (the caller's part)")
    total: CoverageRow
    by_org_unit: list[CoverageRow]
    by_business_line: list[CoverageRow]


class CampaignSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    year: int
    org_unit: str
    kinds: list[str]
    segment: str
    status: str
    phases: list[PhaseOut] = Field(default_factory=list)
    current_phase: Phase | None = Field(
        default=None, description="The phase the business date falls in; null outside them"
    )
    cursor: str | None = Field(description="The last customer id the batch committed")
    walked: int
    graded: int
    incomplete: int
    skipped: int
    created_by: str
    created_at: datetime
    started_by: str | None
    started_at: datetime | None
    finished_at: datetime | None
    version: int


class CampaignOut(CampaignSummary):
    business_date: date
    last_error: str | None
    coverage: Coverage | None = None
