"""Tables of the early warning 风险识别与预警: risk flags and each customer's risk status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import UtcDateTime
from services.rating.models import Base

# A signal flag is open at most once per customer and signal (the partial unique index below).
_OPEN_SIGNAL = "status = 'open' AND source = 'signal'"


class RiskFlag(Base):
    """One risk flag 风险预警 on a customer, raised by a signal or by hand, open until cleared.

    ``level``: ``watch`` 关注, ``warning`` 预警, ``severe`` 严重. ``source``: ``signal`` (raised by
    the system from the figures or a confirmed grade; ``raised_by`` is ``system``) or ``manual``
    (by a staff member). ``signal``: ``overdue``, ``balance_drop``, ``downgrade`` or ``manual``.
    ``basis`` keeps what a signal saw (amounts as exact decimal strings, grades), from which it
    later decides whether the signal went away. ``status``: ``open`` or ``cleared``.
    """

    __tablename__ = "risk_flags"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    # The customer's org unit when the flag was raised.
    org_unit: Mapped[str] = mapped_column(String(200), index=True)
    level: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(10))
    signal: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    basis: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    raised_by: Mapped[str] = mapped_column(String(100))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(10))
    cleared_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cleared_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index(
            "uq_risk_flags_open_signal",
            "customer_id",
            "signal",
            unique=True,
            postgresql_where=text(_OPEN_SIGNAL),
            sqlite_where=text(_OPEN_SIGNAL),
        ),
    )


class CustomerRisk(Base):
    """A customer's risk status: the most serious level of its open flags (``none`` when it has
    none), kept in the transaction that raises or clears a flag. Its row is locked by every such
    change, so the changes of one customer are serialised and each event's ``risk_status`` is
    right.

    ``since``: when the status took its current value. ``dismissed``: signal → level of a signal
    flag cleared by hand while the signal still held; the signal is not raised again at that level
    or below until it has gone away once (see ``risk.py``).
    """

    __tablename__ = "customer_risk"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    dismissed: Mapped[dict[str, str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
