"""Tables of the visits database: each customer's follow-up state, with the copies of customers
and owners it keeps from other services' events; the tables of visits, agendas, complaints,
surveys, the teller register and marketing events live in the ``models_*`` modules."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import KitTables, Money, ServiceBase, UtcDateTime, new_metadata
from crmkit.replicas import define_customer_refs, define_owner_refs


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


kit = KitTables.define(Base.metadata)
# This service's copy of the customers it serves, kept from customer events.
customer_refs = define_customer_refs(Base.metadata)
# Who owns and serves each customer, kept from the assignment service's ownership events.
owner_refs = define_owner_refs(Base.metadata)


class CustomerCare(Base):
    """Each customer's follow-up state 维护: what the plan for its tier reads (tiers, financial
    assets, the manager-assessed importance), its owner, its last contact and the next contact
    due by the plan in force, with what else puts it on the agenda (risk status, a limit about
    to expire). Kept from events and from the visits recorded here."""

    __tablename__ = "customer_care"
    __table_args__ = (Index("ix_customer_care_owner_due", "owner_id", "next_due_on"),)

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    value_tier: Mapped[str | None] = mapped_column(String(10), nullable=True)
    wealth_layer: Mapped[str | None] = mapped_column(String(10), nullable=True)
    vip_level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # Financial assets with the bank (AUM) on the latest business date: appointments from 1,000,000.
    aum: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    business_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The product types the customer used on that business date (a new loan or wealth product
    # is a sale: a post-sale follow-up 售后跟踪 comes due).
    products: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # The owner's assessment of the customer's importance (adjusts the plan): high, normal, low.
    importance: Mapped[str | None] = mapped_column(String(10), nullable=True)
    owner_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_contact_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # The next contact due (business date) and why: the plan's cycle, a post-sale follow-up,
    # a risk flag or a customer event.
    next_due_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    due_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    plan_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # The due date a followup.due reminder was published for (once per due date).
    reminded_for: Mapped[date | None] = mapped_column(Date, nullable=True)
    risk_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    credit_limit_expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# The tables of the other parts of the service register on the same metadata.
from services.visits import (  # noqa: E402,F401
    models_complaints,
    models_marketing,
    models_records,
    models_surveys,
    models_workday,
)
