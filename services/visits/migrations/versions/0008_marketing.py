"""The teller register and marketing events.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigIntId, Money, UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKey:
    referred = target.split(".")[0]
    return sa.ForeignKey(target, name=f"fk_{table}_{column}_{referred}")


def upgrade() -> None:
    op.create_table(
        "teller_leads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("identified_on", sa.Date(), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("teller_id", sa.String(100), nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("business_line", sa.String(20), nullable=False),
        sa.Column("id_number_enc", sa.String(200), nullable=True),
        sa.Column("id_number_masked", sa.String(30), nullable=True),
        sa.Column("phone_enc", sa.String(200), nullable=True),
        sa.Column("phone_masked", sa.String(20), nullable=True),
        sa.Column("business", sa.String(200), nullable=True),
        sa.Column("amount", Money(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("observation", sa.String(500), nullable=True),
        sa.Column("current_bank", sa.String(100), nullable=True),
        sa.Column("preliminary_value", sa.String(10), nullable=False),
        sa.Column("potential_vip", sa.Boolean(), nullable=False),
        sa.Column("referred_to", sa.String(100), nullable=True),
        sa.Column("referred_role", sa.String(30), nullable=True),
        sa.Column("result", sa.String(20), nullable=True),
        sa.Column("result_note", sa.String(500), nullable=True),
        sa.Column("result_at", UtcDateTime(), nullable=True),
        sa.Column("result_by", sa.String(100), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_teller_leads_unit_day", "teller_leads", ["org_unit", "identified_on"])
    op.create_index("ix_teller_leads_teller_id", "teller_leads", ["teller_id"])
    op.create_index("ix_teller_leads_customer_id", "teller_leads", ["customer_id"])
    op.create_index("ix_teller_leads_referred_to", "teller_leads", ["referred_to"])
    op.create_table(
        "teller_lead_reveals",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column(
            "lead_id",
            sa.String(36),
            _fk("teller_lead_reveals", "lead_id", "teller_leads.id"),
            nullable=False,
        ),
        sa.Column("field", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_teller_lead_reveals_lead_id", "teller_lead_reveals", ["lead_id"])
    op.create_table(
        "marketing_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("budget", Money(), nullable=True),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_marketing_events_unit_day", "marketing_events", ["org_unit", "held_on"])
    op.create_table(
        "marketing_invitees",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column(
            "event_id",
            sa.String(36),
            _fk("marketing_invitees", "event_id", "marketing_events.id"),
            nullable=False,
        ),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("owner_id", sa.String(100), nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("invited_at", UtcDateTime(), nullable=False),
        sa.Column("invited_by", sa.String(100), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("attendance_at", UtcDateTime(), nullable=True),
        sa.Column("attendance_by", sa.String(100), nullable=True),
        sa.UniqueConstraint("event_id", "customer_id", name="uq_marketing_invitees_event_id"),
    )
    op.create_index("ix_marketing_invitees_customer_id", "marketing_invitees", ["customer_id"])
    op.create_table(
        "marketing_outcomes",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column(
            "event_id",
            sa.String(36),
            _fk("marketing_outcomes", "event_id", "marketing_events.id"),
            nullable=False,
        ),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("product", sa.String(80), nullable=False),
        sa.Column("amount", Money(), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_marketing_outcomes_event_id", "marketing_outcomes", ["event_id"])


def downgrade() -> None:
    op.drop_table("marketing_outcomes")
    op.drop_table("marketing_invitees")
    op.drop_table("marketing_events")
    op.drop_table("teller_lead_reveals")
    op.drop_table("teller_leads")
