"""Complaints 投诉: recorded → accepted → analysed → handled → feedback given → closed, each step
owned and due by policy, escalated when late or for high-tier customers."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from crmkit.runtime import ServiceRuntime


def open_counts(session: Session, customer_ids: Sequence[str]) -> dict[str, int]:
    """How many open complaints each of the customers has (absent: none)."""
    return {}


def escalate_late(runtime: ServiceRuntime) -> None:
    """Escalate the complaints whose current step is past its deadline."""
