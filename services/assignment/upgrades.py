"""Tier upgrades do not migrate customers by force: a proposal, the customer's choice, and the
income attribution kept with the employee who first developed the customer."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crmkit.events import Envelope


def on_tier_changed(session: Session, event: Envelope) -> None:
    """React to ``customer.tier_changed`` (in the consumer's transaction)."""
