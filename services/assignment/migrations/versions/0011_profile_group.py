"""The group 集团客户 a customer is a member of, from the customer service's
``customer.group_changed``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customer_profiles", sa.Column("group_id", sa.String(36), nullable=True))
    op.create_index("ix_customer_profiles_group_id", "customer_profiles", ["group_id"])


def downgrade() -> None:
    op.drop_index("ix_customer_profiles_group_id", table_name="customer_profiles")
    with op.batch_alter_table("customer_profiles") as batch:
        batch.drop_column("group_id")
