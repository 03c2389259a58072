"""Wire models the kit's own endpoints share (pagination, admin)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class CustomerKind(StrEnum):
    """The kinds of customer the customer master knows (its events carry them)."""

    individual = "individual"
    farm_household = "farm_household"  # 农户
    individual_business = "individual_business"  # 个体工商户
    corporate = "corporate"
    institution = "institution"  # 机关事业单位


class Importance(StrEnum):
    """客户重要程度: the owner's assessment of a customer, kept in the customer master (and sent
    with its events); the visits service's follow-up plan reads it."""

    key = "key"  # 重点
    important = "important"  # 重要
    general = "general"  # 一般


class ReportFormat(StrEnum):
    """How a report is delivered: JSON, or CSV for Excel (UTF-8 with a byte-order mark)."""

    json = "json"
    csv = "csv"


class Page(BaseModel, Generic[T]):
    """A page of a list endpoint."""

    items: list[T]
    total: int = Field(ge=0)
    limit: int
    offset: int


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    consumer: str
    event_id: str | None
    event_type: str | None
    topic: str
    partition: int
    offset: int
    reason: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None
    replay_outcome: str | None
    payload: str


class ReplayResult(BaseModel):
    id: int
    applied: bool
    outcome: str


class ServiceStatus(BaseModel):
    service: str
    outbox_backlog: int
    outbox_oldest_age_s: float
    relay_published: int
    relay_last_error: str | None
    consumer_topics: list[str]
    consumer_assigned: bool
    consumer_applied: int
