"""The upgrades of the assignment service: proposals and income attribution.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status = 'open'")


def _staff_fk(table: str, column: str) -> sa.ForeignKey:
    return sa.ForeignKey("staff.id", name=f"fk_{table}_{column}_staff")


def upgrade() -> None:
    op.create_table(
        "attributions",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column(
            "staff_id", sa.String(100), _staff_fk("attributions", "staff_id"), nullable=False
        ),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("developed_at", UtcDateTime(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_attributions_staff_id", "attributions", ["staff_id"])
    op.create_table(
        "upgrade_proposals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column(
            "from_staff_id",
            sa.String(100),
            _staff_fk("upgrade_proposals", "from_staff_id"),
            nullable=False,
        ),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("tier_policy_version", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("rule_policy_version", sa.String(40), nullable=True),
        sa.Column("suggested_rule", sa.String(40), nullable=True),
        sa.Column("suggested_roles", sa.JSON(), nullable=False),
        sa.Column("suggested_staff_id", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("choice", sa.String(10), nullable=True),
        sa.Column("to_staff_id", sa.String(100), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_upgrade_proposals_customer_id", "upgrade_proposals", ["customer_id"])
    op.create_index("ix_upgrade_proposals_org_unit", "upgrade_proposals", ["org_unit"])
    op.create_index("ix_upgrade_proposals_from_staff_id", "upgrade_proposals", ["from_staff_id"])
    op.create_index(
        "uq_upgrade_proposals_open",
        "upgrade_proposals",
        ["customer_id"],
        unique=True,
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_table("upgrade_proposals")
    op.drop_table("attributions")
