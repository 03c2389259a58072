"""Complaints and their steps.

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


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("category", sa.String(30), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("high_tier", sa.Boolean(), nullable=False),
        sa.Column("customer_owner_id", sa.String(100), nullable=True),
        sa.Column("step_owner_id", sa.String(100), nullable=True),
        sa.Column("step_due_at", UtcDateTime(), nullable=True),
        sa.Column("escalated_at", UtcDateTime(), nullable=True),
        sa.Column("policy_version", sa.String(20), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("outcome", sa.String(10), nullable=True),
        sa.Column("person_at_fault", sa.String(200), nullable=True),
        sa.Column("sanction", sa.Text(), nullable=True),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.Column("lesson", sa.Text(), nullable=True),
        sa.Column("fix_description", sa.Text(), nullable=True),
        sa.Column("fix_owner_id", sa.String(100), nullable=True),
        sa.Column("fix_due_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_complaints_customer_id", "complaints", ["customer_id"])
    op.create_index("ix_complaints_customer_owner_id", "complaints", ["customer_owner_id"])
    op.create_index("ix_complaints_step_owner_id", "complaints", ["step_owner_id"])
    op.create_index("ix_complaints_status_due", "complaints", ["status", "step_due_at"])
    op.create_index("ix_complaints_org_unit_recorded", "complaints", ["org_unit", "recorded_at"])
    op.create_table(
        "complaint_steps",
        sa.Column(
            "complaint_id",
            sa.String(36),
            sa.ForeignKey("complaints.id", name="fk_complaint_steps_complaint_id_complaints"),
            primary_key=True,
        ),
        sa.Column("step", sa.String(20), primary_key=True),
        sa.Column("owner_id", sa.String(100), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=True),
        sa.Column("done_at", UtcDateTime(), nullable=True),
        sa.Column("done_by", sa.String(100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("escalated_at", UtcDateTime(), nullable=True),
        sa.Column("escalation_reason", sa.String(20), nullable=True),
    )
    op.create_index("ix_complaint_steps_owner_id", "complaint_steps", ["owner_id"])
    op.create_index("ix_complaint_steps_open_due", "complaint_steps", ["done_at", "due_at"])


def downgrade() -> None:
    op.drop_table("complaint_steps")
    op.drop_table("complaints")
