"""Copies of owners and each customer's follow-up state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import Money, UtcDateTime
from crmkit.replicas import create_owner_refs_v1, drop_owner_refs_v1

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_owner_refs_v1(op)
    op.create_table(
        "customer_care",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("value_tier", sa.String(10), nullable=True),
        sa.Column("wealth_layer", sa.String(10), nullable=True),
        sa.Column("vip_level", sa.String(10), nullable=True),
        sa.Column("aum", Money(), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=True),
        sa.Column("importance", sa.String(10), nullable=True),
        sa.Column("owner_id", sa.String(100), nullable=True),
        sa.Column("last_contact_at", UtcDateTime(), nullable=True),
        sa.Column("last_channel", sa.String(20), nullable=True),
        sa.Column("next_due_on", sa.Date(), nullable=True),
        sa.Column("due_reason", sa.String(20), nullable=True),
        sa.Column("plan_version", sa.String(20), nullable=True),
        sa.Column("reminded_for", sa.Date(), nullable=True),
        sa.Column("risk_status", sa.String(10), nullable=True),
        sa.Column("credit_limit_expires_on", sa.Date(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_customer_care_org_unit", "customer_care", ["org_unit"])
    op.create_index("ix_customer_care_next_due_on", "customer_care", ["next_due_on"])
    op.create_index("ix_customer_care_owner_due", "customer_care", ["owner_id", "next_due_on"])


def downgrade() -> None:
    op.drop_table("customer_care")
    drop_owner_refs_v1(op)
