"""Rating campaigns and their progress.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import Money, UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rating_campaigns",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("segment", sa.String(10), nullable=False),
        sa.Column("collection_from", sa.Date(), nullable=False),
        sa.Column("collection_until", sa.Date(), nullable=False),
        sa.Column("entry_from", sa.Date(), nullable=False),
        sa.Column("entry_until", sa.Date(), nullable=False),
        sa.Column("approval_from", sa.Date(), nullable=False),
        sa.Column("approval_until", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cursor", sa.String(36), nullable=True),
        sa.Column("walked", sa.Integer(), nullable=False),
        sa.Column("graded", sa.Integer(), nullable=False),
        sa.Column("incomplete", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("started_by", sa.String(100), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rating_campaigns"),
    )
    op.create_index("ix_rating_campaigns_year", "rating_campaigns", ["year"])
    op.create_index("ix_rating_campaigns_org_unit", "rating_campaigns", ["org_unit"])
    op.create_index("ix_rating_campaigns_status", "rating_campaigns", ["status"])
    op.create_table(
        "rating_campaign_progress",
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("business_line", sa.String(30), nullable=False),
        sa.Column("graded", sa.Integer(), nullable=False),
        sa.Column("incomplete", sa.Integer(), nullable=False),
        sa.Column("limits_indicated", sa.Integer(), nullable=False),
        sa.Column("indicative_limit_total", Money(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["rating_campaigns.id"],
            name="fk_rating_campaign_progress_campaign_id_rating_campaigns",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "org_unit", "business_line", name="pk_rating_campaign_progress"
        ),
    )


def downgrade() -> None:
    op.drop_table("rating_campaign_progress")
    op.drop_index("ix_rating_campaigns_status", table_name="rating_campaigns")
    op.drop_index("ix_rating_campaigns_org_unit", table_name="rating_campaigns")
    op.drop_index("ix_rating_campaigns_year", table_name="rating_campaigns")
    op.drop_table("rating_campaigns")
