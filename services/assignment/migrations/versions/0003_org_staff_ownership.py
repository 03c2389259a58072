"""The org tree, the staff and who owns each customer (one open ownership per customer).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigIntId, UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("ended_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "org_units",
        sa.Column("path", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column(
            "parent_path",
            sa.String(200),
            sa.ForeignKey("org_units.path", name="fk_org_units_parent_path_org_units"),
            nullable=True,
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_org_units_parent_path", "org_units", ["parent_path"])
    op.create_table(
        "staff",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("business_line", sa.String(30), nullable=True),
        sa.Column("grade", sa.String(30), nullable=True),
        sa.Column("grade_certified_on", sa.Date(), nullable=True),
        sa.Column("grade_expires_on", sa.Date(), nullable=True),
        sa.Column(
            "org_unit",
            sa.String(200),
            sa.ForeignKey("org_units.path", name="fk_staff_org_unit_org_units"),
            nullable=False,
        ),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_staff_org_unit", "staff", ["org_unit"])
    op.create_table(
        "ownerships",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column(
            "staff_id",
            sa.String(100),
            sa.ForeignKey("staff.id", name="fk_ownerships_staff_id_staff"),
            nullable=False,
        ),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(100), nullable=True),
        sa.Column("end_reason", sa.String(30), nullable=True),
    )
    op.create_index("ix_ownerships_customer_id", "ownerships", ["customer_id"])
    op.create_index(
        "uq_ownerships_current",
        "ownerships",
        ["customer_id"],
        unique=True,
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )
    op.create_index(
        "ix_ownerships_book",
        "ownerships",
        ["staff_id", "customer_id"],
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_table("ownerships")
    op.drop_table("staff")
    op.drop_table("org_units")
