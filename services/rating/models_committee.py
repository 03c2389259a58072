"""Tables of the credit committee 贷审会: meetings on a limit, members, votes, minutes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import BigIntId, UtcDateTime
from services.rating.models import Base, CreditLimit


class CommitteeMeeting(Base):
    """The credit committee's meeting 贷审会 on one limit referred to it.

    ``members`` are the staff ids named when it was opened (the chair 主任委员 among them);
    ``status``: ``open`` (votes are taken) → ``decided`` (the chair signed the minutes off, with
    the tally and the decision ``approved`` or ``rejected``). One meeting per limit.
    """

    __tablename__ = "committee_meetings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    credit_limit_id: Mapped[str] = mapped_column(ForeignKey("credit_limits.id"), unique=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    chair: Mapped[str] = mapped_column(String(100))
    members: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    opened_by: Mapped[str] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    minutes: Mapped[str | None] = mapped_column(Text, nullable=True)
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)
    votes_for: Mapped[int] = mapped_column(Integer)
    votes_against: Mapped[int] = mapped_column(Integer)
    votes_abstain: Mapped[int] = mapped_column(Integer)
    signed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class CommitteeVote(Base):
    """One member's vote at a meeting (for, against, abstain) with their opinion; one each."""

    __tablename__ = "committee_votes"
    __table_args__ = (UniqueConstraint("meeting_id", "member"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("committee_meetings.id"), index=True)
    member: Mapped[str] = mapped_column(String(100))
    vote: Mapped[str] = mapped_column(String(10))
    opinion: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


# The expiry sweep's query (approved limits past their expiry date) reads this index only.
Index("ix_credit_limits_status_expiry_date", CreditLimit.status, CreditLimit.expiry_date)
