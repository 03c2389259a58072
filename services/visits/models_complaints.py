"""Tables: Complaints 投诉 and their steps.

A complaint moves ``recorded`` → ``accepted`` → ``analysed`` → ``handled`` → ``feedback_given``
→ ``closed`` (记录 → 受理 → 分析 → 处理 → 反馈 → 结案). Each step is a row of
``complaint_steps``: who owns it, when it started, by when it is due, when and by whom it was
done, and whether it went to the branch head. The complaint row carries the step waited for (its
owner and deadline, for the work lists) and, once closed, the outcome the seed asks for.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import UtcDateTime
from services.visits.models import Base


class Complaint(Base):
    """A customer's complaint 投诉, from its recording to its closing.

    ``step_owner_id`` and ``step_due_at`` are those of the step the complaint waits for (None once
    closed); ``escalated_at`` is the first time it went to the branch head (at once for a
    high-tier customer, else when a step was late). The ``version`` column makes of two
    transitions at once exactly one succeed.
    """

    __tablename__ = "complaints"
    __table_args__ = (
        Index("ix_complaints_status_due", "status", "step_due_at"),
        Index("ix_complaints_org_unit_recorded", "org_unit", "recorded_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    # The customer's org unit when the complaint was recorded: the branch it is reported by.
    org_unit: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    # High-tier customer 高端客户 by the policy (value tier, VIP level, wealth layer).
    high_tier: Mapped[bool] = mapped_column(Boolean)
    # The customer's responsible owner when the complaint was recorded.
    customer_owner_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    step_owner_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    step_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    policy_version: Mapped[str] = mapped_column(String(20))
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The outcome recorded at closing: the customer retained 挽回 or lost 流失, the person at
    # fault and the sanction 惩处责任人, the root cause and lesson 总结教训, and the internal
    # fix 内部整改 with its owner and due date.
    outcome: Mapped[str | None] = mapped_column(String(10), nullable=True)
    person_at_fault: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sanction: Mapped[str | None] = mapped_column(Text, nullable=True)
    root_cause: Mapped[str | None] = mapped_column(Text, nullable=True)
    lesson: Mapped[str | None] = mapped_column(Text, nullable=True)
    fix_description: Mapped[str | None] = mapped_column(Text, nullable=True)
    fix_owner_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    fix_due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class ComplaintStep(Base):
    """One step of a complaint: ``record``, ``accept``, ``analyse``, ``handle``, ``feedback``
    or ``close``. A step row is added when the step before it is done; ``due_at`` is its
    deadline by the complaint's policy (None for ``record``, done when it starts)."""

    __tablename__ = "complaint_steps"
    __table_args__ = (Index("ix_complaint_steps_open_due", "done_at", "due_at"),)

    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), primary_key=True)
    step: Mapped[str] = mapped_column(String(20), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(100), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    done_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When the step went to the branch head, and why: ``high_tier`` (on the ``record`` step,
    # at once) or ``late`` (once, when the step passed its deadline undone).
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    escalation_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
