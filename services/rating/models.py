"""Tables of the rating database: assessments 信用等级评估, credit limits 授信额度 and their steps,
with the copies of customers, owners and figures it keeps from other services' events."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import BigIntId, KitTables, Money, ServiceBase, UtcDateTime, new_metadata
from crmkit.replicas import define_customer_refs, define_owner_refs


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


kit = KitTables.define(Base.metadata)
# This service's copy of the customers it serves, kept from customer events.
customer_refs = define_customer_refs(Base.metadata)
# Who owns and serves each customer, kept from the assignment service's ownership events.
owner_refs = define_owner_refs(Base.metadata)


class CustomerFigures(Base):
    """What the rating needs of a customer beyond its copy, kept from customer events: its tiers
    (``customer.created`` / ``.updated`` / ``.tier_changed``) and core banking's latest figures
    (``customer.financials_updated``), with the previous deposit figure for the sharp-drop
    signal of the early warning."""

    __tablename__ = "customer_figures"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    vip_level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    value_tier: Mapped[str | None] = mapped_column(String(10), nullable=True)
    business_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    deposits: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    loans: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    aum: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    overdue_amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    previous_business_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    previous_deposits: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Assessment(Base):
    """One credit-grade assessment 客户信用等级评估表 of a customer by a versioned scorecard.

    ``status``: ``incomplete`` (inputs missing, listed in ``missing``; no grade is guessed),
    ``assessed`` (scored, awaiting confirmation), ``confirmed``, ``rejected``, ``superseded``
    (a newer assessment of the customer replaced it before it was decided).
    """

    __tablename__ = "assessments"
    __table_args__ = (Index("ix_assessments_customer_assessed", "customer_id", "assessed_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(30))
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    business_line: Mapped[str] = mapped_column(String(30))
    scorecard_id: Mapped[str] = mapped_column(String(80))
    scorecard_version: Mapped[str] = mapped_column(String(20))
    # Factor code → the value used (numbers as exact decimal strings).
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The explanation: one entry per factor (value, bin, points, maximum).
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    missing: Mapped[list[str]] = mapped_column(JSON)
    score: Mapped[Decimal] = mapped_column(Numeric(7, 2))
    computed_grade: Mapped[str | None] = mapped_column(String(5), nullable=True)
    proposed_grade: Mapped[str | None] = mapped_column(String(5), nullable=True)
    adjustment_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    final_grade: Mapped[str | None] = mapped_column(String(5), nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # What started it: manual, financials, status, guarantees, yearly, campaign.
    trigger: Mapped[str] = mapped_column(String(20))
    campaign_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    assessed_by: Mapped[str] = mapped_column(String(100))
    assessed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A confirmed grade holds until this business date; yearly re-rating proposes a new one.
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class CreditLimit(Base):
    """A comprehensive credit limit 综合授信 of a customer, from proposal to expiry.

    ``status``: ``proposed`` → ``reviewed`` → (``committee`` when the amount needs the credit
    committee) → ``approved`` or ``rejected``; an approved limit becomes ``expired`` after its
    ``expiry_date`` or ``superseded`` by a newer approved limit of the customer.
    Amounts are CNY; ``total_amount`` = credit + guaranteed + secured + adjustment.
    """

    __tablename__ = "credit_limits"
    __table_args__ = (Index("ix_credit_limits_customer_proposed", "customer_id", "proposed_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(30))
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    business_line: Mapped[str] = mapped_column(String(30))
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"), index=True)
    grade: Mapped[str] = mapped_column(String(5))
    formula_id: Mapped[str] = mapped_column(String(80))
    formula_version: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    # What the calculation used (repayment capacity, net assets, existing debt …).
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The calculation 授信额度测算表, step by step.
    calculation: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    collaterals: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    guarantors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    sub_limits: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    credit_amount: Mapped[Decimal] = mapped_column(Money)
    guaranteed_amount: Mapped[Decimal] = mapped_column(Money)
    secured_amount: Mapped[Decimal] = mapped_column(Money)
    adjustment_amount: Mapped[Decimal] = mapped_column(Money)
    adjustment_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    total_amount: Mapped[Decimal] = mapped_column(Money)
    revolving: Mapped[bool] = mapped_column(Boolean)
    term_months: Mapped[int] = mapped_column(Integer)
    # The VIP pricing hint and its basis, as the policy states it.
    pricing: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    investigation_report: Mapped[str] = mapped_column(Text)
    risk_analysis: Mapped[str] = mapped_column(Text)
    campaign_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    proposed_by: Mapped[str] = mapped_column(String(100))
    proposed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The deadline of the step the limit waits for (限时办结); None once decided.
    step_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    review_opinion: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    expiry_date: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class CreditLimitStep(Base):
    """One recorded step of a limit's approval: who did what, when, and by when it was due."""

    __tablename__ = "credit_limit_steps"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    credit_limit_id: Mapped[str] = mapped_column(ForeignKey("credit_limits.id"), index=True)
    step: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    late: Mapped[bool] = mapped_column(Boolean, default=False)


# The tables of the other parts of the service register on the same metadata.
from services.rating import models_campaigns, models_committee, models_risk  # noqa: E402,F401
