"""Tables: Satisfaction surveys 满意度调查: samples and responses.

A survey draws its sample once, when it starts: a simple random sample 简单抽样 of the active
customers of an org subtree, reproducible from its seed. Each sampled customer is contacted by
the mode its tier calls for (phone for high-tier, face to face for the rest); a response is
scored and counted for the manager who owned the customer when it was given.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import UtcDateTime
from services.visits.models import Base


class Survey(Base):
    """A satisfaction survey: its questions (each with its scale), the seed its sample was drawn
    from, and how the sample was allocated (``strata``: per tier, the candidates and the number
    drawn; one ``all`` stratum when not stratified)."""

    __tablename__ = "surveys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    stratify_by_tier: Mapped[bool] = mapped_column(Boolean)
    sample_size: Mapped[int] = mapped_column(Integer)
    population: Mapped[int] = mapped_column(Integer)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    strata: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    policy_version: Mapped[str] = mapped_column(String(20))
    started_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SurveySample(Base):
    """A customer drawn into a survey's sample, in draw order (``position``), with its org unit,
    tier and owner at the draw and the mode it is to be surveyed by."""

    __tablename__ = "survey_samples"

    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    org_unit: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(10))
    high_tier: Mapped[bool] = mapped_column(Boolean)
    mode: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[str | None] = mapped_column(String(100), nullable=True)


class SurveyResponse(Base):
    """A sampled customer's answers (one response each) and its score on 0-100; ``manager_id``
    is the customer's owner when the response was recorded (None: no owner then)."""

    __tablename__ = "survey_responses"

    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_unit: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(20))
    manager_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    answers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    score: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    recorded_by: Mapped[str] = mapped_column(String(100))
    responded_at: Mapped[datetime] = mapped_column(UtcDateTime)
