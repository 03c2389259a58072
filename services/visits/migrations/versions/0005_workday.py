"""Day plans and activity: the day plans 日工作报告, the contacts made as the follow-up plan saw
them, and the holiday greetings reminded.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigIntId, UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "day_plans",
        sa.Column("staff_id", sa.String(100), nullable=False),
        sa.Column("plan_date", sa.Date(), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("primary_tasks", sa.JSON(), nullable=False),
        sa.Column("secondary_tasks", sa.JSON(), nullable=False),
        sa.Column("minor_tasks", sa.JSON(), nullable=False),
        sa.Column("evening", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("staff_id", "plan_date", name="pk_day_plans"),
    )
    op.create_index("ix_day_plans_org_unit", "day_plans", ["org_unit"])
    op.create_table(
        "care_contacts",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("owner_id", sa.String(100), nullable=True),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("contacted_at", UtcDateTime(), nullable=False),
        sa.Column("contact_day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("due_reason", sa.String(20), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_care_contacts"),
    )
    op.create_index("ix_care_contacts_customer_id", "care_contacts", ["customer_id"])
    op.create_index("ix_care_contacts_owner_day", "care_contacts", ["owner_id", "contact_day"])
    op.create_index("ix_care_contacts_unit_day", "care_contacts", ["org_unit", "contact_day"])
    op.create_table(
        "greeting_reminders",
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("holiday", sa.String(40), nullable=False),
        sa.Column("holiday_on", sa.Date(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "customer_id", "holiday", "holiday_on", name="pk_greeting_reminders"
        ),
    )


def downgrade() -> None:
    op.drop_table("greeting_reminders")
    op.drop_index("ix_care_contacts_unit_day", table_name="care_contacts")
    op.drop_index("ix_care_contacts_owner_day", table_name="care_contacts")
    op.drop_index("ix_care_contacts_customer_id", table_name="care_contacts")
    op.drop_table("care_contacts")
    op.drop_index("ix_day_plans_org_unit", table_name="day_plans")
    op.drop_table("day_plans")
