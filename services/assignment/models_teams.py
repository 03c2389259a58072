"""Tables of the teams 团队维护 of the assignment service: who serves a customer beside its owner,
and the customers product or internal-control staff name as needing a team."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import UtcDateTime
from services.assignment.models import Base


class TeamMember(Base):
    """A member of the team serving a customer, with their role in it (``member``,
    ``senior_lead`` or ``accountable_leader``). The first responsible 第一负责人 is not stored
    here: it is always the customer's current owner (``ownerships``)."""

    __tablename__ = "team_members"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(30))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    added_by: Mapped[str] = mapped_column(String(100))


class TeamDesignation(Base):
    """A customer named by product or internal-control staff as needing a team, open until
    closed (when, by whom and why)."""

    __tablename__ = "team_designations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    org_unit: Mapped[str] = mapped_column(String(200), index=True)  # the customer's, when named
    reason: Mapped[str] = mapped_column(String(500))
    designated_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    close_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)

    __table_args__ = (
        # One open designation per customer.
        Index(
            "uq_team_designations_open",
            "customer_id",
            unique=True,
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
        ),
    )
