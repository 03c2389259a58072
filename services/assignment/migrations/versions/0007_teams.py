"""The teams of the assignment service: team members, designations, and the customer figures
the team checks read (overdue amount, risk flag).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import Money, UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("closed_at IS NULL")


def upgrade() -> None:
    op.add_column("customer_profiles", sa.Column("overdue_amount", Money(), nullable=True))
    op.add_column("customer_profiles", sa.Column("risk_flag", sa.String(40), nullable=True))
    op.create_table(
        "team_members",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column(
            "staff_id",
            sa.String(100),
            sa.ForeignKey("staff.id", name="fk_team_members_staff_id_staff"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("added_at", UtcDateTime(), nullable=False),
        sa.Column("added_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_team_members_staff_id", "team_members", ["staff_id"])
    op.create_table(
        "team_designations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("designated_by", sa.String(100), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_team_designations_customer_id", "team_designations", ["customer_id"])
    op.create_index("ix_team_designations_org_unit", "team_designations", ["org_unit"])
    op.create_index(
        "uq_team_designations_open",
        "team_designations",
        ["customer_id"],
        unique=True,
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_table("team_designations")
    op.drop_table("team_members")
    with op.batch_alter_table("customer_profiles") as batch:
        batch.drop_column("risk_flag")
        batch.drop_column("overdue_amount")
