"""The handovers of the assignment service: frozen books, audit findings, plans, spot-checks.

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

_OPEN = sa.text("status = 'open'")


def _staff_fk(table: str, column: str) -> sa.ForeignKey:
    return sa.ForeignKey("staff.id", name=f"fk_{table}_{column}_staff")


def upgrade() -> None:
    op.create_table(
        "handovers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("staff_id", sa.String(100), _staff_fk("handovers", "staff_id"), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("cause", sa.String(20), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
        sa.Column("completed_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_handovers_staff_id", "handovers", ["staff_id"])
    op.create_index("ix_handovers_org_unit", "handovers", ["org_unit"])
    op.create_index(
        "uq_handovers_open",
        "handovers",
        ["staff_id"],
        unique=True,
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )
    op.create_table(
        "handover_customers",
        sa.Column(
            "handover_id",
            sa.String(36),
            sa.ForeignKey("handovers.id", name="fk_handover_customers_handover_id_handovers"),
            primary_key=True,
        ),
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("finding", sa.String(10), nullable=True),
        sa.Column("remedy", sa.String(1000), nullable=True),
        sa.Column("audited_by", sa.String(100), nullable=True),
        sa.Column("audited_at", UtcDateTime(), nullable=True),
        sa.Column(
            "receiver_id",
            sa.String(100),
            _staff_fk("handover_customers", "receiver_id"),
            nullable=True,
        ),
        sa.Column("plan_basis", sa.String(20), nullable=True),
        sa.Column("moved_to", sa.String(100), nullable=True),
        sa.Column("moved_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "spot_checks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("staff_id", sa.String(100), _staff_fk("spot_checks", "staff_id"), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("auditor", sa.String(100), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_spot_checks_staff_id", "spot_checks", ["staff_id"])
    op.create_table(
        "spot_check_customers",
        sa.Column(
            "spot_check_id",
            sa.String(36),
            sa.ForeignKey(
                "spot_checks.id", name="fk_spot_check_customers_spot_check_id_spot_checks"
            ),
            primary_key=True,
        ),
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_index("ix_spot_check_customers_customer_id", "spot_check_customers", ["customer_id"])


def downgrade() -> None:
    op.drop_table("spot_check_customers")
    op.drop_table("spot_checks")
    op.drop_table("handover_customers")
    op.drop_table("handovers")
