"""Tables of the assignment database: the org tree, the staff and who owns each customer."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import BigIntId, KitTables, Money, ServiceBase, UtcDateTime, new_metadata
from crmkit.replicas import define_customer_refs


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


kit = KitTables.define(Base.metadata)
# This service's copy of the customers it serves, kept from customer events.
customer_refs = define_customer_refs(Base.metadata)


class CustomerProfile(Base):
    """What the assignment rules and team checks need of a customer, kept from customer events:
    its segments and tiers (``customer.created`` / ``.updated`` / ``.tier_changed``) and its latest
    figures from core banking (``customer.financials_updated``)."""

    __tablename__ = "customer_profiles"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    segment: Mapped[str] = mapped_column(String(10))
    market_segment: Mapped[str | None] = mapped_column(String(80), nullable=True)
    value_tier: Mapped[str | None] = mapped_column(String(10), nullable=True)
    wealth_layer: Mapped[str | None] = mapped_column(String(10), nullable=True)
    vip_level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    business_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    deposits: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    loans: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    aum: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    overdue_amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    # The customer's risk status from the rating service's risk.flagged / risk.cleared (watch,
    # warning, severe; None when no flag is open): the anomaly 异常 team case.
    risk_flag: Mapped[str | None] = mapped_column(String(40), nullable=True)
    products: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The grade in force 信用等级 (``rating.confirmed``) and the approved limit 授信额度
    # (``credit_limit.approved``, gone with its ``credit_limit.expired``), from the rating service.
    credit_grade: Mapped[str | None] = mapped_column(String(10), nullable=True)
    credit_limit: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    credit_limit_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    credit_limit_expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The group 集团客户 the customer is a member of: its parent's customer id, from
    # ``customer.group_changed`` (None: in no group). A customer is a group's parent while some
    # profile names it here.
    group_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)


class OrgUnit(Base):
    """A unit of the org tree, identified by its path (``/HQ/U01/B01``) as tokens carry it."""

    __tablename__ = "org_units"

    path: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    parent_path: Mapped[str | None] = mapped_column(
        ForeignKey("org_units.path"), index=True, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class Staff(Base):
    """A staff member; ``id`` is the subject of their tokens."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    business_line: Mapped[str | None] = mapped_column(String(30), nullable=True)
    grade: Mapped[str | None] = mapped_column(String(30), nullable=True)
    grade_certified_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    grade_expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    org_unit: Mapped[str] = mapped_column(ForeignKey("org_units.path"), index=True)
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class Ownership(Base):
    """A span of a staff member's responsibility for a customer. The open span (``ended_at``
    null) is the current owner: the database holds at most one per customer."""

    __tablename__ = "ownerships"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    org_unit: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_by: Mapped[str] = mapped_column(String(100))
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(30), nullable=True)

    __table_args__ = (
        # One customer, one responsible manager 一户一主办: enforced here, not only in code.
        Index(
            "uq_ownerships_current",
            "customer_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
        Index(
            "ix_ownerships_book",
            "staff_id",
            "customer_id",
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )


# The tables of the other capabilities, in modules of their own, registered on the same metadata.
from services.assignment import (  # noqa: E402, F401
    models_claims,
    models_handovers,
    models_leads,
    models_teams,
    models_upgrades,
)
