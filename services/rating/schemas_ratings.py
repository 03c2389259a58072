"""Wire models of the scorecards and assessments 信用等级评估: snake_case, numbers as exact
decimal strings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    StrictStr,
    model_validator,
)

# A score or points with two places; on the wire an exact decimal string.
Points = Annotated[
    Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json")
]
CustomerId = Annotated[str, Field(min_length=36, max_length=36)]
# A factor's value: a number (as a string or a JSON number) or a choice.
InputValue = StrictStr | StrictInt | Decimal | None


class Grade(StrEnum):
    AAA = "AAA"
    AA = "AA"
    A = "A"
    BBB = "BBB"
    BB = "BB"
    B = "B"
    C = "C"


class AssessmentStatus(StrEnum):
    incomplete = "incomplete"
    assessed = "assessed"
    confirmed = "confirmed"
    rejected = "rejected"
    superseded = "superseded"


class RatingDecision(StrEnum):
    confirm = "confirm"
    reject = "reject"


# -- scorecards --------------------------------------------------------------------------------
class BinOut(BaseModel):
    min: Decimal | None = Field(description="Lower bound (inclusive); null: open below")
    label: str
    points: Points


class ChoiceOut(BaseModel):
    value: str
    label: str
    points: Points


class FactorOut(BaseModel):
    code: str
    name: str
    side: str = Field(description="financial or non_financial")
    source: str = Field(description="system: from the bank's figures; manual: the manager's")
    type: str = Field(description="number (bins) or choice")
    unit: str | None
    max_points: Points
    bins: list[BinOut]
    choices: list[ChoiceOut]


class GradeScaleOut(BaseModel):
    grade: Grade
    min_score: Points
    meaning: str


class ScorecardOut(BaseModel):
    """One scorecard version: its factors with their bins or choices, and its grade scale."""

    id: str
    version: str
    kinds: list[str]
    effective_from: date
    description: str
    max_score: Points
    factors: list[FactorOut]
    scale: list[GradeScaleOut]


# -- assessments -------------------------------------------------------------------------------
class AssessmentIn(BaseModel):
    """Assess a customer with the scorecard in force for its kind — or record the grade the
    bank's credit system gave it (``imported_grade`` with its ``source``)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    inputs: dict[str, InputValue] = Field(
        default_factory=dict,
        description="Factor code → value; the system fills the factors it knows",
    )
    proposed_grade: Grade | None = Field(
        default=None, description="A grade proposed instead of the computed one"
    )
    adjustment_reason: str | None = Field(
        default=None, max_length=2000, description="Required with proposed_grade"
    )
    imported_grade: Grade | None = Field(
        default=None, description="A grade from the bank's credit system, recorded as it is"
    )
    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=60,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The system the imported grade comes from",
    )
    campaign_id: str | None = Field(
        default=None,
        max_length=36,
        description="The running rating campaign 集中评级授信 this assessment is part of",
    )

    @model_validator(mode="after")
    def _imported_has_source(self) -> AssessmentIn:
        if (self.imported_grade is None) != (self.source is None):
            raise ValueError("imported_grade and source go together")
        if self.imported_grade is not None and (self.inputs or self.proposed_grade):
            raise ValueError("an imported grade comes without inputs or a proposed grade")
        return self


class FactorLineOut(BaseModel):
    """One row of the explanation: the value a factor read, its bin, points and maximum."""

    code: str
    name: str
    side: str
    value: str | None
    bin: str | None
    points: str
    max_points: str


class AssessmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    kind: str
    org_unit: str
    business_line: str
    scorecard_id: str
    scorecard_version: str
    status: AssessmentStatus
    score: Points
    computed_grade: Grade | None
    proposed_grade: Grade | None
    adjustment_reason: str | None
    final_grade: Grade | None
    inputs: dict[str, Any]
    explanation: list[FactorLineOut] = Field(validation_alias="lines")
    missing: list[str]
    trigger: str
    campaign_id: str | None
    assessed_by: str
    assessed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    valid_until: date | None
    version: int


class RatingDecisionIn(BaseModel):
    """An approver's decision on an assessment."""

    model_config = ConfigDict(extra="forbid")

    decision: RatingDecision
    grade: Grade | None = Field(
        default=None,
        description="The grade confirmed; default the proposed grade, else the computed one. A"
        " grade that is neither needs a note",
    )
    note: str | None = Field(default=None, max_length=2000, description="Required to reject")
