"""Tables of the customer database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import KitTables, ServiceBase, UtcDateTime, new_metadata


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


kit = KitTables.define(Base.metadata)


class Customer(Base):
    """A customer record 客户档案 (the fields of the platform's first version)."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    business_line: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))
    segment: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
