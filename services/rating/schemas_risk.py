"""Wire models of the early warning 风险识别与预警 of the rating service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class RiskLevel(StrEnum):
    """How serious a flag is, least serious first."""

    watch = "watch"  # 关注
    warning = "warning"  # 预警
    severe = "severe"  # 严重


class RiskStatus(StrEnum):
    """A customer's risk status: the most serious level of its open flags."""

    none = "none"
    watch = "watch"
    warning = "warning"
    severe = "severe"


class FlagSource(StrEnum):
    signal = "signal"  # raised by the system
    manual = "manual"  # raised by a staff member


class FlagSignal(StrEnum):
    """What raised a flag."""

    overdue = "overdue"  # 逾期
    balance_drop = "balance_drop"  # 存款大幅下降
    downgrade = "downgrade"  # 评级下调
    manual = "manual"  # 人工认定


class FlagStatus(StrEnum):
    open = "open"
    cleared = "cleared"


class RiskFlagIn(BaseModel):
    """A flag raised by hand: the customer, how serious and why."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=36)
    level: RiskLevel
    reason: Reason


class RiskClearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class RiskFlagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    org_unit: str = Field(description="The customer's org unit when the flag was raised")
    level: RiskLevel
    source: FlagSource
    signal: FlagSignal
    reason: str
    basis: dict[str, Any] | None = Field(
        description="What a signal saw (amounts as decimal strings, dates, grades); None by hand"
    )
    raised_by: str = Field(description="Staff id, or 'system' for a signal")
    raised_at: datetime
    status: FlagStatus
    cleared_by: str | None = Field(description="Staff id, or 'system' when the signal went away")
    cleared_at: datetime | None
    cleared_reason: str | None


class CustomerRiskOut(BaseModel):
    customer_id: str
    org_unit: str
    status: RiskStatus = Field(description="The most serious level of the open flags")
    since: datetime | None = Field(description="When the status took its value; None: never set")
    open_flags: list[RiskFlagOut] = Field(description="Most serious first, then oldest first")


class WatchEntry(BaseModel):
    """A customer on the watch list 风险客户名单: it has at least one open flag."""

    customer_id: str
    name: str
    org_unit: str
    owner: str | None = Field(description="The responsible manager (管户经理), if known")
    level: RiskLevel = Field(description="The most serious level of its open flags")
    signals: list[FlagSignal] = Field(description="What raised its open flags")
    open_flags: int
    since: datetime = Field(description="When it reached its current level")
    flagged_since: datetime = Field(description="When its oldest open flag was raised")


# The watch list as CSV: field and header (the Chinese term in parentheses).
WATCH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("customer_id", "customer_id (客户号)"),
    ("name", "name (客户名称)"),
    ("org_unit", "org_unit (机构)"),
    ("owner", "owner (管户经理)"),
    ("level", "level (风险等级)"),
    ("signals", "signals (预警信号)"),
    ("open_flags", "open_flags (未解除预警数)"),
    ("since", "since (当前等级起始)"),
    ("flagged_since", "flagged_since (首次预警)"),
)
