"""Visit records, pre-visit and service plans, enquiries and appointments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import Money, UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visit_plans",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("planned_at", UtcDateTime(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("visit_type", sa.String(20), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("materials", sa.JSON(), nullable=False),
        sa.Column("customer_needs", sa.Text(), nullable=True),
        sa.Column("likely_questions", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_visit_plans_org_unit", "visit_plans", ["org_unit"])
    op.create_index("ix_visit_plans_created_by", "visit_plans", ["created_by"])
    op.create_index("ix_visit_plans_customer_planned", "visit_plans", ["customer_id", "planned_at"])

    op.create_table(
        "visits",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("visited_at", UtcDateTime(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("visit_type", sa.String(20), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("agreed", sa.Text(), nullable=True),
        sa.Column("satisfaction", sa.String(20), nullable=True),
        sa.Column("customer_comments", sa.Text(), nullable=True),
        sa.Column("needs_found", sa.Text(), nullable=True),
        sa.Column("information_given", sa.Text(), nullable=True),
        sa.Column("opportunities", sa.JSON(), nullable=False),
        sa.Column("product_followed_up", sa.String(40), nullable=True),
        sa.Column("next_contact_on", sa.Date(), nullable=True),
        sa.Column("next_contact_participants", sa.JSON(), nullable=False),
        sa.Column(
            "plan_id",
            sa.String(36),
            sa.ForeignKey("visit_plans.id", name="fk_visits_plan_id_visit_plans"),
            nullable=True,
        ),
        sa.Column(
            "corrects",
            sa.String(36),
            sa.ForeignKey("visits.id", name="fk_visits_corrects_visits"),
            nullable=True,
        ),
        sa.Column("correction_reason", sa.String(500), nullable=True),
        sa.Column("root_id", sa.String(36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("corrects", name="uq_visits_corrects"),
        sa.UniqueConstraint("root_id", "revision", name="uq_visits_root_revision"),
    )
    op.create_index("ix_visits_customer_visited", "visits", ["customer_id", "visited_at"])
    op.create_index("ix_visits_org_unit", "visits", ["org_unit"])
    op.create_index("ix_visits_recorded_by", "visits", ["recorded_by"])
    op.create_index("ix_visits_plan_id", "visits", ["plan_id"])

    op.create_table(
        "visit_participants",
        sa.Column(
            "visit_id",
            sa.String(36),
            sa.ForeignKey("visits.id", name="fk_visit_participants_visit_id_visits"),
            primary_key=True,
        ),
        sa.Column("staff_id", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_index("ix_visit_participants_staff_id", "visit_participants", ["staff_id"])

    op.create_table(
        "service_plans",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("goals", sa.JSON(), nullable=False),
        sa.Column("planned_contacts", sa.JSON(), nullable=False),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("responsible", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint(
            "customer_id", "year", "revision", name="uq_service_plans_customer_year_revision"
        ),
    )
    op.create_index("ix_service_plans_org_unit", "service_plans", ["org_unit"])

    op.create_table(
        "enquiries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("policy_version", sa.String(20), nullable=False),
        sa.Column("assigned_to", sa.String(100), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_at", UtcDateTime(), nullable=True),
        sa.Column("answered_on", sa.Date(), nullable=True),
        sa.Column("answered_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_enquiries_customer_id", "enquiries", ["customer_id"])
    op.create_index("ix_enquiries_org_unit", "enquiries", ["org_unit"])
    op.create_index("ix_enquiries_due_on", "enquiries", ["due_on"])
    op.create_index("ix_enquiries_assigned_to", "enquiries", ["assigned_to"])

    op.create_table(
        "appointments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("staff_id", sa.String(100), nullable=False),
        sa.Column("starts_at", UtcDateTime(), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("aum", Money(), nullable=False),
        sa.Column("aum_business_date", sa.Date(), nullable=True),
        sa.Column("booked_by", sa.String(100), nullable=False),
        sa.Column("booked_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("staff_id", "starts_at", name="uq_appointments_staff_starts"),
    )
    op.create_index("ix_appointments_org_unit", "appointments", ["org_unit"])
    op.create_index("ix_appointments_customer_starts", "appointments", ["customer_id", "starts_at"])


def downgrade() -> None:
    op.drop_table("appointments")
    op.drop_table("enquiries")
    op.drop_table("service_plans")
    op.drop_table("visit_participants")
    op.drop_table("visits")
    op.drop_table("visit_plans")
