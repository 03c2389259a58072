"""Re-rating 重新评级: a new assessment proposed when a customer's inputs change, and the yearly
re-rating of every grade past its validity."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crmkit.runtime import ServiceRuntime


def on_inputs_changed(session: Session, customer_id: str, trigger: str) -> None:
    """Propose a new assessment of a rated customer whose inputs changed (``trigger``:
    financials, status or guarantees), in the caller's transaction."""


def sweep_yearly(runtime: ServiceRuntime) -> None:
    """Propose the yearly re-rating of every customer whose confirmed grade is past its date."""
