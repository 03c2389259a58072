"""Assessments, credit limits and their steps; copies of owners and customer figures.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigIntId, Money, UtcDateTime
from crmkit.replicas import create_owner_refs_v1, drop_owner_refs_v1

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_owner_refs_v1(op)
    op.create_table(
        "customer_figures",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("vip_level", sa.String(10), nullable=True),
        sa.Column("value_tier", sa.String(10), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=True),
        sa.Column("deposits", Money(), nullable=True),
        sa.Column("loans", Money(), nullable=True),
        sa.Column("aum", Money(), nullable=True),
        sa.Column("overdue_amount", Money(), nullable=True),
        sa.Column("previous_business_date", sa.Date(), nullable=True),
        sa.Column("previous_deposits", Money(), nullable=True),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "assessments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("business_line", sa.String(30), nullable=False),
        sa.Column("scorecard_id", sa.String(80), nullable=False),
        sa.Column("scorecard_version", sa.String(20), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("missing", sa.JSON(), nullable=False),
        sa.Column("score", sa.Numeric(7, 2), nullable=False),
        sa.Column("computed_grade", sa.String(5), nullable=True),
        sa.Column("proposed_grade", sa.String(5), nullable=True),
        sa.Column("adjustment_reason", sa.Text(), nullable=True),
        sa.Column("final_grade", sa.String(5), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("campaign_id", sa.String(36), nullable=True),
        sa.Column("assessed_by", sa.String(100), nullable=False),
        sa.Column("assessed_at", UtcDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_assessments_org_unit", "assessments", ["org_unit"])
    op.create_index("ix_assessments_status", "assessments", ["status"])
    op.create_index("ix_assessments_campaign_id", "assessments", ["campaign_id"])
    op.create_index(
        "ix_assessments_customer_assessed", "assessments", ["customer_id", "assessed_at"]
    )
    op.create_table(
        "credit_limits",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("business_line", sa.String(30), nullable=False),
        sa.Column(
            "assessment_id",
            sa.String(36),
            sa.ForeignKey("assessments.id", name="fk_credit_limits_assessment_id_assessments"),
            nullable=False,
        ),
        sa.Column("grade", sa.String(5), nullable=False),
        sa.Column("formula_id", sa.String(80), nullable=False),
        sa.Column("formula_version", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("calculation", sa.JSON(), nullable=False),
        sa.Column("collaterals", sa.JSON(), nullable=False),
        sa.Column("guarantors", sa.JSON(), nullable=False),
        sa.Column("sub_limits", sa.JSON(), nullable=False),
        sa.Column("credit_amount", Money(), nullable=False),
        sa.Column("guaranteed_amount", Money(), nullable=False),
        sa.Column("secured_amount", Money(), nullable=False),
        sa.Column("adjustment_amount", Money(), nullable=False),
        sa.Column("adjustment_reason", sa.Text(), nullable=True),
        sa.Column("total_amount", Money(), nullable=False),
        sa.Column("revolving", sa.Boolean(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("pricing", sa.JSON(), nullable=True),
        sa.Column("investigation_report", sa.Text(), nullable=False),
        sa.Column("risk_analysis", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.String(36), nullable=True),
        sa.Column("proposed_by", sa.String(100), nullable=False),
        sa.Column("proposed_at", UtcDateTime(), nullable=False),
        sa.Column("step_due_at", UtcDateTime(), nullable=True),
        sa.Column("reviewed_by", sa.String(100), nullable=True),
        sa.Column("reviewed_at", UtcDateTime(), nullable=True),
        sa.Column("review_opinion", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    for column in ("org_unit", "assessment_id", "status", "campaign_id", "step_due_at"):
        op.create_index(f"ix_credit_limits_{column}", "credit_limits", [column])
    op.create_index("ix_credit_limits_expiry_date", "credit_limits", ["expiry_date"])
    op.create_index(
        "ix_credit_limits_customer_proposed", "credit_limits", ["customer_id", "proposed_at"]
    )
    op.create_table(
        "credit_limit_steps",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column(
            "credit_limit_id",
            sa.String(36),
            sa.ForeignKey(
                "credit_limits.id", name="fk_credit_limit_steps_credit_limit_id_credit_limits"
            ),
            nullable=False,
        ),
        sa.Column("step", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("due_at", UtcDateTime(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "ix_credit_limit_steps_credit_limit_id", "credit_limit_steps", ["credit_limit_id"]
    )


def downgrade() -> None:
    op.drop_table("credit_limit_steps")
    op.drop_table("credit_limits")
    op.drop_table("assessments")
    op.drop_table("customer_figures")
    drop_owner_refs_v1(op)
