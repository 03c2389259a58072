"""Tables of the target lists 名单制 of the assignment service: service areas contracted to
sub-branches (their streets and estates to managers), the leads / target-list entries with their
stage history, and the bids on key targets posted for bidding."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import BigIntId, Money, UtcDateTime
from services.assignment.models import Base


class LeadArea(Base):
    """A service area 片区 contracted 划片包干 to an org unit (a sub-branch or cooperative).
    Edited by naming the version read; a change of its streets and estates is a new version."""

    __tablename__ = "lead_areas"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # urban, rural, farm, forest_farm, out_of_town
    org_unit: Mapped[str] = mapped_column(ForeignKey("org_units.path"), index=True)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class LeadSubArea(Base):
    """A street 街段 or estate 小区 of an area, optionally contracted to a staff member."""

    __tablename__ = "lead_sub_areas"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    area_id: Mapped[str] = mapped_column(ForeignKey("lead_areas.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # street, estate
    staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True, nullable=True)

    __table_args__ = (UniqueConstraint("area_id", "name"),)


class Lead(Base):
    """A lead / target-list entry 目标客户 (附件4), from ``collected`` to ``won`` or ``lost``.
    A won entry names the customer it became and who owned that customer then."""

    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    sub_market: Mapped[str | None] = mapped_column(String(80), nullable=True)
    industry: Mapped[str | None] = mapped_column(String(80), nullable=True)
    area_id: Mapped[str] = mapped_column(ForeignKey("lead_areas.id"), index=True)
    sub_area: Mapped[str | None] = mapped_column(String(200), nullable=True)
    org_unit: Mapped[str] = mapped_column(String(200), index=True)  # the area's, at creation
    area_kind: Mapped[str] = mapped_column(String(20))
    business_line: Mapped[str] = mapped_column(String(30), index=True)
    current_bank: Mapped[str | None] = mapped_column(String(100), nullable=True)
    contact: Mapped[str | None] = mapped_column(String(500), nullable=True)
    info_status: Mapped[str] = mapped_column(String(20))  # none, partial, complete
    willing_to_borrow: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    notes: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # Where the entry came from beside staff's own collection: ``teller`` (a walk-in customer
    # identified at the counter, ``source_ref`` the visits service's register entry).
    source: Mapped[str | None] = mapped_column(String(20), nullable=True)
    source_ref: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    stage: Mapped[str] = mapped_column(String(20), index=True)
    furthest: Mapped[str] = mapped_column(String(20))  # the furthest funnel stage reached
    plan: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    marketer_id: Mapped[str | None] = mapped_column(
        ForeignKey("staff.id"), index=True, nullable=True
    )
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    distribution_basis: Mapped[str | None] = mapped_column(String(30), nullable=True)
    distributed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    distributed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    bidding: Mapped[str | None] = mapped_column(String(20), nullable=True)  # open, awarded, closed
    bid_scope: Mapped[str | None] = mapped_column(String(200), nullable=True)  # who may bid
    bid_reward: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    reward: Mapped[Decimal | None] = mapped_column(Money, nullable=True)  # recorded when won
    result_note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    customer_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    customer_owner_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # True when the win made the marketer the customer's owner (谁营销谁维护).
    owner_assigned: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class LeadStageChange(Base):
    """One move of a lead from a stage to the next, with the note of who moved it."""

    __tablename__ = "lead_stage_changes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_stage: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    changed_by: Mapped[str] = mapped_column(String(100))


class LeadBid(Base):
    """A staff member's bid 竞标 on a key target posted for bidding; one per staff and lead."""

    __tablename__ = "lead_bids"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # pending, awarded, not_awarded
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("lead_id", "staff_id"),)
