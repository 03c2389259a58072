"""Risk flags and each customer's risk status.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN_SIGNAL = sa.text("status = 'open' AND source = 'signal'")


def upgrade() -> None:
    op.create_table(
        "risk_flags",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("signal", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("basis", sa.JSON(), nullable=True),
        sa.Column("raised_by", sa.String(100), nullable=False),
        sa.Column("raised_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("cleared_by", sa.String(100), nullable=True),
        sa.Column("cleared_at", UtcDateTime(), nullable=True),
        sa.Column("cleared_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_risk_flags_customer_id", "risk_flags", ["customer_id"])
    op.create_index("ix_risk_flags_org_unit", "risk_flags", ["org_unit"])
    op.create_index(
        "uq_risk_flags_open_signal",
        "risk_flags",
        ["customer_id", "signal"],
        unique=True,
        postgresql_where=_OPEN_SIGNAL,
        sqlite_where=_OPEN_SIGNAL,
    )
    op.create_table(
        "customer_risk",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.Column("dismissed", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_customer_risk_status", "customer_risk", ["status"])


def downgrade() -> None:
    op.drop_index("ix_customer_risk_status", table_name="customer_risk")
    op.drop_table("customer_risk")
    op.drop_index("uq_risk_flags_open_signal", table_name="risk_flags")
    op.drop_index("ix_risk_flags_org_unit", table_name="risk_flags")
    op.drop_index("ix_risk_flags_customer_id", table_name="risk_flags")
    op.drop_table("risk_flags")
