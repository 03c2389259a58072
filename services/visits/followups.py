"""Follow-up plans 维护计划: each customer's next contact due, derived from the plan for its tier
in force, the owner's assessment of its importance and its last contact; reminders."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from crmkit.runtime import ServiceRuntime
from services.visits.models import CustomerCare


def refresh(session: Session, care: CustomerCare) -> None:
    """Derive ``care``'s next contact due from the plan in force (an earlier due date set for a
    reason beyond the cycle stands until a contact is made)."""


def due_extra(session: Session, care: CustomerCare, reason: str, due_on: date) -> None:
    """Bring the next contact forward for a reason beyond the cycle: ``post_sale``, ``risk`` or
    ``event``."""


def contact_made(session: Session, customer_id: str, at: datetime, channel: str) -> None:
    """A contact with the customer was recorded: the last contact moves, the next is derived."""


def remind(runtime: ServiceRuntime) -> None:
    """Publish ``followup.due`` for contacts coming due, and holiday greetings ahead."""
