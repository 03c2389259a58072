"""Satisfaction surveys.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("stratify_by_tier", sa.Boolean(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("strata", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(20), nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_surveys_org_unit", "surveys", ["org_unit"])
    op.create_table(
        "survey_samples",
        sa.Column(
            "survey_id",
            sa.String(36),
            sa.ForeignKey("surveys.id", name="fk_survey_samples_survey_id_surveys"),
            primary_key=True,
        ),
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(10), nullable=False),
        sa.Column("high_tier", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("owner_id", sa.String(100), nullable=True),
    )
    op.create_table(
        "survey_responses",
        sa.Column(
            "survey_id",
            sa.String(36),
            sa.ForeignKey("surveys.id", name="fk_survey_responses_survey_id_surveys"),
            primary_key=True,
        ),
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("manager_id", sa.String(100), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Numeric(5, 2), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("responded_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_survey_responses_manager_id", "survey_responses", ["manager_id"])


def downgrade() -> None:
    op.drop_table("survey_responses")
    op.drop_table("survey_samples")
    op.drop_table("surveys")
