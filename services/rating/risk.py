"""Early warning 风险识别与预警: a risk status per customer, from signals and by hand."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.rating.models import CustomerFigures


def on_figures(session: Session, figures: CustomerFigures) -> None:
    """Raise or clear the signals the latest figures show (overdue, a sharp deposit drop)."""


def on_grade_confirmed(
    session: Session, customer_id: str, previous_grade: str | None, grade: str
) -> None:
    """Raise the downgrade signal when a confirmed grade is lower than the one before."""
