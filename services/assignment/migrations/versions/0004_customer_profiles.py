"""What the assignment rules read of each customer: segments, tiers and latest figures.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import Money, UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_profiles",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("segment", sa.String(10), nullable=False),
        sa.Column("market_segment", sa.String(80), nullable=True),
        sa.Column("value_tier", sa.String(10), nullable=True),
        sa.Column("wealth_layer", sa.String(10), nullable=True),
        sa.Column("vip_level", sa.String(10), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=True),
        sa.Column("deposits", Money(), nullable=True),
        sa.Column("loans", Money(), nullable=True),
        sa.Column("aum", Money(), nullable=True),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("customer_profiles")
