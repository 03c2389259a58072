"""Tables of rating campaigns 集中评级授信: the campaign, its phases and its progress."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import Money, UtcDateTime
from services.rating.models import Base


class RatingCampaign(Base):
    """A rating campaign of one year over an org subtree 集中评级授信.

    Scope: the customers of ``org_unit`` and the units below it whose kind is one of ``kinds``;
    ``segment`` says which of them: ``stock`` customers (in a relationship: status active or
    dormant), ``target`` customers willing to borrow (those with an assessment in the campaign),
    or ``all`` of both. The three phases are dates 信息采集 (collection), 信息录入及信用等级评定
    (entry and rating), 综合额度授信 (limits and approval).

    ``status``: ``draft`` → ``running`` (its batch rates the stock customers, chunk by chunk)
    → ``done`` (the batch walked every customer). ``cursor`` is the last customer id the batch
    committed; it moves in the transaction of the chunk's assessments, so a restart resumes
    after it and no customer is rated twice.
    """

    __tablename__ = "rating_campaigns"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer, index=True)
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    segment: Mapped[str] = mapped_column(String(10))
    collection_from: Mapped[date] = mapped_column(Date)
    collection_until: Mapped[date] = mapped_column(Date)
    entry_from: Mapped[date] = mapped_column(Date)
    entry_until: Mapped[date] = mapped_column(Date)
    approval_from: Mapped[date] = mapped_column(Date)
    approval_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), index=True)
    cursor: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # What the batch did: customers walked; of them rated with a grade, rated with inputs
    # missing, and left as they were (already assessed in the campaign, or no scorecard in force
    # for their kind).
    walked: Mapped[int] = mapped_column(Integer)
    graded: Mapped[int] = mapped_column(Integer)
    incomplete: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class RatingCampaignProgress(Base):
    """What a campaign's batch wrote per org unit and business line: assessments with a grade
    and with inputs missing, and the indicative limits 参考授信额度 it calculated for the graded
    customers (the sum, and how many had the inputs the formula needs). A limit is proposed
    only on a confirmed grade; the indicative figure plans the 综合额度授信 phase."""

    __tablename__ = "rating_campaign_progress"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("rating_campaigns.id"), primary_key=True)
    org_unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    business_line: Mapped[str] = mapped_column(String(30), primary_key=True)
    graded: Mapped[int] = mapped_column(Integer)
    incomplete: Mapped[int] = mapped_column(Integer)
    limits_indicated: Mapped[int] = mapped_column(Integer)
    indicative_limit_total: Mapped[Decimal] = mapped_column(Money)
