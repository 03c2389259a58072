"""Tables of the customer database: the customer master 客户档案 and what hangs off it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import BigIntId, KitTables, Money, ServiceBase, UtcDateTime, new_metadata


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


kit = KitTables.define(Base.metadata)


class Customer(Base):
    """A customer record 客户档案: identity, classification, register fields and current tiers.

    Identity numbers and phones are stored encrypted with a keyed blind index beside them for
    exact lookup and uniqueness; the masked form is kept for display without decrypting.
    """

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    segment: Mapped[str] = mapped_column(String(10))  # stock 存量 / target 目标
    status: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    # Lower-cased, spaces and punctuation removed: duplicate search and name filters.
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    # The identifying part of the name (legal forms removed): probable duplicates share it.
    name_stem: Mapped[str] = mapped_column(String(200), index=True)
    business_line: Mapped[str] = mapped_column(String(30))
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    market_segment: Mapped[str | None] = mapped_column(String(80))
    ownership_type: Mapped[str | None] = mapped_column(String(20))
    # One identity is one customer: the blind index of the kind's identity (resident id number
    # for people and farm households, credit code for businesses and institutions).
    identity_index: Mapped[str | None] = mapped_column(String(64))
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    id_number_masked: Mapped[str | None] = mapped_column(String(32))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    # The operator of an individual business 个体工商户 (their resident id number).
    operator_id_enc: Mapped[str | None] = mapped_column(Text)
    operator_id_masked: Mapped[str | None] = mapped_column(String(32))
    operator_id_index: Mapped[str | None] = mapped_column(String(64), index=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(6))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    # 失联客户: no valid phone on record.
    lost_contact: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    core_customer_no: Mapped[str | None] = mapped_column(String(40))
    archive_number: Mapped[str | None] = mapped_column(String(60))
    relationship_evaluation: Mapped[str | None] = mapped_column(String(200))
    cooperation_direction: Mapped[str | None] = mapped_column(String(200))
    importance: Mapped[str | None] = mapped_column(String(20))
    importance_review_date: Mapped[date | None] = mapped_column(Date)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Where a prospect's data came from and on what lawful basis (PIPL).
    data_source: Mapped[str | None] = mapped_column(String(200))
    lawful_basis: Mapped[str | None] = mapped_column(String(40))
    value_tier: Mapped[str | None] = mapped_column(String(10), index=True)
    wealth_layer: Mapped[str | None] = mapped_column(String(10), index=True)
    vip_level: Mapped[str | None] = mapped_column(String(10), index=True)
    potential_vip: Mapped[str | None] = mapped_column(String(10))
    product_use_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    tier_policy_version: Mapped[str | None] = mapped_column(String(40))
    tiers_as_of: Mapped[date | None] = mapped_column(Date)
    # Set by the first ownership event: from then on the creator's hold on the record is over.
    ever_assigned: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into: Mapped[str | None] = mapped_column(String(36))
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_by: Mapped[str] = mapped_column(String(100))

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declaration
    __table_args__ = (
        Index("uq_customers_identity_index", "identity_index", unique=True),
        Index("uq_customers_core_customer_no", "core_customer_no", unique=True),
        Index("ix_customers_created", "created_at", "id"),
    )


class Contact(Base):
    """A person at a corporate customer: decision maker, the one who gave the lead, operator."""

    __tablename__ = "customer_contacts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(Text)


class Collateral(Base):
    """A collateral item 抵质押物 offered by the customer, with its appraised value."""

    __tablename__ = "collaterals"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    collateral_type: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(String(500))
    appraised_value: Mapped[Decimal] = mapped_column(Money())
    appraised_on: Mapped[date | None] = mapped_column(Date)


class Guarantor(Base):
    """A guarantor 保证人 of the customer; may be a customer themselves."""

    __tablename__ = "guarantors"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    guarantor_customer_id: Mapped[str | None] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(200))
    guaranteed_amount: Mapped[Decimal | None] = mapped_column(Money())


class Relationship(Base):
    """A link between two customers: group, related party, supply chain, guarantee, payroll."""

    __tablename__ = "customer_relationships"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    from_customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    to_customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("from_customer_id", "to_customer_id", "type"),)


class FinancialSnapshot(Base):
    """What core banking reported for a customer on a business date (Asia/Shanghai)."""

    __tablename__ = "financial_snapshots"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    deposits: Mapped[Decimal] = mapped_column(Money())
    loans: Mapped[Decimal] = mapped_column(Money())
    personal_loans: Mapped[Decimal] = mapped_column(Money())
    aum: Mapped[Decimal] = mapped_column(Money())
    card_annual_spend: Mapped[Decimal] = mapped_column(Money())
    custody_margin: Mapped[Decimal] = mapped_column(Money())
    card_level: Mapped[str | None] = mapped_column(String(10))
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    overdue_amount: Mapped[Decimal] = mapped_column(Money())
    net_interest_contribution: Mapped[Decimal] = mapped_column(Money())
    fee_income: Mapped[Decimal] = mapped_column(Money())
    source: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Change(Base):
    """Who changed what and when (personal fields are logged as changed, never with values)."""

    __tablename__ = "customer_changes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Reveal(Base):
    """An audited reveal of a customer's personal data in clear."""

    __tablename__ = "pii_reveals"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class Owner(Base):
    """Who owns or serves a customer, kept from the assignment service's ownership events."""

    __tablename__ = "customer_owners"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))  # owner 第一责任人 / team member
    since: Mapped[datetime] = mapped_column(UtcDateTime)


class ImportJob(Base):
    """A bulk import of customers or snapshots, run in the background with progress."""

    __tablename__ = "import_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # customers / snapshots
    format: Mapped[str] = mapped_column(String(10))  # csv / jsonl
    status: Mapped[str] = mapped_column(String(20))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_path: Mapped[str] = mapped_column(Text)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_created: Mapped[int] = mapped_column(Integer, default=0)
    rows_updated: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rows_failed: Mapped[int] = mapped_column(Integer, default=0)
    org_unit: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class ImportRowError(Base):
    """One bad row of an import: row number, field and reason."""

    __tablename__ = "import_errors"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("import_jobs.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
