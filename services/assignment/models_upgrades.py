"""Tables of the upgrades of the assignment service: the proposals raised when a customer's tier
rises, the customer's choice, and the income attribution 业绩归属 to the first developer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import UtcDateTime
from services.assignment.models import Base


class Attribution(Base):
    """Who first developed a customer: the income stays attributed to them whoever maintains the
    customer later. Derived from the earliest ownership span (``marketed`` or ``claimed`` first)
    and stored the first time it is needed; never changed afterwards."""

    __tablename__ = "attributions"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    org_unit: Mapped[str] = mapped_column(String(200))  # the developer's, when they took it
    reason: Mapped[str] = mapped_column(String(30))  # the reason of the span it comes from
    developed_at: Mapped[datetime] = mapped_column(UtcDateTime)  # that span's start
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class UpgradeProposal(Base):
    """A proposal to move a customer whose tier rose to a maintainer of the new tier 升级不强制迁移:
    ``open`` until the customer's choice is recorded (``stayed`` or ``moved``). At most one open
    proposal per customer (a partial unique index)."""

    __tablename__ = "upgrade_proposals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    org_unit: Mapped[str] = mapped_column(String(200), index=True)  # the customer's, when raised
    from_staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # the rises: dimension, old, new
    tier_policy_version: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(36))  # the customer.tier_changed it came from
    rule_policy_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    suggested_rule: Mapped[str | None] = mapped_column(String(40), nullable=True)
    suggested_roles: Mapped[list[str]] = mapped_column(JSON)
    suggested_staff_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # open, stayed, moved
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    choice: Mapped[str | None] = mapped_column(String(10), nullable=True)  # stay, move
    to_staff_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __table_args__ = (
        Index(
            "uq_upgrade_proposals_open",
            "customer_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )
