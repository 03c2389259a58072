"""Handovers of a leaving manager's book: frozen, audited customer by customer, reassigned."""

from __future__ import annotations

from sqlalchemy.orm import Session


def frozen_book(session: Session, staff_id: str) -> str | None:
    """The id of the open handover that froze ``staff_id``'s book, or None."""
    return None
