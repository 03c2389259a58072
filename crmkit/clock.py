"""Business dates: the bank's day is the day in Asia/Shanghai, whatever the server's zone."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def business_today() -> date:
    """Today's business date (Asia/Shanghai)."""
    return datetime.now(BUSINESS_TZ).date()
