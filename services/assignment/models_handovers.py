"""Tables of the handovers of the assignment service: a leaving manager's frozen book, the
auditor's finding and the planned receiver per customer, and the auditors' spot-checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import UtcDateTime
from services.assignment.models import Base


class Handover(Base):
    """A handover of ``staff_id``'s book 离岗交接; while ``open`` the book is frozen. At most one
    open handover per staff member (a partial unique index)."""

    __tablename__ = "handovers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    org_unit: Mapped[str] = mapped_column(String(200), index=True)  # the leaver's, at the start
    scope: Mapped[str] = mapped_column(String(200))  # where receivers are looked for
    cause: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # open, completed
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_by: Mapped[str] = mapped_column(String(100))
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __table_args__ = (
        Index(
            "uq_handovers_open",
            "staff_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )


class HandoverCustomer(Base):
    """A customer of the frozen book: the latest audit finding (with who and when), the planned
    receiver and, once moved, to whom."""

    __tablename__ = "handover_customers"

    handover_id: Mapped[str] = mapped_column(ForeignKey("handovers.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    finding: Mapped[str | None] = mapped_column(String(10), nullable=True)  # clear, issue
    remedy: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    audited_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    audited_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    receiver_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    plan_basis: Mapped[str | None] = mapped_column(String(20), nullable=True)
    moved_to: Mapped[str | None] = mapped_column(String(100), nullable=True)
    moved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SpotCheck(Base):
    """A sample of a staff member's book drawn for an auditor (random or scheduled)."""

    __tablename__ = "spot_checks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    mode: Mapped[str] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(Integer)
    auditor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SpotCheckCustomer(Base):
    """A customer drawn in a spot-check."""

    __tablename__ = "spot_check_customers"

    spot_check_id: Mapped[str] = mapped_column(ForeignKey("spot_checks.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
