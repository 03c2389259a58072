"""The customers' grades and credit limits from the rating service; versions of areas and
target-list entries (edited by naming the version read); the customer a won entry became; why a
team designation was closed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import Money, UtcDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customer_profiles", sa.Column("credit_grade", sa.String(10), nullable=True))
    op.add_column("customer_profiles", sa.Column("credit_limit", Money(), nullable=True))
    op.add_column("customer_profiles", sa.Column("credit_limit_id", sa.String(36), nullable=True))
    op.add_column(
        "customer_profiles", sa.Column("credit_limit_expires_on", sa.Date(), nullable=True)
    )
    # Rows that exist are at their first version.
    op.add_column(
        "lead_areas", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("lead_areas", sa.Column("updated_at", UtcDateTime(), nullable=True))
    op.add_column("lead_areas", sa.Column("updated_by", sa.String(100), nullable=True))
    op.add_column("leads", sa.Column("customer_id", sa.String(36), nullable=True))
    op.add_column("leads", sa.Column("customer_owner_id", sa.String(100), nullable=True))
    op.add_column("leads", sa.Column("owner_assigned", sa.Boolean(), nullable=True))
    op.add_column("leads", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.create_index("ix_leads_customer_id", "leads", ["customer_id"])
    op.add_column("team_designations", sa.Column("close_reason", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("team_designations") as batch:
        batch.drop_column("close_reason")
    op.drop_index("ix_leads_customer_id", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("version")
        batch.drop_column("owner_assigned")
        batch.drop_column("customer_owner_id")
        batch.drop_column("customer_id")
    with op.batch_alter_table("lead_areas") as batch:
        batch.drop_column("updated_by")
        batch.drop_column("updated_at")
        batch.drop_column("version")
    with op.batch_alter_table("customer_profiles") as batch:
        batch.drop_column("credit_limit_expires_on")
        batch.drop_column("credit_limit_id")
        batch.drop_column("credit_limit")
        batch.drop_column("credit_grade")
