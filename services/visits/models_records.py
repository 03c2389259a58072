"""Tables: Visit records 拜访记录, pre-visit plans, service plans, enquiries and appointments.

Visit records are append-only: a row is never updated or deleted. A correction is a new row that
names the row it corrects (``corrects``, unique: a record is corrected once, so the versions of
one contact form a line from the first record, ``root_id``, numbered by ``revision``); the current
version of a contact is the row no other row corrects.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crmkit.db import Money, UtcDateTime
from services.visits.models import Base


class VisitPlan(Base):
    """A pre-visit plan 访问计划 (seed 001, 销售访问 1.): who goes and in what role, when, how, what
    to ask, what to bring, what the customer needs and may ask and how to answer."""

    __tablename__ = "visit_plans"
    __table_args__ = (Index("ix_visit_plans_customer_planned", "customer_id", "planned_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    planned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    channel: Mapped[str] = mapped_column(String(20))
    visit_type: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(Text)
    # [{"staff_id", "role"}]: the participants and their roles 参加访问的人员及分工.
    participants: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    questions: Mapped[list[str]] = mapped_column(JSON)
    materials: Mapped[list[str]] = mapped_column(JSON)
    customer_needs: Mapped[str | None] = mapped_column(Text, nullable=True)
    # [{"question", "answer"}]: what the customer may ask and how to answer it.
    likely_questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Visit(Base):
    """One version of a contact with a customer 客户经理拜访记录 (附件5). Never updated."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_customer_visited", "customer_id", "visited_at"),
        UniqueConstraint("root_id", "revision", name="uq_visits_root_revision"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    # The customer's org unit when the visit was recorded (the report's unit).
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    visited_at: Mapped[datetime] = mapped_column(UtcDateTime)
    channel: Mapped[str] = mapped_column(String(20))
    visit_type: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(Text)
    agreed: Mapped[str | None] = mapped_column(Text, nullable=True)
    satisfaction: Mapped[str | None] = mapped_column(String(20), nullable=True)
    customer_comments: Mapped[str | None] = mapped_column(Text, nullable=True)
    needs_found: Mapped[str | None] = mapped_column(Text, nullable=True)
    information_given: Mapped[str | None] = mapped_column(Text, nullable=True)
    opportunities: Mapped[list[str]] = mapped_column(JSON)
    product_followed_up: Mapped[str | None] = mapped_column(String(40), nullable=True)
    next_contact_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    next_contact_participants: Mapped[list[str]] = mapped_column(JSON)
    plan_id: Mapped[str | None] = mapped_column(
        ForeignKey("visit_plans.id"), nullable=True, index=True
    )
    corrects: Mapped[str | None] = mapped_column(
        ForeignKey("visits.id"), nullable=True, unique=True
    )
    correction_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    root_id: Mapped[str] = mapped_column(String(36))
    revision: Mapped[int] = mapped_column(Integer)
    recorded_by: Mapped[str] = mapped_column(String(100), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)

    participants: Mapped[list[VisitParticipant]] = relationship(
        order_by="VisitParticipant.position", lazy="selectin"
    )


class VisitParticipant(Base):
    """A staff member present at a visit and their role in it 分工 (the first: who led it)."""

    __tablename__ = "visit_participants"

    visit_id: Mapped[str] = mapped_column(ForeignKey("visits.id"), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)


class ServicePlan(Base):
    """A yearly service plan 服务方案 for an important high-end customer, kept by its team: goals,
    planned contacts, products and the team members responsible. A new plan for the same
    customer and year is the next revision; the earlier ones stay."""

    __tablename__ = "service_plans"
    __table_args__ = (
        UniqueConstraint(
            "customer_id", "year", "revision", name="uq_service_plans_customer_year_revision"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    year: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    goals: Mapped[list[str]] = mapped_column(JSON)
    # [{"planned_on", "channel", "visit_type", "purpose"}]
    planned_contacts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    products: Mapped[list[str]] = mapped_column(JSON)
    # [{"staff_id", "role"}]
    responsible: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Enquiry(Base):
    """A customer's enquiry 咨询, to be answered by a business date set by the policy in force
    when it was received."""

    __tablename__ = "enquiries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    policy_version: Mapped[str] = mapped_column(String(20))
    assigned_to: Mapped[str] = mapped_column(String(100), index=True)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The business date of the answer (Asia/Shanghai): late when after ``due_on``.
    answered_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Appointment(Base):
    """An appointment 预约 with a customer holding at least the policy's financial assets: when,
    where, with whom, what for, and the assets it was booked on."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_customer_starts", "customer_id", "starts_at"),
        UniqueConstraint("staff_id", "starts_at", name="uq_appointments_staff_starts"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    staff_id: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    place: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    aum: Mapped[Decimal] = mapped_column(Money)
    aum_business_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    booked_by: Mapped[str] = mapped_column(String(100))
    booked_at: Mapped[datetime] = mapped_column(UtcDateTime)
