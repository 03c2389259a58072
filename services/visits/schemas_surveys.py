"""Wire models of satisfaction surveys 满意度调查: the survey and its sample, responses and the
results by branch and manager. Scores and rates are exact decimal strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

# A score on 0-100 with two places, as a string.
Score = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
# A ratio such as a response rate, four places, as a string.
Ratio = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.4f}", return_type=str, when_used="json"),
]
MAX_SEED = 2**63 - 1


class Mode(StrEnum):
    """How a sampled customer is surveyed (seed 002 l.35)."""

    phone = "phone"  # 电话访问: high-tier customers
    face_to_face = "face_to_face"  # 面访: the others


class Scale(BaseModel):
    """The answers a question takes: whole numbers from ``min`` to ``max``."""

    model_config = ConfigDict(extra="forbid")

    min: int = Field(ge=0, le=100)
    max: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError("a scale's max must be above its min")
        return self


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=500)
    scale: Scale


class SurveyIn(BaseModel):
    """A survey to start: its sample is drawn at once."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    org_unit: str = Field(pattern=r"^/[A-Za-z0-9_./-]*$", max_length=200)
    sample_size: int = Field(ge=1, le=100_000)
    stratify_by_tier: bool = False
    seed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        description="Draws the same sample from the same customers; generated when absent",
    )
    questions: list[QuestionIn] = Field(min_length=1, max_length=50)


class QuestionOut(BaseModel):
    number: int = Field(description="1 for the first question")
    text: str
    scale: Scale


class StratumOut(BaseModel):
    tier: str = Field(description="A value tier, 'unrated', or 'all' when not stratified")
    candidates: int
    drawn: int


class SampledOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    position: int = Field(description="Draw order, from 1")
    org_unit: str
    tier: str
    high_tier: bool
    mode: Mode
    owner_id: str | None = Field(description="The customer's owner at the draw")
    responded: bool


class SurveyOut(BaseModel):
    id: str
    name: str
    org_unit: str
    seed: int
    stratify_by_tier: bool
    sample_size: int = Field(description="Asked for")
    population: int = Field(description="Active customers of the subtree at the draw")
    drawn: int = Field(description="min(sample_size, population)")
    questions: list[QuestionOut]
    strata: list[StratumOut]
    policy_version: str
    started_by: str
    started_at: datetime
    responded: int


class SurveyDetail(SurveyOut):
    sample: list[SampledOut]


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: int = Field(ge=1, description="The question's number")
    value: int


class ResponseIn(BaseModel):
    """A sampled customer's answers, one for every question."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=36, max_length=36)
    answers: list[AnswerIn] = Field(min_length=1, max_length=50)


class ResponseOut(BaseModel):
    survey_id: str
    customer_id: str
    org_unit: str
    mode: Mode
    manager_id: str | None = Field(description="The customer's owner when the response came")
    answers: list[AnswerIn]
    score: Score = Field(description="Mean of the answers on a 0-100 scale, two places")
    recorded_by: str
    responded_at: datetime


class GroupResult(BaseModel):
    """Sampled, responded, the response rate and the mean score of a group."""

    key: str | None = Field(
        description="'all', the org unit, the manager's staff id (null: no owner) or the mode"
    )
    sampled: int | None = Field(description="Null by manager: the sample is drawn by branch")
    responded: int
    response_rate: Ratio | None = Field(description="responded / sampled; null if none sampled")
    mean_score: Score | None = Field(description="Mean of the responses' scores; null if none")


class SurveyResults(BaseModel):
    survey_id: str
    overall: GroupResult
    by_branch: list[GroupResult]
    by_manager: list[GroupResult]
    by_mode: list[GroupResult]
