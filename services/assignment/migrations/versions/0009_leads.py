"""The leads of the assignment service: service areas, target-list entries, their stage changes
and bids.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigIntId, Money, UtcDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKey:
    referred = target.split(".")[0]
    return sa.ForeignKey(target, name=f"fk_{table}_{column}_{referred}")


def upgrade() -> None:
    op.create_table(
        "lead_areas",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column(
            "org_unit",
            sa.String(200),
            _fk("lead_areas", "org_unit", "org_units.path"),
            nullable=False,
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_lead_areas_org_unit", "lead_areas", ["org_unit"])
    op.create_table(
        "lead_sub_areas",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column(
            "area_id",
            sa.String(36),
            _fk("lead_sub_areas", "area_id", "lead_areas.id"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column(
            "staff_id", sa.String(100), _fk("lead_sub_areas", "staff_id", "staff.id"), nullable=True
        ),
        sa.UniqueConstraint("area_id", "name", name="uq_lead_sub_areas_area_id"),
    )
    op.create_index("ix_lead_sub_areas_area_id", "lead_sub_areas", ["area_id"])
    op.create_index("ix_lead_sub_areas_staff_id", "lead_sub_areas", ["staff_id"])
    op.create_table(
        "leads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("sub_market", sa.String(80), nullable=True),
        sa.Column("industry", sa.String(80), nullable=True),
        sa.Column(
            "area_id", sa.String(36), _fk("leads", "area_id", "lead_areas.id"), nullable=False
        ),
        sa.Column("sub_area", sa.String(200), nullable=True),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("area_kind", sa.String(20), nullable=False),
        sa.Column("business_line", sa.String(30), nullable=False),
        sa.Column("current_bank", sa.String(100), nullable=True),
        sa.Column("contact", sa.String(500), nullable=True),
        sa.Column("info_status", sa.String(20), nullable=False),
        sa.Column("willing_to_borrow", sa.Boolean(), nullable=True),
        sa.Column("notes", sa.String(1000), nullable=True),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("furthest", sa.String(20), nullable=False),
        sa.Column("plan", sa.String(2000), nullable=True),
        sa.Column(
            "marketer_id", sa.String(100), _fk("leads", "marketer_id", "staff.id"), nullable=True
        ),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("distribution_basis", sa.String(30), nullable=True),
        sa.Column("distributed_at", UtcDateTime(), nullable=True),
        sa.Column("distributed_by", sa.String(100), nullable=True),
        sa.Column("bidding", sa.String(20), nullable=True),
        sa.Column("bid_scope", sa.String(200), nullable=True),
        sa.Column("bid_reward", Money(), nullable=True),
        sa.Column("reward", Money(), nullable=True),
        sa.Column("result_note", sa.String(500), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_leads_area_id", "leads", ["area_id"])
    op.create_index("ix_leads_org_unit", "leads", ["org_unit"])
    op.create_index("ix_leads_business_line", "leads", ["business_line"])
    op.create_index("ix_leads_stage", "leads", ["stage"])
    op.create_index("ix_leads_marketer_id", "leads", ["marketer_id"])
    op.create_table(
        "lead_stage_changes",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column(
            "lead_id",
            sa.String(36),
            _fk("lead_stage_changes", "lead_id", "leads.id"),
            nullable=False,
        ),
        sa.Column("from_stage", sa.String(20), nullable=True),
        sa.Column("to_stage", sa.String(20), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.Column("changed_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_lead_stage_changes_lead_id", "lead_stage_changes", ["lead_id"])
    op.create_table(
        "lead_bids",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column(
            "lead_id", sa.String(36), _fk("lead_bids", "lead_id", "leads.id"), nullable=False
        ),
        sa.Column(
            "staff_id", sa.String(100), _fk("lead_bids", "staff_id", "staff.id"), nullable=False
        ),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("lead_id", "staff_id", name="uq_lead_bids_lead_id"),
    )
    op.create_index("ix_lead_bids_lead_id", "lead_bids", ["lead_id"])


def downgrade() -> None:
    op.drop_table("lead_bids")
    op.drop_table("lead_stage_changes")
    op.drop_table("leads")
    op.drop_table("lead_sub_areas")
    op.drop_table("lead_areas")
