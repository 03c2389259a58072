"""The customer master: identity, register fields, tiers, snapshots, relationships, imports.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigIntId, Money, UtcDateTime
from services.customer.domain import name_key, name_stem

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Columns added to the customers of the first version; rows that exist get the defaults.
_NEW_CUSTOMER_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("name_key", sa.String(200), nullable=False, server_default=""),
    sa.Column("name_stem", sa.String(200), nullable=False, server_default=""),
    sa.Column("market_segment", sa.String(80), nullable=True),
    sa.Column("ownership_type", sa.String(20), nullable=True),
    sa.Column("identity_index", sa.String(64), nullable=True),
    sa.Column("id_number_enc", sa.Text(), nullable=True),
    sa.Column("id_number_masked", sa.String(32), nullable=True),
    sa.Column("credit_code", sa.String(18), nullable=True),
    sa.Column("operator_id_enc", sa.Text(), nullable=True),
    sa.Column("operator_id_masked", sa.String(32), nullable=True),
    sa.Column("operator_id_index", sa.String(64), nullable=True),
    sa.Column("birth_date", sa.Date(), nullable=True),
    sa.Column("sex", sa.String(6), nullable=True),
    sa.Column("phone_enc", sa.Text(), nullable=True),
    sa.Column("phone_masked", sa.String(20), nullable=True),
    sa.Column("phone_index", sa.String(64), nullable=True),
    sa.Column("lost_contact", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("addresses", sa.JSON(), nullable=False, server_default="[]"),
    sa.Column("core_customer_no", sa.String(40), nullable=True),
    sa.Column("archive_number", sa.String(60), nullable=True),
    sa.Column("relationship_evaluation", sa.String(200), nullable=True),
    sa.Column("cooperation_direction", sa.String(200), nullable=True),
    sa.Column("importance", sa.String(20), nullable=True),
    sa.Column("importance_review_date", sa.Date(), nullable=True),
    sa.Column("profile", sa.JSON(), nullable=False, server_default="{}"),
    sa.Column("data_source", sa.String(200), nullable=True),
    sa.Column("lawful_basis", sa.String(40), nullable=True),
    sa.Column("value_tier", sa.String(10), nullable=True),
    sa.Column("wealth_layer", sa.String(10), nullable=True),
    sa.Column("vip_level", sa.String(10), nullable=True),
    sa.Column("potential_vip", sa.String(10), nullable=True),
    sa.Column("product_use_types", sa.JSON(), nullable=False, server_default="[]"),
    sa.Column("invalid", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("tier_policy_version", sa.String(40), nullable=True),
    sa.Column("tiers_as_of", sa.Date(), nullable=True),
    sa.Column("ever_assigned", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("merged_into", sa.String(36), nullable=True),
    sa.Column("erased_at", UtcDateTime(), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("updated_by", sa.String(100), nullable=False, server_default=""),
]
_CUSTOMER_INDEXES = [
    ("ix_customers_name_key", ["name_key"], False),
    ("ix_customers_name_stem", ["name_stem"], False),
    ("uq_customers_identity_index", ["identity_index"], True),
    ("ix_customers_operator_id_index", ["operator_id_index"], False),
    ("ix_customers_phone_index", ["phone_index"], False),
    ("ix_customers_lost_contact", ["lost_contact"], False),
    ("uq_customers_core_customer_no", ["core_customer_no"], True),
    ("ix_customers_value_tier", ["value_tier"], False),
    ("ix_customers_wealth_layer", ["wealth_layer"], False),
    ("ix_customers_vip_level", ["vip_level"], False),
    ("ix_customers_created", ["created_at", "id"], False),
]


def upgrade() -> None:
    for column in _NEW_CUSTOMER_COLUMNS:
        op.add_column("customers", column)
    for name, columns, unique in _CUSTOMER_INDEXES:
        op.create_index(name, "customers", columns, unique=unique)
    # Records of the first version get their keys from their names (the same rules as new ones).
    op.execute("UPDATE customers SET updated_by = created_by")
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, name FROM customers")).all()
    for customer_id, name in rows:
        conn.execute(
            sa.text("UPDATE customers SET name_key = :key, name_stem = :stem WHERE id = :id"),
            {"key": name_key(name), "stem": name_stem(name), "id": customer_id},
        )
    op.create_table(
        "customer_contacts",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("title", sa.String(100), nullable=True),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("phone_masked", sa.String(20), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_customer_contacts_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_customer_contacts"),
    )
    op.create_index("ix_customer_contacts_customer_id", "customer_contacts", ["customer_id"])
    op.create_table(
        "collaterals",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("collateral_type", sa.String(30), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("appraised_value", Money(), nullable=False),
        sa.Column("appraised_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_collaterals_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_collaterals"),
    )
    op.create_index("ix_collaterals_customer_id", "collaterals", ["customer_id"])
    op.create_table(
        "guarantors",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("guarantor_customer_id", sa.String(36), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("guaranteed_amount", Money(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_guarantors_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_guarantors"),
    )
    op.create_index("ix_guarantors_customer_id", "guarantors", ["customer_id"])
    op.create_index("ix_guarantors_guarantor_customer_id", "guarantors", ["guarantor_customer_id"])
    op.create_table(
        "customer_relationships",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("from_customer_id", sa.String(36), nullable=False),
        sa.Column("to_customer_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_customer_id"],
            ["customers.id"],
            name="fk_customer_relationships_from_customer_id_customers",
        ),
        sa.ForeignKeyConstraint(
            ["to_customer_id"],
            ["customers.id"],
            name="fk_customer_relationships_to_customer_id_customers",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_customer_relationships"),
        sa.UniqueConstraint(
            "from_customer_id",
            "to_customer_id",
            "type",
            name="uq_customer_relationships_from_customer_id",
        ),
    )
    op.create_index(
        "ix_customer_relationships_from_customer_id",
        "customer_relationships",
        ["from_customer_id"],
    )
    op.create_index(
        "ix_customer_relationships_to_customer_id", "customer_relationships", ["to_customer_id"]
    )
    op.create_table(
        "financial_snapshots",
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("deposits", Money(), nullable=False),
        sa.Column("loans", Money(), nullable=False),
        sa.Column("personal_loans", Money(), nullable=False),
        sa.Column("aum", Money(), nullable=False),
        sa.Column("card_annual_spend", Money(), nullable=False),
        sa.Column("custody_margin", Money(), nullable=False),
        sa.Column("card_level", sa.String(10), nullable=True),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("overdue_amount", Money(), nullable=False),
        sa.Column("net_interest_contribution", Money(), nullable=False),
        sa.Column("fee_income", Money(), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_financial_snapshots_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("customer_id", "business_date", name="pk_financial_snapshots"),
    )
    op.create_table(
        "customer_changes",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customer_changes"),
    )
    op.create_index("ix_customer_changes_customer_id", "customer_changes", ["customer_id"])
    op.create_table(
        "pii_reveals",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pii_reveals"),
    )
    op.create_index("ix_pii_reveals_customer_id", "pii_reveals", ["customer_id"])
    op.create_table(
        "customer_owners",
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("staff_id", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "staff_id", name="pk_customer_owners"),
    )
    op.create_index("ix_customer_owners_staff_id", "customer_owners", ["staff_id"])
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("rows_created", sa.Integer(), nullable=False),
        sa.Column("rows_updated", sa.Integer(), nullable=False),
        sa.Column("rows_unchanged", sa.Integer(), nullable=False),
        sa.Column("rows_failed", sa.Integer(), nullable=False),
        sa.Column("org_unit", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_import_jobs"),
    )
    op.create_index("ix_import_jobs_file_sha256", "import_jobs", ["file_sha256"])
    op.create_table(
        "import_errors",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_jobs.id"], name="fk_import_errors_job_id_import_jobs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_import_errors"),
    )
    op.create_index("ix_import_errors_job_id", "import_errors", ["job_id"])


def downgrade() -> None:
    for table in (
        "import_errors",
        "import_jobs",
        "customer_owners",
        "pii_reveals",
        "customer_changes",
        "financial_snapshots",
        "customer_relationships",
        "guarantors",
        "collaterals",
        "customer_contacts",
    ):
        op.drop_table(table)
    with op.batch_alter_table("customers") as batch:
        for name, _, _ in _CUSTOMER_INDEXES:
            batch.drop_index(name)
        for column in _NEW_CUSTOMER_COLUMNS:
            batch.drop_column(column.name)
