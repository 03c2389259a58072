"""Tables: Day plans 日工作报告 and the activity of each employee: the plan a staff member saves
for a day (primary, secondary and minor tasks) with the evening's actuals, each contact made
with the due date it met (for the activity reports), and the holiday greetings reminded."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import BigIntId, UtcDateTime
from services.visits.models import Base


class DayPlan(Base):
    """A staff member's plan of a day 日工作报告 (seed 001): the first, second and minor tasks
    (customers to contact or free tasks), and the evening review with the actual counts and
    notes. One per staff member and day; edited by naming the version read."""

    __tablename__ = "day_plans"

    staff_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    plan_date: Mapped[date] = mapped_column(Date, primary_key=True)
    # The staff member's org unit when saved (from their token): heads of it read the plan.
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    primary_tasks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    secondary_tasks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    minor_tasks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    evening: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class CareContact(Base):
    """A contact made with a customer, as the follow-up plan saw it: the owner and unit then,
    and the due date pending (null for a contact older than the last one known)."""

    __tablename__ = "care_contacts"
    __table_args__ = (
        Index("ix_care_contacts_owner_day", "owner_id", "contact_day"),
        Index("ix_care_contacts_unit_day", "org_unit", "contact_day"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    org_unit: Mapped[str] = mapped_column(String(200))
    contacted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    contact_day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(20))
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    due_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)


class GreetingReminder(Base):
    """A holiday greeting reminded for a customer (once per customer and holiday)."""

    __tablename__ = "greeting_reminders"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    holiday: Mapped[str] = mapped_column(String(40), primary_key=True)
    holiday_on: Mapped[date] = mapped_column(Date, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
