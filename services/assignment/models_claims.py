"""Tables of the claims of the assignment service: a staff member's claim to keep a customer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import UtcDateTime
from services.assignment.models import Base


class Claim(Base):
    """A claim 认领: granted at once when the customer had no owner and no claim pending,
    otherwise ``contested`` until a head grants or refuses it."""

    __tablename__ = "claims"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    claimant_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    org_unit: Mapped[str] = mapped_column(String(200), index=True)  # the customer's, when claimed
    owner_at_claim: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)

    __table_args__ = (
        # One pending claim per claimant and customer.
        Index(
            "uq_claims_pending",
            "customer_id",
            "claimant_id",
            unique=True,
            postgresql_where=text("status = 'contested'"),
            sqlite_where=text("status = 'contested'"),
        ),
    )
