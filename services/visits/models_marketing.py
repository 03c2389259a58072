"""Tables: The teller identification register 柜员识别客户登记 and marketing events 营销活动."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import BigIntId, Money, UtcDateTime
from services.visits.models import Base


class TellerLead(Base):
    """A promising walk-in customer a teller (or other front-line staff) flagged at the counter
    (附件6), referred to a customer or wealth manager, who records the follow-up result. The
    identity number and phone are kept encrypted, with their masked forms beside them so that
    lists and reports never decrypt."""

    __tablename__ = "teller_leads"
    __table_args__ = (Index("ix_teller_leads_unit_day", "org_unit", "identified_on"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    identified_on: Mapped[date] = mapped_column(Date)
    org_unit: Mapped[str] = mapped_column(String(200))  # the outlet: the teller's unit
    teller_id: Mapped[str] = mapped_column(String(100), index=True)
    # Set when the walk-in is a customer this service knows.
    customer_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    business_line: Mapped[str] = mapped_column(String(20))
    id_number_enc: Mapped[str | None] = mapped_column(String(200), nullable=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(30), nullable=True)
    phone_enc: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone_masked: Mapped[str | None] = mapped_column(String(20), nullable=True)
    business: Mapped[str | None] = mapped_column(String(200), nullable=True)  # 办理业务
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON)  # why flagged 识别原因
    observation: Mapped[str | None] = mapped_column(String(500), nullable=True)
    current_bank: Mapped[str | None] = mapped_column(String(100), nullable=True)
    preliminary_value: Mapped[str] = mapped_column(String(10))  # high, middle, general
    potential_vip: Mapped[bool] = mapped_column(Boolean)
    referred_to: Mapped[str | None] = mapped_column(String(100), index=True, nullable=True)
    referred_role: Mapped[str | None] = mapped_column(String(30), nullable=True)
    result: Mapped[str | None] = mapped_column(String(20), nullable=True)  # 跟进结果
    result_note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    result_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    result_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration


class TellerLeadReveal(Base):
    """An audited reveal of a register entry's identity number or phone in clear: who, when,
    with which roles and why."""

    __tablename__ = "teller_lead_reveals"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("teller_leads.id"), index=True)
    field: Mapped[str] = mapped_column(String(20))  # national_id, phone
    actor: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class MarketingEvent(Base):
    """A marketing event 营销活动 of an org unit: a salon 沙龙, a customer gathering 联谊会 or a
    high-end activity, with its budget."""

    __tablename__ = "marketing_events"
    __table_args__ = (Index("ix_marketing_events_unit_day", "org_unit", "held_on"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    held_on: Mapped[date] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(200))
    org_unit: Mapped[str] = mapped_column(String(200))
    budget: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    description: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class MarketingInvitee(Base):
    """A customer invited to an event (once per event), with its owner when invited and
    whether it came (null until recorded)."""

    __tablename__ = "marketing_invitees"
    __table_args__ = (UniqueConstraint("event_id", "customer_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("marketing_events.id"))
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    channel: Mapped[str] = mapped_column(String(20))
    invited_at: Mapped[datetime] = mapped_column(UtcDateTime)
    invited_by: Mapped[str] = mapped_column(String(100))
    attended: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    attendance_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    attendance_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class MarketingOutcome(Base):
    """A lead or a sale that followed an event, for a customer who attended it."""

    __tablename__ = "marketing_outcomes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("marketing_events.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(10))  # lead, sale
    product: Mapped[str] = mapped_column(String(80))
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))
